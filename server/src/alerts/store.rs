//! Alert state in Redis: the leader lease, the rule memory, the outbox and the recent list.
//!
//! The memory and the outbox change together in one script that first checks the lease, so a
//! replica that lost its lease can never enqueue, and an evaluation is either fully recorded
//! (memory + messages) or not at all: no event is sent twice or skipped across restarts.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde::Serialize;

use shared::alerts::{BatchRecord, DeliveryState};

use super::rules::Memory;
use crate::redis_conn::{with_timeout, RedisCallError};

// Every key shares the `{alerts}` hash slot: the commit script and the outbox moves take
// several at once, which a Redis Cluster allows only within one slot.
pub const LEADER: &str = "agent-office:{alerts}:leader";
pub const MEMORY: &str = "agent-office:{alerts}:memory";
pub const OUTBOX: &str = "agent-office:{alerts}:outbox";
pub const SENDING: &str = "agent-office:{alerts}:sending";
pub const RECENT: &str = "agent-office:{alerts}:recent";
pub const BATCHES: &str = "agent-office:{alerts}:batches";
/// Bumped by every commit: a commit names the generation its memory was read at, so a retry
/// of a commit that did happen (its reply lost) is refused instead of sent twice.
pub const GENERATION: &str = "agent-office:{alerts}:generation";

/// The names of earlier versions (without the hash tag), each with its name now: what a
/// server finds there is moved once (see [`Store::move_old_keys`]).
const OLD_NAMES: [(&str, &str); 7] = [
    ("agent-office:alerts:leader", LEADER),
    ("agent-office:alerts:memory", MEMORY),
    ("agent-office:alerts:outbox", OUTBOX),
    ("agent-office:alerts:sending", SENDING),
    ("agent-office:alerts:recent", RECENT),
    ("agent-office:alerts:batches", BATCHES),
    ("agent-office:alerts:generation", GENERATION),
];

/// KEYS: old, new. Renames old to new unless new exists (its TTL goes with it); 1 if moved.
const MOVE_OLD: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1";
/// How many batches the recent list keeps.
pub const RECENT_CAP: usize = 100;
/// How many undelivered messages the outbox keeps. Beyond it (a channel down for days) the
/// oldest are dropped, and the commit reports how many, so memory stays bounded.
pub const OUTBOX_CAP: usize = 10_000;

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

/// KEYS: leader, memory, outbox, recent, batches, generation. ARGV: me, memory, batch record
/// (or ''), batch id, recent cap, outbox cap, the generation the memory was read at, then the
/// deliveries. Returns 0 (not the leader), -1 (the memory moved since it was read: a commit
/// whose reply was lost did happen, or another leader wrote), else 1 + messages dropped.
/// Every key's type is checked before anything is written, and the memory goes last, so a
/// failing step leaves the memory as it was and the same transitions are found again.
const COMMIT: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if (redis.call('GET', KEYS[6]) or '0') ~= ARGV[7] then return -1 end
for i, want in ipairs({'string', 'list', 'list', 'hash', 'string'}) do
  local k = ({KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]})[i]
  local t = redis.call('TYPE', k)['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('WRONGTYPE ' .. k .. ' is a ' .. t .. ', not a ' .. want)
  end
end
local dropped = 0
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[5], ARGV[4], ARGV[3])
  redis.call('LPUSH', KEYS[4], ARGV[4])
  for _, id in ipairs(redis.call('LRANGE', KEYS[4], ARGV[5], -1)) do
    redis.call('HDEL', KEYS[5], id)
  end
  redis.call('LTRIM', KEYS[4], 0, ARGV[5] - 1)
  for i = 8, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
  local over = redis.call('LLEN', KEYS[3]) - tonumber(ARGV[6])
  if over > 0 then
    redis.call('LTRIM', KEYS[3], over, -1)
    dropped = over
  end
end
redis.call('INCR', KEYS[6])
redis.call('SET', KEYS[2], ARGV[2])
return 1 + dropped";

const SET_DELIVERY: &str = r"
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local batch = cjson.decode(raw)
batch['delivery'][ARGV[2]] = ARGV[3]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(batch))
return 1";

/// What a commit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Committed {
    /// Recorded; the memory is now at `generation`; the outbox cap dropped `dropped` messages.
    Done { generation: u64, dropped: usize },
    /// We no longer hold the lease: nothing written.
    NotLeader,
    /// The memory moved since we read it (an earlier commit of ours whose reply was lost did
    /// happen, or another leader wrote): nothing written; read it again.
    Moved,
}

pub struct Store {
    pub conn: MultiplexedConnection,
    pub timeout: Duration,
    /// [`OUTBOX_CAP`] in production.
    pub outbox_cap: usize,
}

impl Store {
    async fn call<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
    ) -> Result<T, RedisCallError> {
        with_timeout(self.timeout, cmd.query_async(&mut self.conn)).await
    }

    /// Moves the alert state an earlier version kept under untagged names (one Redis: both
    /// names live there) to the names now, once: the memory, the outbox not yet delivered,
    /// the recent batches and the lease with its TTL (so a replica of the earlier version
    /// loses its lease instead of sharing it). Nothing is overwritten. Returns how many keys
    /// moved. On a Cluster the old names never held anything (the earlier versions refused it).
    pub async fn move_old_keys(&mut self) -> Result<usize, RedisCallError> {
        let mut moved = 0;
        for (old, new) in OLD_NAMES {
            let mut step = redis::cmd("EVAL");
            step.arg(MOVE_OLD).arg(2).arg(old).arg(new);
            moved += self.call::<usize>(&step).await?;
        }
        Ok(moved)
    }

    /// Takes the lease if free, or renews it if ours. True while we hold it.
    pub async fn hold_lease(&mut self, me: &str, lease: Duration) -> Result<bool, RedisCallError> {
        let ms = lease.as_millis() as u64;
        let mut renew = redis::cmd("EVAL");
        renew.arg(RENEW).arg(1).arg(LEADER).arg(me).arg(ms);
        if self.call::<i64>(&renew).await? == 1 {
            return Ok(true);
        }
        let mut take = redis::cmd("SET");
        take.arg(LEADER).arg(me).arg("NX").arg("PX").arg(ms);
        Ok(self.call::<Option<String>>(&take).await?.is_some())
    }

    /// Gives the lease up (on shutdown) so another replica takes over at once.
    pub async fn release_lease(&mut self, me: &str) -> Result<(), RedisCallError> {
        let mut release = redis::cmd("EVAL");
        release
            .arg("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")
            .arg(1)
            .arg(LEADER)
            .arg(me);
        self.call::<i64>(&release).await.map(|_| ())
    }

    /// The stored memory (`None` on a brand-new Redis; unreadable memory is logged and reset)
    /// and the generation it was written at, read together.
    pub async fn load_memory(&mut self) -> Result<(Option<Memory>, u64), RedisCallError> {
        let (raw, generation): (Option<String>, Option<u64>) = self
            .call(redis::cmd("MGET").arg(MEMORY).arg(GENERATION))
            .await?;
        let memory = raw.and_then(|r| match serde_json::from_str(&r) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(error = %e, "stored alert memory is unreadable; starting afresh");
                None
            }
        });
        Ok((memory, generation.unwrap_or(0)))
    }

    /// Records a new memory and, when there are alerts, the batch and its deliveries — only if
    /// we still hold the lease and the memory is still the one read at `generation`.
    pub async fn commit(
        &mut self,
        me: &str,
        generation: u64,
        memory: &Memory,
        batch: Option<(&BatchRecord, &[Delivery])>,
    ) -> Result<Committed, RedisCallError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(COMMIT)
            .arg(6)
            .arg(LEADER)
            .arg(MEMORY)
            .arg(OUTBOX)
            .arg(RECENT)
            .arg(BATCHES)
            .arg(GENERATION)
            .arg(me)
            .arg(json(memory));
        match batch {
            Some((record, deliveries)) => {
                cmd.arg(json(record))
                    .arg(&record.id)
                    .arg(RECENT_CAP)
                    .arg(self.outbox_cap)
                    .arg(generation.to_string());
                for d in deliveries {
                    cmd.arg(json(d));
                }
            }
            None => {
                cmd.arg("")
                    .arg("")
                    .arg(RECENT_CAP)
                    .arg(self.outbox_cap)
                    .arg(generation.to_string());
            }
        }
        let answer = self.call::<i64>(&cmd).await?;
        Ok(match answer {
            0 => Committed::NotLeader,
            -1 => Committed::Moved,
            n => Committed::Done {
                generation: generation + 1,
                dropped: usize::try_from(n - 1).unwrap_or(0),
            },
        })
    }

    /// Moves deliveries a dead leader left half-done back to the head of the outbox.
    pub async fn requeue_unfinished(&mut self) -> Result<usize, RedisCallError> {
        let mut moved = 0;
        loop {
            let mut mv = redis::cmd("LMOVE");
            mv.arg(SENDING).arg(OUTBOX).arg("RIGHT").arg("LEFT");
            if self.call::<Option<Vec<u8>>>(&mv).await?.is_none() {
                return Ok(moved);
            }
            moved += 1;
        }
    }

    /// The next delivery, moved to the in-flight list (raw bytes, so a bad entry can be removed).
    pub async fn take(&mut self) -> Result<Option<Vec<u8>>, RedisCallError> {
        let mut mv = redis::cmd("LMOVE");
        mv.arg(OUTBOX).arg(SENDING).arg("LEFT").arg("RIGHT");
        self.call(&mv).await
    }

    /// Removes a finished delivery from the in-flight list.
    pub async fn finish(&mut self, raw: &[u8]) -> Result<(), RedisCallError> {
        self.call::<i64>(redis::cmd("LREM").arg(SENDING).arg(1).arg(raw))
            .await
            .map(|_| ())
    }

    pub async fn set_delivery(
        &mut self,
        batch: &str,
        channel: &str,
        state: &DeliveryState,
    ) -> Result<(), RedisCallError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SET_DELIVERY)
            .arg(1)
            .arg(BATCHES)
            .arg(batch)
            .arg(channel)
            .arg(state.to_string());
        self.call::<i64>(&cmd).await.map(|_| ())
    }

    /// The recent batches, newest first.
    pub async fn recent(&mut self) -> Result<Vec<BatchRecord>, RedisCallError> {
        let ids: Vec<String> = self
            .call(redis::cmd("LRANGE").arg(RECENT).arg(0).arg(RECENT_CAP - 1))
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let raw: Vec<Option<String>> = self
            .call(redis::cmd("HMGET").arg(BATCHES).arg(&ids))
            .await?;
        Ok(raw
            .into_iter()
            .flatten()
            .filter_map(|r| serde_json::from_str(&r).ok())
            .collect())
    }
}

pub use super::channel::Delivery;

fn json<T: Serialize>(value: &T) -> String {
    // Plain data with string keys: serialising cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::slot::key_slot;

    #[test]
    fn every_alert_key_shares_one_slot_and_the_old_names_map_to_them() {
        let slot = key_slot(LEADER.as_bytes());
        for (old, new) in OLD_NAMES {
            assert_eq!(key_slot(new.as_bytes()), slot, "{new}");
            assert_eq!(old.replace(":alerts:", ":{alerts}:"), new);
        }
    }
}
