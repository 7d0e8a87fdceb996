//! One pipeline's reliable queue in Redis (SPEC §2 keys): take a job into our own processing
//! list, acknowledge it, retry it or dead-letter it, give it back, recover what a previous run
//! left. Producers `LPUSH`, so the oldest job is on the right: we take from the right and
//! give back to the right (front); a retry goes to the left (back).
//!
//! Every step that touches several keys is one Lua script, so an agent killed half-way loses
//! or duplicates no job. The retry counts live in Redis (`agent-office:retries:queue:<q>`, a
//! hash job → failed attempts, TTL 7 days), so a restart does not reset them. That key shares
//! the queue's hash slot whenever the queue name carries a hash tag (`{img}`), as the contract
//! keys do, so the scripts run on Redis Cluster with such names.

use std::sync::LazyLock;
use std::time::Duration;

use crate::redis_target::Conn;
use shared::keys;

/// The keys of one queue as this agent consumes it.
#[derive(Clone, Debug)]
pub struct QueueKeys {
    pub queue: String,
    pub processing: String,
    pub dead: String,
    pub retries: String,
    /// Jobs waiting for their dependencies (SPEC §10).
    pub waiting: String,
    /// `queue:<on_failure>`: compensation jobs for dead letters.
    pub compensate: Option<String>,
}

impl QueueKeys {
    pub fn new(queue: &str, agent_id: &str, on_failure: Option<&str>) -> Self {
        Self {
            queue: keys::queue(queue),
            processing: keys::processing(queue, agent_id),
            dead: keys::dead_letter(queue),
            retries: retries_key(queue),
            waiting: shared::jobs::keys::waiting(queue),
            compensate: on_failure.map(keys::queue),
        }
    }
}

pub fn retries_key(queue: &str) -> String {
    shared::jobs::keys::retries(queue)
}

/// Retry counts expire this long after the last failure of any job of the queue.
const RETRIES_TTL_S: u64 = 7 * 24 * 3600;

/// The retry-count field of a job (`shared::jobs::retry_field`; the server's retry action
/// clears it too).
pub use shared::jobs::retry_field as job_field;

/// What became of a failed job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failed {
    /// Back on the queue (attempt n of max_retries + 1 failed).
    Retried {
        attempts: u32,
    },
    DeadLettered {
        attempts: u32,
    },
    /// It was no longer in our processing list (an operator requeued it): nothing done.
    Gone,
}

/// KEYS: processing, queue, dead, retries, compensate (or the dead list again when none);
/// ARGV: job, field, max_retries, ttl, has_compensate. Returns {outcome, attempts} where
/// outcome 0 = gone, 1 = retried, 2 = dead-lettered. Every key is checked before anything
/// is written, so a WRONGTYPE error leaves everything as it was.
static FAIL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('LPOS', KEYS[1], ARGV[1]) == false then return {0, 0} end
local n = redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
redis.call('EXPIRE', KEYS[4], ARGV[4])
if n > tonumber(ARGV[3]) then
  redis.call('LREM', KEYS[1], -1, ARGV[1])
  redis.call('LPUSH', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[2])
  if ARGV[5] == '1' then redis.call('LPUSH', KEYS[5], ARGV[1]) end
  return {2, n}
end
redis.call('LREM', KEYS[1], -1, ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[1])
return {1, n}
"#,
    )
});

/// KEYS: from, to; ARGV: job, `R` or `L`. Moves one copy of a job from one list to the
/// right (front of a queue) or left end of another; 0 when it was not there.
static MOVE_ONE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end
if ARGV[2] == 'R' then redis.call('RPUSH', KEYS[2], ARGV[1]) else redis.call('LPUSH', KEYS[2], ARGV[1]) end
return 1
"#,
    )
});

/// Which end of the target list a moved job goes to.
#[derive(Clone, Copy)]
pub enum End {
    /// The right: the front of a queue (taken next), like a job given back.
    Front,
    /// The left: where producers push, and where dead letters go.
    Back,
}

/// Loads the scripts that travel inside pipelines (a pipeline cannot fall back from EVALSHA
/// to EVAL by itself): done on every new connection, so a restarted Redis has them again.
pub async fn load_scripts(conn: &mut Conn) -> redis::RedisResult<()> {
    MOVE_ONE.load_async(conn).await?;
    crate::history::load_scripts(conn).await
}

fn side(end: End) -> &'static str {
    match end {
        End::Front => "R",
        End::Back => "L",
    }
}

/// [`move_one`] added to a pipeline (its answer ignored: a job an operator moved meanwhile is
/// simply not there).
pub fn move_one_into(p: &mut redis::Pipeline, from: &str, to: &str, job: &[u8], end: End) {
    p.invoke_script(MOVE_ONE.key(from).key(to).arg(job).arg(side(end)))
        .ignore();
}

/// Moves one job between two lists of the same queue (one slot when its name has a tag).
pub async fn move_one(
    conn: &mut Conn,
    from: &str,
    to: &str,
    job: &[u8],
    end: End,
) -> redis::RedisResult<bool> {
    let n: u32 = MOVE_ONE
        .key(from)
        .key(to)
        .arg(job)
        .arg(side(end))
        .invoke_async(conn)
        .await?;
    Ok(n == 1)
}

/// Takes the next job into our processing list, waiting up to `wait` (BLMOVE). The
/// connection must be this slot's own: a blocking call holds it.
pub async fn take(
    conn: &mut Conn,
    k: &QueueKeys,
    wait: Duration,
) -> redis::RedisResult<Option<Vec<u8>>> {
    redis::cmd("BLMOVE")
        .arg(&k.queue)
        .arg(&k.processing)
        .arg("RIGHT")
        .arg("LEFT")
        .arg(wait.as_secs_f64())
        .query_async(conn)
        .await
}

/// Success: remove exactly that job and forget its retry count (added to `p`, which may
/// carry the job's history with it: one round trip).
pub fn ack_into(p: &mut redis::Pipeline, k: &QueueKeys, job: &[u8]) {
    p.cmd("LREM")
        .arg(&k.processing)
        .arg(-1)
        .arg(job)
        .ignore()
        .cmd("HDEL")
        .arg(&k.retries)
        .arg(job_field(job))
        .ignore();
}

pub async fn fail(
    conn: &mut Conn,
    k: &QueueKeys,
    job: &[u8],
    max_retries: u32,
) -> redis::RedisResult<Failed> {
    let compensate = k.compensate.as_deref();
    let (outcome, attempts): (u8, u32) = FAIL
        .key(&k.processing)
        .key(&k.queue)
        .key(&k.dead)
        .key(&k.retries)
        .key(compensate.unwrap_or(&k.dead))
        .arg(job)
        .arg(job_field(job))
        .arg(max_retries)
        .arg(RETRIES_TTL_S)
        .arg(if compensate.is_some() { "1" } else { "0" })
        .invoke_async(conn)
        .await?;
    Ok(match outcome {
        0 => Failed::Gone,
        2 => Failed::DeadLettered { attempts },
        _ => Failed::Retried { attempts },
    })
}

/// Puts a job we took but will not run (paused, shutting down) back at the front.
pub async fn give_back(conn: &mut Conn, k: &QueueKeys, job: &[u8]) -> redis::RedisResult<bool> {
    move_one(conn, &k.processing, &k.queue, job, End::Front).await
}

/// The jobs a previous run of this agent left in its processing list, oldest first.
pub async fn leftovers(conn: &mut Conn, k: &QueueKeys) -> redis::RedisResult<Vec<Vec<u8>>> {
    let mut jobs: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(&k.processing)
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await?;
    jobs.reverse();
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_fields_are_bounded() {
        assert_eq!(job_field(b"job-1"), b"j:job-1");
        let big = vec![b'x'; 10_000];
        let f = job_field(&big);
        assert_eq!(f.len(), 2 + 64);
        assert_ne!(job_field(&[b'y'; 10_000]), f);
    }

    #[test]
    fn keys_follow_the_contract() {
        let k = QueueKeys::new("image-render", "a1", Some("image-compensate"));
        assert_eq!(k.queue, "queue:image-render");
        assert_eq!(k.processing, "processing:queue:image-render:a1");
        assert_eq!(k.dead, "dead_letter:queue:image-render");
        assert_eq!(k.compensate.as_deref(), Some("queue:image-compensate"));
        // a hash-tagged queue keeps the retry count in the queue's slot
        assert_eq!(retries_key("{img}"), "agent-office:retries:queue:{img}");
    }
}
