//! Operator actions on the reliable queues (SPEC §2 keys): retry or purge dead letters, and
//! requeue an orphaned processing list. Each is one Lua script, so a server dying half-way
//! loses or duplicates no job. The contract keys sit in different hash slots unless the queue
//! name carries a hash tag (`queue:{img}`, `dead_letter:queue:{img}`, `processing:queue:{img}:c`
//! share the slot of `img`); on Redis Cluster, use such names to get these actions.

use std::sync::LazyLock;

use shared::keys;

use super::store::Store;
use crate::redis_conn::RedisCallError;

/// Most jobs one action moves; a bigger list takes several calls (the answer says what is
/// left), so no call holds Redis for long.
pub const MAX_MOVE: u64 = 10_000;

/// KEYS: from, to; ARGV: how many, from side, to side. Returns jobs moved.
static MOVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local moved = 0
for i = 1, tonumber(ARGV[1]) do
  if not redis.call('LMOVE', KEYS[1], KEYS[2], ARGV[2], ARGV[3]) then break end
  moved = moved + 1
end
return {moved, redis.call('LLEN', KEYS[1])}
"#,
    )
});

static PURGE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
"#,
    )
});

/// On a Redis Cluster, why jobs cannot move between `q`'s lists in one step (its name has no
/// hash tag, so its queue, dead-letter and processing keys fall in different slots); `None`
/// when they can.
pub fn cannot_move(store: &Store, q: &str) -> Option<String> {
    (store.on_cluster() && shared::slot::hash_tag(q.as_bytes()).is_none()).then(|| {
        format!(
            "on a Redis Cluster the lists of queue {q:?} are in different hash slots, so no job \
             can move between them in one step: name the queue with a hash tag (\"{{{q}}}\") \
             (SPEC §12); nothing was moved"
        )
    })
}

/// Jobs moved, and what is still in the source list.
pub struct Moved {
    pub moved: u64,
    pub remaining: u64,
}

async fn move_jobs(
    store: &Store,
    from: String,
    to: String,
    count: u64,
    from_side: &str,
    to_side: &str,
) -> Result<Moved, RedisCallError> {
    let (moved, remaining): (u64, u64) = store
        .run(|mut c| async move {
            MOVE.key(from)
                .key(to)
                .arg(count.min(MAX_MOVE))
                .arg(from_side)
                .arg(to_side)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(Moved { moved, remaining })
}

/// Oldest dead letters first, to the back of the queue like new jobs (producers `LPUSH`).
pub async fn retry_dead(store: &Store, q: &str, count: u64) -> Result<Moved, RedisCallError> {
    move_jobs(
        store,
        keys::dead_letter(q),
        keys::queue(q),
        count,
        "RIGHT",
        "LEFT",
    )
    .await
}

pub async fn purge_dead(store: &Store, q: &str) -> Result<u64, RedisCallError> {
    let key = keys::dead_letter(q);
    store
        .run(|mut c| async move { PURGE.key(key).invoke_async(&mut c).await })
        .await
}

/// An orphan's jobs go to the front of the queue (consumers take from the right), oldest
/// nearest the front, so they run next and in their original order.
pub async fn requeue(store: &Store, q: &str, owner: &str) -> Result<Moved, RedisCallError> {
    move_jobs(
        store,
        keys::processing(q, owner),
        keys::queue(q),
        MAX_MOVE,
        "LEFT",
        "RIGHT",
    )
    .await
}
