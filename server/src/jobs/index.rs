//! The job index: every retained job's row and a short search text, kept in memory and
//! brought up to date from Redis once a second by one task, so listing, filtering and
//! searching never scan Redis (a scan of 100,000 records there would stall every worker).
//!
//! Each pass asks for the ids whose score in `agent-office:{jobs}:all` (the time of their last
//! change, by Redis's clock) is at or after the newest change already seen, then reads their
//! rows in batches of [`BATCH`] with one script each (rows and the ends of the texts cut in
//! Redis, so a 16 KiB tail never crosses the wire for the index). Every [`FULL_EVERY`] the
//! whole id list is read to drop jobs that retention removed. At most [`MAX_ENTRIES`] jobs are
//! held (the oldest go first); each holds at most [`TEXT_CAP`] bytes of each text.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use redis::Value;
use shared::jobs::record::cut_start;
use shared::jobs::{keys, JobRow, JobStatus};
use tokio_util::sync::CancellationToken;

use crate::control::Store;
use crate::redis_conn::RedisCallError;

/// How often the index catches up.
pub const EVERY: Duration = Duration::from_secs(1);
/// Jobs read per script call (bounds how long one call holds Redis).
const BATCH: usize = 500;
/// Changed jobs read per pass at most; the rest on the next passes.
const PASS_CAP: usize = 20_000;
/// How often the whole id list is compared, to drop jobs retention removed.
const FULL_EVERY: Duration = Duration::from_secs(30);
/// Sooner than [`FULL_EVERY`] when Redis holds fewer jobs than the index (a flush, a big
/// retention cut), but not more often than this.
const SHRUNK_EVERY: Duration = Duration::from_secs(3);
/// Jobs held at most.
pub const MAX_ENTRIES: usize = 200_000;
/// Bytes kept of the payload's start and of each output tail for search.
pub const TEXT_CAP: usize = 512;

/// KEYS: records. ARGV: text cap. Per record: queue, status, reason, attempts, agent_id,
/// started_at, finished_at, duration_ms, exit_code, the item's start and the last attempt's
/// stdout and stderr ends — or an empty list when the record is gone.
static ROWS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local cap = tonumber(ARGV[1])
local out = {}
for i, k in ipairs(KEYS) do
  local f = redis.call('HMGET', k, 'queue', 'status', 'reason', 'attempts', 'agent_id',
    'started_at', 'finished_at', 'duration_ms', 'exit_code', 'item')
  if f[2] then
    local n = f[4] or '0'
    local t = redis.call('HMGET', k, 'o:' .. n, 'e:' .. n)
    if f[10] then f[10] = string.sub(f[10], 1, cap) end
    f[11] = t[1] and string.sub(t[1], -cap) or false
    f[12] = t[2] and string.sub(t[2], -cap) or false
    out[i] = f
  else
    out[i] = {}
  end
end
return out
"#,
    )
});

/// One job as the index holds it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub row: JobRow,
    /// Lower-cased: id, the payload's start, the reason, the last output's ends.
    text: Box<str>,
}

impl Entry {
    fn matches(&self, q: &str) -> bool {
        self.text.contains(q)
    }
}

/// The index proper: jobs by (last change, id), newest last.
#[derive(Default)]
pub struct Index {
    order: BTreeMap<(i64, Box<str>), Entry>,
    at: HashMap<Box<str>, i64>,
    /// The newest change seen (ms, Redis's clock).
    watermark: i64,
    /// The first full pass is done: the index holds every retained job.
    pub ready: bool,
}

/// A page of the list.
#[derive(Debug)]
pub struct Page {
    pub rows: Vec<JobRow>,
    pub next_cursor: Option<String>,
    /// Jobs looked at to make it.
    pub examined: usize,
}

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub queue: Option<String>,
    /// Any of these (empty: all).
    pub statuses: Vec<JobStatus>,
    /// Lower-cased search text: an id prefix or a substring of the search text.
    pub q: Option<String>,
}

impl Filter {
    fn keeps(&self, e: &Entry) -> bool {
        if self.queue.as_deref().is_some_and(|q| q != e.row.queue) {
            return false;
        }
        if !self.statuses.is_empty() && !self.statuses.contains(&e.row.status) {
            return false;
        }
        // The text starts with the id, so an id prefix is a substring too.
        self.q.as_ref().is_none_or(|q| e.matches(q))
    }
}

impl Index {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Entry> {
        let at = *self.at.get(id)?;
        self.order.get(&(at, Box::from(id)))
    }

    fn put(&mut self, at: i64, e: Entry) {
        let id: Box<str> = e.row.id.as_str().into();
        if let Some(old) = self.at.insert(id.clone(), at) {
            self.order.remove(&(old, id.clone()));
        }
        self.order.insert((at, id), e);
        self.watermark = self.watermark.max(at);
        while self.order.len() > MAX_ENTRIES {
            if let Some(((_, id), _)) = self.order.pop_first() {
                self.at.remove(&id);
            }
        }
    }

    /// The ids whose last change is exactly `at` (a pass starts at the watermark inclusive).
    fn ids_at(&self, at: i64) -> HashSet<String> {
        self.order
            .range((at, Box::from(""))..)
            .take_while(|((t, _), _)| *t == at)
            .map(|((_, id), _)| id.to_string())
            .collect()
    }

    fn remove(&mut self, id: &str) {
        if let Some(at) = self.at.remove(id) {
            self.order.remove(&(at, Box::from(id)));
        }
    }

    /// Newest first, after `cursor` (`<ms>:<id>` of the last row of the page before).
    pub fn page(&self, f: &Filter, limit: usize, cursor: Option<&str>) -> Page {
        let upper = cursor.and_then(parse_cursor);
        let range = match &upper {
            Some((at, id)) => self.order.range(..(*at, Box::from(id.as_str()))),
            None => self.order.range(..),
        };
        let mut rows = Vec::new();
        let mut examined = 0;
        let mut last = None;
        for ((at, id), e) in range.rev() {
            examined += 1;
            if f.keeps(e) {
                if rows.len() == limit {
                    return Page {
                        rows,
                        next_cursor: last,
                        examined,
                    };
                }
                rows.push(e.row.clone());
                last = Some(format!("{at}:{id}"));
            }
        }
        Page {
            rows,
            next_cursor: None,
            examined,
        }
    }

    /// How many jobs of each status a queue (or every queue) holds.
    pub fn counts(&self, queue: Option<&str>) -> Vec<(JobStatus, usize)> {
        let mut c: HashMap<&JobStatus, usize> = HashMap::new();
        for e in self.order.values() {
            if queue.is_none_or(|q| q == e.row.queue) {
                *c.entry(&e.row.status).or_default() += 1;
            }
        }
        JobStatus::ALL
            .iter()
            .map(|s| (s.clone(), c.get(s).copied().unwrap_or(0)))
            .collect()
    }
}

fn parse_cursor(c: &str) -> Option<(i64, String)> {
    let (at, id) = c.split_once(':')?;
    Some((at.parse().ok()?, id.to_string()))
}

/// The index as the handlers share it.
pub type Shared = Arc<RwLock<Index>>;

/// Keeps `index` up to date until `stop`.
pub async fn run(store: Store, index: Shared, stop: CancellationToken) {
    let mut full_at = tokio::time::Instant::now();
    let mut warned = false;
    loop {
        let full = !read(&index).ready
            || full_at.elapsed() >= FULL_EVERY
            || (full_at.elapsed() >= SHRUNK_EVERY && shrunk(&store, &index).await);
        match pass(&store, &index, full).await {
            Ok(()) => {
                if full {
                    full_at = tokio::time::Instant::now();
                }
                if warned {
                    tracing::info!("job index: Redis answers again");
                    warned = false;
                }
            }
            Err(e) if !warned => {
                tracing::warn!("job index: cannot read the job history: {e}");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Whether Redis's list of jobs is shorter than the index (one `ZCARD`).
async fn shrunk(store: &Store, index: &Shared) -> bool {
    let n: Result<usize, _> = store
        .run(|mut c| async move { redis::cmd("ZCARD").arg(keys::ALL).query_async(&mut c).await })
        .await;
    n.is_ok_and(|n| n < read(index).len())
}

fn read(i: &Shared) -> std::sync::RwLockReadGuard<'_, Index> {
    // A poisoned lock only means a panic mid-update of plain data; the next pass repairs it.
    i.read().unwrap_or_else(|e| e.into_inner())
}

fn write(i: &Shared) -> std::sync::RwLockWriteGuard<'_, Index> {
    i.write().unwrap_or_else(|e| e.into_inner())
}

/// One pass: what changed since the watermark (everything on the first), and on `full`
/// passes the removals.
async fn pass(store: &Store, index: &Shared, full: bool) -> Result<(), RedisCallError> {
    if full {
        let ids: Vec<String> = store
            .run(|mut c| async move {
                redis::cmd("ZRANGE")
                    .arg(keys::ALL)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let present: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut i = write(index);
        let gone: Vec<Box<str>> =
            i.at.keys()
                .filter(|id| !present.contains(&id[..]))
                .cloned()
                .collect();
        for id in gone {
            i.remove(&id);
        }
    }
    let mut read_so_far = 0;
    loop {
        let (from, known) = {
            let i = read(index);
            (i.watermark, i.ids_at(i.watermark))
        };
        let changed: Vec<(String, i64)> = store
            .run(|mut c| async move {
                redis::cmd("ZRANGEBYSCORE")
                    .arg(keys::ALL)
                    .arg(from)
                    .arg("+inf")
                    .arg("WITHSCORES")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(BATCH)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let fresh: Vec<(String, i64)> = changed
            .iter()
            .filter(|(id, at)| !(*at == from && known.contains(id.as_str())))
            .cloned()
            .collect();
        if fresh.is_empty() {
            break;
        }
        let entries = rows(store, &fresh).await?;
        let mut i = write(index);
        for ((id, at), e) in fresh.iter().zip(entries) {
            match e {
                Some(e) => i.put(*at, e),
                None => i.remove(id),
            }
        }
        drop(i);
        read_so_far += fresh.len();
        if changed.len() < BATCH || read_so_far >= PASS_CAP {
            break;
        }
    }
    write(index).ready = true;
    Ok(())
}

/// The entries of some ids (`None`: gone), one script call.
async fn rows(store: &Store, ids: &[(String, i64)]) -> Result<Vec<Option<Entry>>, RedisCallError> {
    let keys: Vec<String> = ids.iter().map(|(id, _)| keys::record(id)).collect();
    let reply: Value = store
        .run(|mut c| async move {
            let mut inv = ROWS.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            inv.arg(TEXT_CAP).invoke_async(&mut c).await
        })
        .await?;
    let Value::Array(items) = reply else {
        return Ok(vec![None; ids.len()]);
    };
    let mut out: Vec<Option<Entry>> = items
        .into_iter()
        .zip(ids)
        .map(|(v, (id, _))| entry(id, v))
        .collect();
    out.resize(ids.len(), None);
    Ok(out)
}

/// An entry from one record's reply; `None` for a gone record or a reply of another shape.
fn entry(id: &str, v: Value) -> Option<Entry> {
    let Value::Array(f) = v else { return None };
    let s = |i: usize| -> Option<String> {
        match f.get(i)? {
            Value::BulkString(b) if !b.is_empty() => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    };
    let status = JobStatus::parse(&s(1)?);
    let row = JobRow {
        id: id.to_string(),
        queue: s(0).unwrap_or_default(),
        status,
        reason: s(2),
        attempts: s(3).and_then(|n| n.parse().ok()).unwrap_or(0),
        agent_id: s(4),
        started_at: s(5),
        finished_at: s(6),
        duration_ms: s(7).and_then(|n| n.parse().ok()),
        exit_code: s(8).and_then(|n| n.parse().ok()),
    };
    let payload = match f.get(9) {
        Some(Value::BulkString(b)) => cut_start(&shared::jobs::read_item(b).payload, TEXT_CAP),
        _ => String::new(),
    };
    let mut text = String::new();
    for part in [
        Some(id.to_string()),
        Some(payload),
        row.reason.clone(),
        s(10),
        s(11),
    ]
    .into_iter()
    .flatten()
    {
        text.push_str(&part.to_lowercase());
        text.push('\n');
    }
    Some(Entry {
        row,
        text: text.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: &str, queue: &str, status: JobStatus, text: &str) -> Entry {
        Entry {
            row: JobRow {
                id: id.into(),
                queue: queue.into(),
                status,
                reason: None,
                attempts: 1,
                agent_id: None,
                started_at: None,
                finished_at: None,
                duration_ms: None,
                exit_code: None,
            },
            text: format!("{id}\n{text}").to_lowercase().into(),
        }
    }

    #[test]
    fn pages_run_newest_first_and_the_cursor_continues_where_the_last_stopped() {
        let mut i = Index::default();
        for n in 0..25 {
            i.put(n, e(&format!("j{n:02}"), "q", JobStatus::Succeeded, ""));
        }
        // a job that changes moves to the top, once
        i.put(100, e("j03", "q", JobStatus::Dead, ""));
        assert_eq!(i.len(), 25);
        let all = Filter::default();
        let p1 = i.page(&all, 10, None);
        assert_eq!(p1.rows[0].id, "j03");
        assert_eq!(p1.rows[1].id, "j24");
        let p2 = i.page(&all, 10, p1.next_cursor.as_deref());
        assert_eq!(p2.rows[0].id, "j15");
        let p3 = i.page(&all, 10, p2.next_cursor.as_deref());
        assert_eq!(p3.rows.len(), 5);
        assert_eq!(p3.next_cursor, None);
        let seen: HashSet<String> = [p1, p2, p3]
            .into_iter()
            .flat_map(|p| p.rows.into_iter().map(|r| r.id))
            .collect();
        assert_eq!(seen.len(), 25);
    }

    #[test]
    fn filters_by_queue_status_id_prefix_and_text() {
        let mut i = Index::default();
        i.put(
            1,
            e("render-1", "image", JobStatus::Succeeded, "Frame 7 done"),
        );
        i.put(2, e("render-2", "image", JobStatus::Dead, "disk FULL"));
        i.put(3, e("mail-1", "mail", JobStatus::Dead, "smtp refused"));
        let f = |queue: Option<&str>, statuses: &[JobStatus], q: Option<&str>| Filter {
            queue: queue.map(String::from),
            statuses: statuses.to_vec(),
            q: q.map(str::to_lowercase),
        };
        let ids = |f: Filter| -> Vec<String> {
            i.page(&f, 50, None)
                .rows
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(ids(f(Some("image"), &[], None)), ["render-2", "render-1"]);
        assert_eq!(
            ids(f(None, &[JobStatus::Dead], None)),
            ["mail-1", "render-2"]
        );
        assert_eq!(ids(f(None, &[], Some("render-"))), ["render-2", "render-1"]);
        assert_eq!(ids(f(None, &[], Some("disk full"))), ["render-2"]);
        assert_eq!(ids(f(None, &[], Some("FRAME 7"))), ["render-1"]);
        assert!(ids(f(Some("mail"), &[], Some("frame"))).is_empty());
        let counts = i.counts(Some("image"));
        assert!(counts.contains(&(JobStatus::Dead, 1)));
        assert!(counts.contains(&(JobStatus::Succeeded, 1)));
    }

    #[test]
    fn replies_of_any_shape_read_without_panicking() {
        assert!(entry("x", Value::Nil).is_none());
        assert!(entry("x", Value::Array(vec![])).is_none());
        let v = Value::Array(vec![
            Value::BulkString(b"q".to_vec()),
            Value::BulkString(b"running".to_vec()),
            Value::Int(7),
        ]);
        let got = entry("x", v).unwrap();
        assert_eq!(got.row.status, JobStatus::Running);
        assert_eq!(got.row.attempts, 0);
    }
}
