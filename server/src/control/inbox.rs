//! The control plane's background task: reads what agents send through Redis (the inbox
//! stream, as a consumer group so several server replicas share it and a crashed one's
//! messages are claimed by another) and expires commands at their deadline.

use std::time::Duration;

use chrono::Utc;
use redis::aio::MultiplexedConnection;
use redis::Value;
use shared::control::keys;
use shared::control::{stream, InboxMessage, Role, TargetState, Via};
use tokio_util::sync::CancellationToken;

use super::registry;
use super::store::{field, stream_entries};
use super::Control;
use crate::error::ApiError;
use crate::redis_conn::{with_timeout, RedisCallError};

/// How long one blocking read waits for a message; also the expiry sweep's cadence.
const BLOCK: Duration = Duration::from_millis(500);
/// A message another replica took but did not acknowledge within this is taken over.
const CLAIM_IDLE_MS: u64 = 30_000;

pub async fn run(ctl: Control, redis: crate::redis_target::Target, stop: CancellationToken) {
    let me = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
    let mut conn: Option<MultiplexedConnection> = None;
    let mut last_claim = std::time::Instant::now();
    let mut failing = false;
    loop {
        if stop.is_cancelled() {
            break;
        }
        let step = async {
            if conn.is_none() {
                let mut c = redis.connect_for(keys::INBOX, ctl.store.timeout).await?;
                // redis-rs gives up on a reply after 500 ms by default; a blocking read waits longer.
                c.set_response_timeout(ctl.store.timeout + BLOCK + Duration::from_secs(1));
                create_group(&c, ctl.store.timeout).await?;
                conn = Some(c);
            }
            let c = conn
                .as_mut()
                .ok_or(RedisCallError::Timeout(ctl.store.timeout))?;
            let claim = last_claim.elapsed() > Duration::from_secs(10);
            let entries = read(c, &me, ctl.store.timeout, claim).await?;
            if claim {
                last_claim = std::time::Instant::now();
            }
            for (id, msg) in entries {
                handle(&ctl, &msg).await;
                ack(c, &id, ctl.store.timeout).await?;
            }
            super::ledger::expire_due(&ctl.store, Utc::now()).await?;
            Ok::<(), RedisCallError>(())
        };
        let result = tokio::select! {
            _ = stop.cancelled() => break,
            r = step => r,
        };
        match result {
            Ok(()) => {
                if failing {
                    tracing::info!("control inbox: reading Redis again");
                    failing = false;
                }
            }
            Err(e) if gone(&e) => {
                // The stream or its group was deleted (a FLUSHALL): make them again at once.
                tracing::info!(error = %e, "control inbox: stream or group gone; recreating it");
                conn = None;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "control inbox: Redis unreachable; retrying");
                    failing = true;
                }
                conn = None;
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    tracing::debug!("control inbox stopped");
}

fn gone(e: &RedisCallError) -> bool {
    let text = e.to_string();
    text.contains("NOGROUP") || text.contains("UNBLOCKED")
}

async fn create_group(c: &MultiplexedConnection, timeout: Duration) -> Result<(), RedisCallError> {
    let mut c = c.clone();
    let created = with_timeout(
        timeout,
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(keys::INBOX)
            .arg(keys::INBOX_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async::<()>(&mut c),
    )
    .await;
    match created {
        Err(RedisCallError::Redis(e)) if e.to_string().contains("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// New messages (blocking up to [`BLOCK`]), or, every few seconds, messages another consumer
/// left unacknowledged for too long.
async fn read(
    c: &mut MultiplexedConnection,
    me: &str,
    timeout: Duration,
    claim: bool,
) -> Result<Vec<(String, String)>, RedisCallError> {
    if claim {
        let reply: Value = with_timeout(
            timeout,
            redis::cmd("XAUTOCLAIM")
                .arg(keys::INBOX)
                .arg(keys::INBOX_GROUP)
                .arg(me)
                .arg(CLAIM_IDLE_MS)
                .arg("0-0")
                .arg("COUNT")
                .arg(100)
                .query_async(c),
        )
        .await?;
        // [next-id, entries, deleted-ids]
        if let Value::Array(mut parts) = reply {
            if parts.len() >= 2 {
                let entries = entries(parts.swap_remove(1));
                if !entries.is_empty() {
                    return Ok(entries);
                }
            }
        }
    }
    let reply: Value = with_timeout(
        timeout + BLOCK,
        redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(keys::INBOX_GROUP)
            .arg(me)
            .arg("COUNT")
            .arg(100)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(keys::INBOX)
            .arg(">")
            .query_async(c),
    )
    .await?;
    // [[stream, entries]] or nil
    Ok(match reply {
        Value::Array(streams) => streams
            .into_iter()
            .flat_map(|s| match s {
                Value::Array(mut pair) if pair.len() == 2 => entries(pair.swap_remove(1)),
                _ => Vec::new(),
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// `(id, msg field)` of each stream entry.
fn entries(v: Value) -> Vec<(String, String)> {
    stream_entries(v)
        .iter()
        .map(|e| {
            let msg = field(e, stream::INBOX_FIELD)
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            (e.0.clone(), msg.into_owned())
        })
        .collect()
}

async fn ack(
    c: &mut MultiplexedConnection,
    id: &str,
    timeout: Duration,
) -> Result<(), RedisCallError> {
    let mut pipe = redis::pipe();
    pipe.cmd("XACK")
        .arg(keys::INBOX)
        .arg(keys::INBOX_GROUP)
        .arg(id)
        .ignore()
        .cmd("XDEL")
        .arg(keys::INBOX)
        .arg(id)
        .ignore();
    with_timeout(timeout, pipe.query_async::<()>(c)).await
}

/// Applies one message. A message that cannot be applied is audited as refused and dropped
/// (acknowledged): retrying garbage would never succeed.
async fn handle(ctl: &Control, raw: &str) {
    let msg: InboxMessage = match serde_json::from_str(raw) {
        Ok(m) => m,
        Err(e) => {
            let why = format!("refused (400): not an inbox message: {e}");
            ctl.audit(Role::Agent, "redis", "inbox", "", why).await;
            return;
        }
    };
    let now = shared::time::format_ts(Utc::now());
    let (action, target, result): (&str, String, Result<(), ApiError>) = match &msg {
        InboxMessage::Register(reg) => {
            let id = reg.agent_id.clone().unwrap_or_default();
            let r = async {
                let Some(id) = &reg.agent_id else {
                    return Err(ApiError::field(
                        "agent_id",
                        "over Redis an agent must bring its own id",
                    ));
                };
                reg.validate()?;
                registry::register(&ctl.store, id, reg, &now).await?;
                Ok(())
            }
            .await;
            ("agent.register", id, r)
        }
        InboxMessage::Unregister { agent_id } => {
            let r = registry::unregister(&ctl.store, agent_id)
                .await
                .map(|_| ())
                .map_err(ApiError::from);
            ("agent.unregister", agent_id.clone(), r)
        }
        InboxMessage::Delivered {
            agent_id,
            command_id,
        } => {
            let ids = [command_id.clone()];
            let r = super::ledger::transition(
                &ctl.store,
                &ids,
                agent_id,
                TargetState::Delivered,
                Via::Pubsub,
                "",
                &now,
            )
            .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, command = %command_id, "recording a delivery");
            }
            // Deliveries are in the ledger; the audit log would drown in them.
            return;
        }
        InboxMessage::Result { command_id, result } => {
            let r = match result.validate() {
                Ok(()) => super::ledger::apply_result(&ctl.store, command_id, result, Via::Pubsub)
                    .await
                    .map_err(ApiError::from),
                Err(e) => Err(e.into()),
            };
            ("command.result", command_id.clone(), r)
        }
    };
    let outcome = super::call::outcome(result.as_ref().err());
    ctl.audit(Role::Agent, "redis", action, &target, outcome)
        .await;
}
