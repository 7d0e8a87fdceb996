//! The agent registry in Redis: register (update, never duplicate), unregister, replace
//! labels, and store a heartbeat. Each is one Lua script over `{ctl}` keys, and each bumps
//! `agents:version` so the collector re-reads the registry only when it changed.

use std::sync::LazyLock;

use shared::control::keys;
use shared::control::{AgentHeartbeat, AgentRecord, Labels, Registration};

use super::store::Store;
use crate::error::ApiError;
use crate::redis_conn::RedisCallError;

static REGISTER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return false end
local rec = cjson.decode(ARGV[2])
if old then
  local ok, prev = pcall(cjson.decode, old)
  if ok and type(prev) == 'table' then
    if type(prev.registered_at) == 'string' then rec.registered_at = prev.registered_at end
    if prev.labels_from_operator == true and type(prev.labels) == 'table' then
      rec.labels = prev.labels
      rec.labels_from_operator = true
    end
  end
end
local out = cjson.encode(rec)
redis.call('HSET', KEYS[1], ARGV[1], out)
redis.call('INCR', KEYS[2])
return out
"#,
    )
});

static UNREGISTER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local n = redis.call('HDEL', KEYS[1], ARGV[1])
if n == 1 then
  redis.call('INCR', KEYS[2])
  redis.call('DEL', KEYS[3], KEYS[4])
end
return n
"#,
    )
});

static LABELS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return false end
local ok, rec = pcall(cjson.decode, old)
if not ok or type(rec) ~= 'table' then return redis.error_reply('registry record is not JSON') end
rec.labels = cjson.decode(ARGV[2])
rec.labels_from_operator = true
rec.updated_at = ARGV[3]
local out = cjson.encode(rec)
redis.call('HSET', KEYS[1], ARGV[1], out)
redis.call('INCR', KEYS[2])
return out
"#,
    )
});

static BEAT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1
"#,
    )
});

/// Why a registry write did nothing.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "the registry is full ({} agents); unregister some first",
        keys::MAX_AGENTS
    )]
    Full,
    #[error("no agent {0:?} is registered")]
    Unknown(String),
    #[error(transparent)]
    Redis(#[from] RedisCallError),
}

/// Labels in Lua's cjson: an empty map must stay an object (`{}`), which cjson keeps.
fn labels_json(labels: &Labels) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".into())
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Full => ApiError::Conflict(e.to_string()),
            RegistryError::Unknown(_) => ApiError::NotFound(e.to_string()),
            RegistryError::Redis(r) => ApiError::Redis(r),
        }
    }
}

pub async fn register(
    store: &Store,
    agent_id: &str,
    reg: &Registration,
    now: &str,
) -> Result<AgentRecord, RegistryError> {
    let record = AgentRecord {
        agent_id: agent_id.to_string(),
        ip: reg.ip.clone(),
        hostname: reg.hostname.clone(),
        os: reg.os.clone(),
        arch: reg.arch.clone(),
        version: reg.version.clone(),
        max_concurrent: reg.max_concurrent,
        labels: reg.labels.clone(),
        labels_from_operator: false,
        registered_at: now.to_string(),
        updated_at: now.to_string(),
    };
    // Plain strings and a string map: serialising cannot fail.
    let json = serde_json::to_string(&record).unwrap_or_default();
    let stored: Option<Vec<u8>> = store
        .run(|mut c| async move {
            REGISTER
                .key(keys::AGENTS)
                .key(keys::AGENTS_VERSION)
                .arg(agent_id)
                .arg(json)
                .arg(keys::MAX_AGENTS)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    let stored = stored.ok_or(RegistryError::Full)?;
    Ok(AgentRecord::parse_stored(&stored).unwrap_or(record))
}

/// `true` when the agent was registered.
pub async fn unregister(store: &Store, agent_id: &str) -> Result<bool, RegistryError> {
    let n: i64 = store
        .run(|mut c| async move {
            UNREGISTER
                .key(keys::AGENTS)
                .key(keys::AGENTS_VERSION)
                .key(keys::beat(agent_id))
                .key(keys::stream(agent_id))
                .arg(agent_id)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(n == 1)
}

pub async fn set_labels(
    store: &Store,
    agent_id: &str,
    labels: &Labels,
    now: &str,
) -> Result<AgentRecord, RegistryError> {
    let json = labels_json(labels);
    let stored: Option<Vec<u8>> = store
        .run(|mut c| async move {
            LABELS
                .key(keys::AGENTS)
                .key(keys::AGENTS_VERSION)
                .arg(agent_id)
                .arg(json)
                .arg(now)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    let stored = stored.ok_or_else(|| RegistryError::Unknown(agent_id.to_string()))?;
    AgentRecord::parse_stored(&stored).ok_or_else(|| RegistryError::Unknown(agent_id.to_string()))
}

/// Stores a heartbeat for a registered agent, as its Redis-mode key would hold it.
pub async fn beat(store: &Store, beat: &AgentHeartbeat) -> Result<(), RegistryError> {
    let json = serde_json::to_string(beat).unwrap_or_default();
    let id = beat.agent_id.clone();
    let n: i64 = store
        .run(|mut c| async move {
            BEAT.key(keys::AGENTS)
                .key(keys::beat(&id))
                .arg(&id)
                .arg(json)
                .arg(keys::BEAT_TTL_S)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    if n == 1 {
        Ok(())
    } else {
        Err(RegistryError::Unknown(beat.agent_id.clone()))
    }
}

/// Every record, read from Redis: for a command that matched nobody in the collector's
/// registry, which may be a cycle or two behind a registration.
pub async fn all(store: &Store) -> Result<Vec<AgentRecord>, RedisCallError> {
    let raw: Vec<(String, Vec<u8>)> = store
        .run(|mut c| async move {
            redis::cmd("HGETALL")
                .arg(keys::AGENTS)
                .query_async(&mut c)
                .await
        })
        .await?;
    let mut records: Vec<AgentRecord> = raw
        .iter()
        .filter_map(|(_, v)| AgentRecord::parse_stored(v))
        .collect();
    records.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    Ok(records)
}
