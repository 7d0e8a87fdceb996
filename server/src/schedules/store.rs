//! Schedules in Redis (README "Schedules"): the schedules and the last due time each pushed
//! under `{sched}` keys, and per queue the due times already claimed, in the queue's own slot so
//! that claiming a due time and pushing its job are one script.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use shared::schedules::Schedule;

use crate::control::Store;
use crate::redis_conn::RedisCallError;

pub const SCHEDULES: &str = "agent-office:{sched}:schedules";
/// name → the last due time pushed (ms since the epoch).
pub const LAST: &str = "agent-office:{sched}:last";
/// Set to Redis's time on every change of a schedule, so the firing task reloads only then
/// (a time, not a counter: a counter would start again at 1 after a flush and look unchanged).
pub const VERSION: &str = "agent-office:{sched}:version";
/// Claims are kept this long (ms).
const CLAIM_KEEP_MS: i64 = 7 * 24 * 3600 * 1000;

/// The claims of the schedules that push to `queue`, in the slot of `queue:<queue>`; `None` for a
/// queue name whose braces make no hash tag (its key's slot cannot be named by another key).
pub fn claims(queue: &str) -> Option<String> {
    let key = shared::keys::queue(queue);
    let tag = match shared::slot::hash_tag(key.as_bytes()) {
        // The tag lies between two ASCII braces of a `str`: valid UTF-8.
        Some(t) => String::from_utf8_lossy(t).into_owned(),
        None if key.contains(['{', '}']) => return None,
        None => key,
    };
    Some(format!("agent-office:fired:{{{tag}}}"))
}

/// KEYS: claims, queue. ARGV: member (`<name>|<due>`), due ms, item, keep ms. Claims one due
/// time of one schedule and pushes its job, or does nothing when it was claimed before.
static FIRE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[4]))
return 1
"#,
    )
});

/// KEYS: last. ARGV: name, due ms. Moves a schedule's last due time forward, never back.
static SET_LAST: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') or 0
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"#,
    )
});

/// Pushes the job of one due time unless it was pushed before; true when this call pushed it.
pub async fn fire(
    store: &Store,
    s: &Schedule,
    due: DateTime<Utc>,
    item: String,
) -> Result<bool, RedisCallError> {
    let Some(claims) = claims(&s.queue) else {
        return Ok(false);
    };
    let queue = shared::keys::queue(&s.queue);
    let member = format!("{}|{}", s.name, due.timestamp_millis());
    let due_ms = due.timestamp_millis();
    let pushed: u32 = store
        .run(|mut c| async move {
            FIRE.key(claims)
                .key(queue)
                .arg(member)
                .arg(due_ms)
                .arg(item)
                .arg(CLAIM_KEEP_MS)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(pushed == 1)
}

pub async fn set_last(store: &Store, name: &str, due: DateTime<Utc>) -> Result<(), RedisCallError> {
    let name = name.to_string();
    store
        .run(|mut c| async move {
            SET_LAST
                .key(LAST)
                .arg(name)
                .arg(due.timestamp_millis())
                .invoke_async::<()>(&mut c)
                .await
        })
        .await
}

/// Every schedule (unreadable entries are skipped and logged) and its last due time.
pub async fn all(
    store: &Store,
) -> Result<(Vec<Schedule>, HashMap<String, DateTime<Utc>>), RedisCallError> {
    let (raw, last): (HashMap<String, String>, HashMap<String, i64>) = store
        .run(|mut c| async move {
            redis::pipe()
                .cmd("HGETALL")
                .arg(SCHEDULES)
                .cmd("HGETALL")
                .arg(LAST)
                .query_async(&mut c)
                .await
        })
        .await?;
    let mut schedules: Vec<Schedule> = raw
        .into_iter()
        .filter_map(|(name, json)| match serde_json::from_str(&json) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(schedule = %name, "skipping a schedule that cannot be read: {e}");
                None
            }
        })
        .collect();
    schedules.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((schedules, last_times(last)))
}

/// What a firing pass reads each time: the version, Redis's clock and the last due times.
pub struct Tick {
    pub version: String,
    pub now: DateTime<Utc>,
    pub last: HashMap<String, DateTime<Utc>>,
}

pub async fn tick(store: &Store) -> Result<Tick, RedisCallError> {
    let (v, (secs, micros), last): (Option<String>, (i64, i64), HashMap<String, i64>) = store
        .run(|mut c| async move {
            redis::pipe()
                .cmd("GET")
                .arg(VERSION)
                .cmd("TIME")
                .cmd("HGETALL")
                .arg(LAST)
                .query_async(&mut c)
                .await
        })
        .await?;
    let now = DateTime::from_timestamp(secs, u32::try_from(micros * 1000).unwrap_or(0))
        .unwrap_or_else(Utc::now);
    Ok(Tick {
        version: v.unwrap_or_default(),
        now,
        last: last_times(last),
    })
}

fn last_times(raw: HashMap<String, i64>) -> HashMap<String, DateTime<Utc>> {
    raw.into_iter()
        .filter_map(|(k, ms)| Some((k, DateTime::from_timestamp_millis(ms)?)))
        .collect()
}

/// Writes a schedule; `create`: refuses (false) when the name is taken; else refuses when it
/// is not there. The version moves with it.
pub async fn put(store: &Store, s: &Schedule, create: bool) -> Result<bool, RedisCallError> {
    let json = serde_json::to_string(s).unwrap_or_default();
    let name = s.name.clone();
    let written: u32 = store
        .run(|mut c| async move {
            PUT.key(SCHEDULES)
                .key(VERSION)
                .arg(name)
                .arg(json)
                .arg(if create { "create" } else { "update" })
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(written == 1)
}

/// KEYS: schedules, version. ARGV: name, json, create|update.
static PUT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local exists = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if (ARGV[3] == 'create') == exists then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local t = redis.call('TIME')
redis.call('SET', KEYS[2], t[1] .. '.' .. t[2])
return 1
"#,
    )
});

/// KEYS: schedules, last, version. ARGV: name.
static DELETE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
local t = redis.call('TIME')
redis.call('SET', KEYS[3], t[1] .. '.' .. t[2])
return 1
"#,
    )
});

/// Deletes a schedule; false when there was none.
pub async fn delete(store: &Store, name: &str) -> Result<bool, RedisCallError> {
    let name = name.to_string();
    let n: u32 = store
        .run(|mut c| async move {
            DELETE
                .key(SCHEDULES)
                .key(LAST)
                .key(VERSION)
                .arg(name)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(n == 1)
}

pub async fn count(store: &Store) -> Result<usize, RedisCallError> {
    store
        .run(|mut c| async move { redis::cmd("HLEN").arg(SCHEDULES).query_async(&mut c).await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_share_the_slot_of_their_queue() {
        assert_eq!(
            claims("image-render").as_deref(),
            Some("agent-office:fired:{queue:image-render}")
        );
        assert_eq!(claims("{img}").as_deref(), Some("agent-office:fired:{img}"));
        assert_eq!(claims("a{b").as_deref(), None);
        assert_eq!(claims("a{}b").as_deref(), None);
    }
}
