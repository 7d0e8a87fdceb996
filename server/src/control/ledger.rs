//! Commands and their ledger in Redis. A command is stored — its record, a `queued` row per
//! target, and an entry in each target's stream — before it is announced by PUBLISH, all in
//! one Lua script over `{ctl}` keys. Target rows only move forward
//! (`queued → delivered → succeeded | failed`, or `expired` at the deadline), so a repeated
//! delivery or result changes nothing.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use redis::Value;
use serde::{Deserialize, Serialize};
use shared::control::keys;
use shared::control::{
    stream, AgentCommand, CommandResult, CommandView, ResultStatus, TargetState, TargetView, Via,
};

use super::store::{field, stream_entries, Store};
use crate::error::ApiError;
use crate::redis_conn::RedisCallError;

/// Most commands one poll answers.
pub const POLL_BATCH: usize = 100;

static CREATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        &r#"
local n = #KEYS - 3
redis.call('HSET', KEYS[3], 'meta', ARGV[2], 'open', n)
local queued = cjson.encode({state = 'queued', updated_at = ARGV[8]})
for i = 1, n do
  local agent = ARGV[8 + 2 * i - 1]
  local channel = ARGV[8 + 2 * i]
  redis.call('HSET', KEYS[3], 't:' .. agent, queued)
  local id = redis.call('XADD', KEYS[3 + i], 'MAXLEN', '~', ARGV[6], '*', '@FIELD@', ARGV[4])
  redis.call('PUBLISH', channel, string.sub(ARGV[4], 1, -2) .. ',"cursor":"' .. id .. '"}')
end
redis.call('EXPIRE', KEYS[3], ARGV[7])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[9 + 2 * n], ARGV[1])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[5])
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[1], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
  for _, id in ipairs(old) do redis.call('ZREM', KEYS[2], id) end
  return old
end
return {}
"#
        .replace("@FIELD@", stream::COMMAND_FIELD),
    )
});

/// KEYS: the command hashes; ARGV: agent, new state, via, message, now. Returns how many rows
/// moved. Final rows never move; `delivered` only moves a `queued` row.
static TRANSITION: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local moved = 0
for i = 1, #KEYS - 1 do
  local field = 't:' .. ARGV[1]
  local cur = redis.call('HGET', KEYS[i], field)
  if cur then
    local ok, t = pcall(cjson.decode, cur)
    if not ok or type(t) ~= 'table' then t = {state = 'queued'} end
    local s = t.state
    local final = s == 'succeeded' or s == 'failed' or s == 'expired'
    if ARGV[2] == 'delivered' then
      if s == 'queued' then
        t.state = 'delivered'
        t.via = ARGV[3]
        t.updated_at = ARGV[5]
        redis.call('HSET', KEYS[i], field, cjson.encode(t))
        moved = moved + 1
      end
    elseif not final then
      t.state = ARGV[2]
      if type(t.via) ~= 'string' then t.via = ARGV[3] end
      t.message = ARGV[4]
      t.updated_at = ARGV[5]
      redis.call('HSET', KEYS[i], field, cjson.encode(t))
      moved = moved + 1
      if redis.call('HINCRBY', KEYS[i], 'open', -1) <= 0 then
        redis.call('ZREM', KEYS[#KEYS], ARGV[5 + i])
      end
    end
  end
end
return moved
"#,
    )
});

/// KEYS: command hash, pending set; ARGV: command id, now. Expires every open row.
static EXPIRE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
redis.call('ZREM', KEYS[2], ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 't:' then
    local ok, t = pcall(cjson.decode, all[i + 1])
    if ok and type(t) == 'table' and (t.state == 'queued' or t.state == 'delivered') then
      t.state = 'expired'
      t.updated_at = ARGV[2]
      redis.call('HSET', KEYS[1], all[i], cjson.encode(t))
      n = n + 1
    end
  end
end
if #all > 0 then redis.call('HSET', KEYS[1], 'open', 0) end
return n
"#,
    )
});

/// A target row as the scripts store it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredTarget {
    state: String,
    #[serde(default)]
    via: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
}

/// A new command id: creation time first, so ids sort like the ledger.
pub fn new_id(now: DateTime<Utc>) -> String {
    format!("{}-{:08x}", now.timestamp_millis(), rand::random::<u32>())
}

/// Stores `command` (its `targets` are the matched agents, all `queued`) and announces it.
pub async fn create(store: &Store, command: &CommandView) -> Result<(), RedisCallError> {
    let created: DateTime<Utc> = command.created_at.parse().unwrap_or_else(|_| Utc::now());
    let deadline: DateTime<Utc> = command.deadline.parse().unwrap_or_else(|_| Utc::now());
    let meta = CommandView {
        targets: Vec::new(),
        ..command.clone()
    };
    let for_agent = AgentCommand {
        command_id: command.command_id.clone(),
        kind: command.kind,
        pipeline_id: command.pipeline_id.clone(),
        config: command.config.clone(),
        deadline: command.deadline.clone(),
        cursor: String::new(),
    };
    // Plain data: serialising cannot fail.
    let meta = serde_json::to_string(&meta).unwrap_or_default();
    let for_agent = serde_json::to_string(&for_agent).unwrap_or_default();
    let mut inv = CREATE.prepare_invoke();
    inv.key(keys::COMMANDS)
        .key(keys::PENDING)
        .key(keys::command(&command.command_id));
    for t in &command.targets {
        inv.key(keys::stream(&t.agent_id));
    }
    inv.arg(&command.command_id)
        .arg(meta)
        .arg(created.timestamp_millis())
        .arg(for_agent)
        .arg(keys::MAX_COMMANDS)
        .arg(keys::MAX_STREAM)
        .arg(keys::COMMAND_TTL_S)
        .arg(&command.created_at);
    for t in &command.targets {
        inv.arg(&t.agent_id).arg(keys::wake(&t.agent_id));
    }
    inv.arg(deadline.timestamp_millis());
    let trimmed: Vec<String> = store
        .run(|mut c| async move { inv.invoke_async(&mut c).await })
        .await?;
    if !trimmed.is_empty() {
        let keys: Vec<String> = trimmed.iter().map(|id| keys::command(id)).collect();
        // Best effort: a failure leaves them to their TTL.
        if let Err(e) = store
            .run(|mut c| async move { redis::cmd("DEL").arg(keys).query_async::<()>(&mut c).await })
            .await
        {
            tracing::warn!(error = %e, "trimming old ledger entries");
        }
    }
    Ok(())
}

/// Moves one agent's row of each command (delivered, or a result). Returns rows moved.
pub async fn transition(
    store: &Store,
    command_ids: &[String],
    agent_id: &str,
    state: TargetState,
    via: Via,
    message: &str,
    now: &str,
) -> Result<usize, RedisCallError> {
    if command_ids.is_empty() {
        return Ok(0);
    }
    let mut inv = TRANSITION.prepare_invoke();
    for id in command_ids {
        inv.key(keys::command(id));
    }
    inv.key(keys::PENDING);
    inv.arg(agent_id)
        .arg(state.as_str())
        .arg(via_str(via))
        .arg(message)
        .arg(now);
    for id in command_ids {
        inv.arg(id);
    }
    let moved: usize = store
        .run(|mut c| async move { inv.invoke_async(&mut c).await })
        .await?;
    Ok(moved)
}

fn via_str(via: Via) -> &'static str {
    match via {
        Via::Pubsub => "pubsub",
        Via::Poll => "poll",
    }
}

/// Expires the open rows of commands whose deadline has passed. Returns commands expired.
pub async fn expire_due(store: &Store, now: DateTime<Utc>) -> Result<usize, RedisCallError> {
    let due: Vec<String> = store
        .run(|mut c| async move {
            redis::cmd("ZRANGEBYSCORE")
                .arg(keys::PENDING)
                .arg("-inf")
                .arg(now.timestamp_millis())
                .arg("LIMIT")
                .arg(0)
                .arg(100)
                .query_async(&mut c)
                .await
        })
        .await?;
    let at = shared::time::format_ts(now);
    for id in &due {
        let rows: i64 = store
            .run(|mut c| {
                let at = at.clone();
                async move {
                    EXPIRE
                        .key(keys::command(id))
                        .key(keys::PENDING)
                        .arg(id)
                        .arg(at)
                        .invoke_async(&mut c)
                        .await
                }
            })
            .await?;
        if rows > 0 {
            tracing::info!(command = %id, targets = rows, "command expired without a result");
        }
    }
    Ok(due.len())
}

/// Builds a ledger entry from its hash (`HGETALL`), or `None` when it is gone or unreadable.
fn from_hash(fields: Vec<(String, Vec<u8>)>) -> Option<CommandView> {
    let mut view: Option<CommandView> = None;
    let mut targets = Vec::new();
    for (f, v) in fields {
        if f == "meta" {
            view = serde_json::from_slice(&v).ok();
        } else if let Some(agent) = f.strip_prefix("t:") {
            let t: StoredTarget = serde_json::from_slice(&v).unwrap_or_default();
            targets.push(TargetView {
                agent_id: agent.to_string(),
                state: TargetState::parse(&t.state).unwrap_or(TargetState::Queued),
                via: match t.via.as_deref() {
                    Some("pubsub") => Some(Via::Pubsub),
                    Some("poll") => Some(Via::Poll),
                    _ => None,
                },
                message: t.message.filter(|m| !m.is_empty()),
                updated_at: t.updated_at,
            });
        }
    }
    let mut view = view?;
    targets.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    view.targets = targets;
    Some(view)
}

pub async fn get(store: &Store, id: &str) -> Result<Option<CommandView>, RedisCallError> {
    let fields: Vec<(String, Vec<u8>)> = store
        .run(|mut c| async move {
            redis::cmd("HGETALL")
                .arg(keys::command(id))
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(from_hash(fields))
}

/// The newest `scan` commands, newest first (two round trips: the index, then the entries).
pub async fn recent(store: &Store, scan: usize) -> Result<Vec<CommandView>, RedisCallError> {
    let ids: Vec<String> = store
        .run(|mut c| async move {
            redis::cmd("ZREVRANGE")
                .arg(keys::COMMANDS)
                .arg(0)
                .arg(scan.saturating_sub(1))
                .query_async(&mut c)
                .await
        })
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.cmd("HGETALL").arg(keys::command(id));
    }
    let all: Vec<Vec<(String, Vec<u8>)>> = store
        .run(|mut c| async move { pipe.query_async(&mut c).await })
        .await?;
    Ok(all.into_iter().filter_map(from_hash).collect())
}

/// Why an agent's result was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error("command {command:?} has no target {agent:?}")]
    NotATarget { command: String, agent: String },
    #[error(transparent)]
    Redis(#[from] RedisCallError),
}

impl From<ResultError> for ApiError {
    fn from(e: ResultError) -> Self {
        match e {
            ResultError::NotATarget { .. } => ApiError::NotFound(e.to_string()),
            ResultError::Redis(r) => ApiError::Redis(r),
        }
    }
}

/// Records an agent's result (over REST or Redis); a repeat changes nothing.
pub async fn apply_result(
    store: &Store,
    command_id: &str,
    result: &CommandResult,
    via: Via,
) -> Result<(), ResultError> {
    let state = match result.status {
        ResultStatus::Succeeded => TargetState::Succeeded,
        ResultStatus::Failed => TargetState::Failed,
    };
    let ids = [command_id.to_string()];
    let now = shared::time::format_ts(Utc::now());
    let agent = &result.agent_id;
    let moved = transition(store, &ids, agent, state, via, &result.message, &now).await?;
    if moved == 0 {
        // Either a repeat (fine, nothing to do) or not a target at all (say so).
        let known = get(store, command_id)
            .await?
            .is_some_and(|c| c.targets.iter().any(|t| &t.agent_id == agent));
        if !known {
            return Err(ResultError::NotATarget {
                command: command_id.to_string(),
                agent: agent.clone(),
            });
        }
    }
    Ok(())
}

/// Commands in the agent's stream after `after` (exclusive), oldest first.
pub async fn read_stream(
    store: &Store,
    agent_id: &str,
    after: &str,
    count: usize,
) -> Result<Vec<AgentCommand>, RedisCallError> {
    let start = stream::range_after(after);
    let reply: Value = store
        .run(|mut c| async move {
            redis::cmd("XRANGE")
                .arg(keys::stream(agent_id))
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(stream_commands(reply))
}

/// Decodes an `XRANGE`/`XREAD` entry list; entries that are not a command are skipped.
pub fn stream_commands(reply: Value) -> Vec<AgentCommand> {
    stream_entries(reply)
        .into_iter()
        .filter_map(|e| {
            let raw = field(&e, stream::COMMAND_FIELD)?;
            let mut cmd: AgentCommand = serde_json::from_slice(raw).ok()?;
            cmd.cursor = e.0;
            Some(cmd)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_rows_read_back_whatever_lua_wrote() {
        let meta = serde_json::json!({
            "command_id": "1-a", "type": "pause_pipeline", "pipeline_id": "image",
            "created_at": "2026-12-01T10:00:00Z", "deadline": "2026-12-01T10:01:00Z",
            "sent_by": "operator", "selector": null, "agent_id": "a1", "targets": []
        });
        let fields = vec![
            ("meta".to_string(), meta.to_string().into_bytes()),
            ("open".to_string(), b"1".to_vec()),
            ("t:b".to_string(), br#"{"state":"queued"}"#.to_vec()),
            ("t:a".to_string(), br#"{"updated_at":"x","via":"pubsub","state":"failed","message":"no such pipeline"}"#.to_vec()),
            ("t:c".to_string(), b"garbage".to_vec()),
        ];
        let v = from_hash(fields).unwrap();
        assert_eq!(v.targets.len(), 3);
        assert_eq!(v.targets[0].agent_id, "a");
        assert_eq!(v.targets[0].state, TargetState::Failed);
        assert_eq!(v.targets[0].via, Some(Via::Pubsub));
        assert_eq!(v.targets[2].state, TargetState::Queued);
        assert!(from_hash(vec![("t:a".into(), b"{}".to_vec())]).is_none());
    }
}
