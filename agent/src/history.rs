//! The job history the agent writes (SPEC §10, Contract 4): a record per job with an entry per
//! attempt, the results stream, job events and the live log.
//!
//! Redis calls per job (README "Jobs you can follow"): one `START` script before the handler
//! runs (it also gives the attempt number, `JOB_ATTEMPT`); at the end one `SET` script, the
//! `XADD` to the results stream (final statuses only) and a `PUBLISH`, sent in the same
//! pipeline as the ack (a failure's `SET` follows the retry script, whose answer decides the
//! status). While a handler runs longer than [`LIVE_EVERY`] and writes output, one `XADD` per
//! flush carries it to the live log. With history off none of these are sent.
//!
//! Both scripts touch only `{jobs}` keys (one slot); timestamps that order the indexes come
//! from Redis's own clock (`TIME`), never from the agents'.

use std::sync::LazyLock;
use std::time::Duration;

use crate::redis_target::Conn;
use chrono::{DateTime, Utc};
use serde_json::json;
use shared::jobs::record::{self, Outcome, ATTEMPTS_KEPT, ITEM_CAP, REASON_CAP};
use shared::jobs::{keys, Item, JobStatus};
use shared::time::format_ts;

use crate::config::HistoryConfig;
use crate::handler::Live;

/// How often a running job's new output is published to its live log.
pub const LIVE_EVERY: Duration = Duration::from_millis(250);
/// A record not ended lives this long (a job whose agent vanished is not kept forever).
const OPEN_TTL_S: u64 = 7 * 24 * 3600;

/// KEYS: record, all. ARGV: id, queue, agent, started_at, item, item_cut, deadline,
/// depends_on (JSON or ''), ttl_s, attempts_kept, all_cap, record key prefix.
/// A record that had ended starts afresh (the same item pushed again is a new run).
/// Returns the attempt number.
static START: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'succeeded' or st == 'dead' or st == 'expired' then redis.call('DEL', KEYS[1]) end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'queue', ARGV[2], 'status', 'running',
  'agent_id', ARGV[3], 'started_at', ARGV[4], 'item', ARGV[5], 'updated', now,
  'a:' .. n, cjson.encode({n = n, agent_id = ARGV[3], started_at = ARGV[4], outcome = 'running'}))
redis.call('HDEL', KEYS[1], 'finished_at', 'duration_ms', 'exit_code', 'reason')
if ARGV[6] == '1' then redis.call('HSET', KEYS[1], 'item_cut', '1') else redis.call('HDEL', KEYS[1], 'item_cut') end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'deadline', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'depends_on', ARGV[8]) end
local old = n - tonumber(ARGV[10])
if old >= 1 then redis.call('HDEL', KEYS[1], 'a:' .. old, 'o:' .. old, 'e:' .. old) end
redis.call('EXPIRE', KEYS[1], ARGV[9])
redis.call('ZADD', KEYS[2], now, ARGV[1])
if redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[11]) then
  local gone = redis.call('ZPOPMIN', KEYS[2], 100)
  for i = 1, #gone, 2 do redis.call('DEL', ARGV[12] .. gone[i]) end
end
return n
"#,
    )
});

/// KEYS: record, all, ended (this queue's ok/bad set; `all` again when not final), live log.
/// ARGV: 1 id, 2 status, 3 reason, 4 attempt n (0: no attempt), 5 outcome, 6 finished_at,
/// 7 exit_code, 8 duration_ms, 9 stdout tail, 10 stderr tail, 11 final, 12 keep (count),
/// 13 keep (ms), 14 ttl_s, 15 queue, 16 item ('' keeps the stored one), 17 item_cut,
/// 18 deadline, 19 depends_on, 20 agent, 21 record key prefix. Empty values are not written.
static SET: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local final = ARGV[11] == '1'
local n = tonumber(ARGV[4])
if n == 0 then
  local st = redis.call('HGET', KEYS[1], 'status')
  if st == 'succeeded' or st == 'dead' or st == 'expired' then redis.call('DEL', KEYS[1]) end
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'status', ARGV[2], 'queue', ARGV[15], 'updated', now)
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[3]) else redis.call('HDEL', KEYS[1], 'reason') end
if ARGV[16] ~= '' then
  redis.call('HSET', KEYS[1], 'item', ARGV[16])
  if ARGV[17] == '1' then redis.call('HSET', KEYS[1], 'item_cut', '1') end
end
if ARGV[18] ~= '' then redis.call('HSET', KEYS[1], 'deadline', ARGV[18]) end
if ARGV[19] ~= '' then redis.call('HSET', KEYS[1], 'depends_on', ARGV[19]) end
if ARGV[20] ~= '' then redis.call('HSET', KEYS[1], 'agent_id', ARGV[20]) end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'exit_code', ARGV[7]) end
if final then
  redis.call('HSET', KEYS[1], 'finished_at', ARGV[6])
  if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'duration_ms', ARGV[8]) end
end
if n > 0 then
  local ok, a = pcall(cjson.decode, redis.call('HGET', KEYS[1], 'a:' .. n) or '')
  if not ok or type(a) ~= 'table' then a = {n = n, agent_id = ARGV[20], started_at = ARGV[6]} end
  a.finished_at = ARGV[6]
  a.outcome = ARGV[5]
  if ARGV[7] ~= '' then a.exit_code = tonumber(ARGV[7]) end
  redis.call('HSET', KEYS[1], 'a:' .. n, cjson.encode(a))
  if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'o:' .. n, ARGV[9]) end
  if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'e:' .. n, ARGV[10]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[14])
redis.call('ZADD', KEYS[2], now, ARGV[1])
if final then
  redis.call('ZADD', KEYS[3], now, ARGV[1])
  local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[13]), 'LIMIT', 0, 100)
  local extra = redis.call('ZCARD', KEYS[3]) - #old - tonumber(ARGV[12])
  if extra > 0 then
    local more = redis.call('ZRANGE', KEYS[3], #old, #old + math.min(extra, 100) - 1)
    for _, id in ipairs(more) do old[#old + 1] = id end
  end
  for _, id in ipairs(old) do
    if id ~= ARGV[1] then
      redis.call('DEL', ARGV[21] .. id)
      redis.call('ZREM', KEYS[2], id)
    end
    redis.call('ZREM', KEYS[3], id)
  end
  if redis.call('EXISTS', KEYS[4]) == 1 then
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', 64, '*', 'end', ARGV[2])
  end
end
return 1
"#,
    )
});

/// Loads the history's scripts (see [`crate::queue::load_scripts`]).
pub async fn load_scripts(conn: &mut Conn) -> redis::RedisResult<()> {
    START.load_async(conn).await?;
    SET.load_async(conn).await?;
    Ok(())
}

/// What the history needs of a job, read once when it is taken.
pub struct Job<'a> {
    pub item: &'a [u8],
    pub read: Item<'a>,
    pub queue: &'a str,
}

impl Job<'_> {
    fn stored_item(&self) -> (&[u8], bool) {
        let cut = self.item.len() > ITEM_CAP;
        (&self.item[..self.item.len().min(ITEM_CAP)], cut)
    }

    fn deadline(&self) -> String {
        self.read.deadline.map(format_ts).unwrap_or_default()
    }

    fn depends_on(&self) -> String {
        if self.read.depends_on.is_empty() {
            String::new()
        } else {
            json!(self.read.depends_on).to_string()
        }
    }
}

/// Writes the record of a job that starts an attempt; returns the attempt number.
pub async fn start(
    conn: &mut Conn,
    job: &Job<'_>,
    agent: &str,
    started: DateTime<Utc>,
) -> redis::RedisResult<u32> {
    let (item, cut) = job.stored_item();
    let mut p = redis::pipe();
    p.invoke_script(
        START
            .key(keys::record(&job.read.id))
            .key(keys::ALL)
            .arg(&job.read.id)
            .arg(job.queue)
            .arg(agent)
            .arg(format_ts(started))
            .arg(item)
            .arg(if cut { "1" } else { "0" })
            .arg(job.deadline())
            .arg(job.depends_on())
            .arg(OPEN_TTL_S)
            .arg(ATTEMPTS_KEPT)
            .arg(keys::ALL_CAP)
            .arg(keys::record("")),
    );
    event(&mut p, &JobStatus::Running, job, agent, None);
    // The script's answer comes first (on a Cluster the event's reply follows it).
    let replies: Vec<redis::Value> = conn.query(&p).await?;
    let first = replies.into_iter().next().unwrap_or(redis::Value::Nil);
    Ok(redis::FromRedisValue::from_redis_value(first)?)
}

/// How a job's status changes: everything [`end_into`] writes.
pub struct Change<'a> {
    pub status: JobStatus,
    pub reason: Option<&'a str>,
    /// The attempt this change ends, with how it ended; `None` when the job never ran.
    pub attempt: Option<(u32, Outcome)>,
    pub exit_code: Option<i32>,
    pub duration: Option<Duration>,
    pub stdout: &'a [u8],
    pub stderr: &'a [u8],
    pub agent: &'a str,
}

impl<'a> Change<'a> {
    /// A job that ends or waits without running (no attempt, no output).
    pub fn not_run(status: JobStatus, reason: &'a str, agent: &'a str) -> Self {
        Self {
            status,
            reason: Some(reason),
            attempt: None,
            exit_code: None,
            duration: None,
            stdout: b"",
            stderr: b"",
            agent,
        }
    }
}

/// Adds the `SET` of a change (and, for a final status, its results entry) plus its event to
/// `p`, so it travels with the queue step that goes with it.
pub fn end_into(p: &mut redis::Pipeline, job: &Job<'_>, c: &Change<'_>, keep: &HistoryConfig) {
    let finished = format_ts(Utc::now());
    let is_final = c.status.is_final();
    let failed = c.status.is_failure();
    let (n, outcome) = c.attempt.unwrap_or((0, Outcome::GivenBack));
    let outcome = serde_json::to_value(outcome)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let reason = c
        .reason
        .map(|r| record::cut_start(r.as_bytes(), REASON_CAP))
        .unwrap_or_default();
    // A job that never started has no record yet: write what START would have.
    let (item, cut) = if n == 0 {
        job.stored_item()
    } else {
        (&b""[..], false)
    };
    let (keep_n, keep_for) = if failed {
        (keep.keep_failed, keep.failed_for)
    } else {
        (keep.keep_succeeded, keep.succeeded_for)
    };
    let ttl = if is_final {
        keep_for.as_secs()
    } else {
        OPEN_TTL_S
    };
    let ended = if is_final {
        keys::ended(job.queue, failed)
    } else {
        keys::ALL.to_string()
    };
    let duration_ms = c
        .duration
        .map(|d| d.as_millis().to_string())
        .unwrap_or_default();
    p.invoke_script(
        SET.key(keys::record(&job.read.id))
            .key(keys::ALL)
            .key(ended)
            .key(keys::live_log(&job.read.id))
            .arg(&job.read.id)
            .arg(c.status.as_str())
            .arg(&reason)
            .arg(n)
            .arg(outcome)
            .arg(&finished)
            .arg(c.exit_code.map(|e| e.to_string()).unwrap_or_default())
            .arg(&duration_ms)
            .arg(c.stdout)
            .arg(c.stderr)
            .arg(if is_final { "1" } else { "0" })
            .arg(keep_n)
            .arg(u64::try_from(keep_for.as_millis()).unwrap_or(u64::MAX))
            .arg(ttl)
            .arg(job.queue)
            .arg(item)
            .arg(if cut { "1" } else { "0" })
            .arg(job.deadline())
            .arg(job.depends_on())
            .arg(c.agent)
            .arg(keys::record("")),
    )
    .ignore();
    if is_final {
        p.cmd("XADD")
            .arg(keys::RESULTS)
            .arg("MAXLEN")
            .arg("~")
            .arg(keys::RESULTS_MAXLEN)
            .arg("*")
            .arg("job_id")
            .arg(&job.read.id)
            .arg("queue")
            .arg(job.queue)
            .arg("status")
            .arg(c.status.as_str())
            .arg("reason")
            .arg(&reason)
            .arg("attempts")
            .arg(n)
            .arg("agent_id")
            .arg(c.agent)
            .arg("duration_ms")
            .arg(&duration_ms)
            .arg("finished_at")
            .arg(&finished)
            .ignore();
    }
    event(p, &c.status, job, c.agent, c.reason);
}

/// Announces a status change on the events channel (seed 003's StreamEvents).
fn event(
    p: &mut redis::Pipeline,
    status: &JobStatus,
    job: &Job<'_>,
    agent: &str,
    reason: Option<&str>,
) {
    let Some(kind) = status.event() else { return };
    let mut e = json!({
        "type": kind,
        "time": format_ts(Utc::now()),
        "job_id": job.read.id,
        "queue": job.queue,
        "agent_id": agent,
    });
    if let Some(r) = reason {
        e["reason"] = json!(record::cut_start(r.as_bytes(), 256));
    }
    p.cmd("PUBLISH")
        .arg(keys::EVENTS)
        .arg(e.to_string())
        .ignore();
}

/// Publishes what a running handler wrote since the last call, in chunks of at most
/// [`keys::LOG_CHUNK`] bytes, to the job's capped live-log stream. Returns whether it wrote.
pub async fn flush_live(conn: &mut Conn, id: &str, live: &Live) -> redis::RedisResult<bool> {
    let pending = live.take();
    if pending.is_empty() {
        return Ok(false);
    }
    let key = keys::live_log(id);
    let mut p = redis::pipe();
    for (stream, bytes) in &pending {
        for chunk in bytes.chunks(keys::LOG_CHUNK) {
            p.cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(keys::LOG_ENTRIES)
                .arg("*")
                .arg(stream.as_str())
                .arg(chunk)
                .ignore();
        }
    }
    p.cmd("EXPIRE").arg(&key).arg(keys::LOG_TTL_S).ignore();
    p.query_async::<()>(conn).await?;
    Ok(true)
}
