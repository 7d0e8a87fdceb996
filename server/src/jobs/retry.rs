//! Retrying one job (operator): a `dead` or `expired` job goes back to its queue with its
//! failed-attempt count cleared; its queue's dead-letter list loses exactly that item.

use std::sync::LazyLock;

use shared::jobs::record::{field, Fields};
use shared::jobs::{keys as job_keys, read_item, retry_field, JobStatus};
use shared::keys;

use crate::control::Store;
use crate::error::ApiError;

/// Dead letters looked through for a job whose stored item was cut (longer than 16 KiB).
const SCAN_DEAD: isize = 10_000;

/// KEYS: dead letter, queue, retries. ARGV: item, retry field. Moves one copy of the item
/// from the dead letter to the back of the queue (like a new job) and clears its count; 0 when
/// the dead letter does not hold it.
static RETRY: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"#,
    )
});

/// KEYS: record, all. ARGV: id, status, reason. A status change the server makes, indexed by
/// Redis's clock like the agents' (so the job index sees it).
static MARK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'reason', ARGV[3], 'updated', now)
redis.call('ZADD', KEYS[2], now, ARGV[1])
return 1
"#,
    )
});

/// Retries job `id`; the number of jobs moved (1).
pub async fn retry(store: &Store, id: &str) -> Result<u64, ApiError> {
    let record = job_keys::record(id);
    let f: Fields = store
        .run(|mut c| async move { redis::cmd("HGETALL").arg(record).query_async(&mut c).await })
        .await?;
    let status = f
        .get(field::STATUS)
        .map(|s| JobStatus::parse(&String::from_utf8_lossy(s)))
        .ok_or_else(|| ApiError::NotFound(format!("no job {id} in the history")))?;
    if !status.is_failure() {
        return Err(ApiError::Conflict(format!(
            "job {id} is {}: only a dead or expired job can be retried",
            status.as_str()
        )));
    }
    let queue = f
        .get(field::QUEUE)
        .map(|q| String::from_utf8_lossy(q).into_owned())
        .filter(|q| keys::is_valid_name(q))
        .ok_or_else(|| {
            ApiError::Conflict(format!("job {id} names no queue it could go back to"))
        })?;
    if let Some(why) = crate::control::queues::cannot_move(store, &queue) {
        return Err(ApiError::Conflict(why));
    }
    let cut = f.get(field::ITEM_CUT).is_some_and(|v| v == b"1");
    let item = match (f.get(field::ITEM), cut) {
        (Some(item), false) => item.clone(),
        _ => find_dead(store, &queue, id).await?,
    };
    // The record says "retrying" before the item moves: an agent may take it at once, and
    // must find a record that has not ended (or it would start the record afresh).
    let reason = f
        .get(field::REASON)
        .map(|r| String::from_utf8_lossy(r).into_owned());
    mark(store, id, &JobStatus::Retrying, "retried by an operator").await?;
    let (dead, q, retries) = (
        keys::dead_letter(&queue),
        keys::queue(&queue),
        job_keys::retries(&queue),
    );
    let field = retry_field(&item);
    let moved: Result<u64, _> = store
        .run(|mut c| async move {
            RETRY
                .key(dead)
                .key(q)
                .key(retries)
                .arg(item)
                .arg(field)
                .invoke_async(&mut c)
                .await
        })
        .await;
    if !matches!(moved, Ok(1)) {
        mark(store, id, &status, reason.as_deref().unwrap_or_default()).await?;
    }
    if moved? == 0 {
        return Err(ApiError::Conflict(format!(
            "job {id} is not in dead_letter:queue:{queue} any more (retried or purged already)"
        )));
    }
    Ok(1)
}

async fn mark(store: &Store, id: &str, status: &JobStatus, reason: &str) -> Result<(), ApiError> {
    let (record, id, status, reason) = (
        job_keys::record(id),
        id.to_string(),
        status.as_str().to_string(),
        reason.to_string(),
    );
    store
        .run(|mut c| async move {
            MARK.key(record)
                .key(job_keys::ALL)
                .arg(id)
                .arg(status)
                .arg(reason)
                .invoke_async::<()>(&mut c)
                .await
        })
        .await?;
    Ok(())
}

/// The dead letter whose id is `id`, looked for among the newest [`SCAN_DEAD`].
async fn find_dead(store: &Store, queue: &str, id: &str) -> Result<Vec<u8>, ApiError> {
    let key = keys::dead_letter(queue);
    let items: Vec<Vec<u8>> = store
        .run(|mut c| async move {
            redis::cmd("LRANGE")
                .arg(key)
                .arg(0)
                .arg(SCAN_DEAD - 1)
                .query_async(&mut c)
                .await
        })
        .await?;
    items
        .into_iter()
        .find(|item| read_item(item).id == id)
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "job {id} is not among the newest {SCAN_DEAD} items of dead_letter:queue:{queue}"
            ))
        })
}
