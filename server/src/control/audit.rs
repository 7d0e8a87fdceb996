//! The audit log: a capped Redis stream of every state-changing request, accepted or refused.
//! Entries hold the role, never a token.

use redis::Value;
use shared::control::keys;
use shared::control::{AuditEntry, Role};

use super::store::{field, stream_entries, Store};
use crate::redis_conn::RedisCallError;

/// Appends one entry. An audit that cannot be written is logged (without secrets) and does not
/// fail the request: the change already happened, or was refused.
pub async fn record(store: &Store, entry: AuditEntry) {
    let json = serde_json::to_string(&entry).unwrap_or_default();
    let result = store
        .run(|mut c| async move {
            redis::cmd("XADD")
                .arg(keys::AUDIT)
                .arg("MAXLEN")
                .arg("~")
                .arg(keys::MAX_AUDIT)
                .arg("*")
                .arg("e")
                .arg(json)
                .query_async::<()>(&mut c)
                .await
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(
            error = %e,
            action = %entry.action,
            target = %entry.target,
            outcome = %entry.outcome,
            "could not write the audit log"
        );
    }
}

pub fn entry(role: Role, remote: &str, action: &str, target: &str, outcome: String) -> AuditEntry {
    AuditEntry {
        time: shared::time::format_ts(chrono::Utc::now()),
        role,
        remote: remote.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        outcome,
    }
}

/// The newest `limit` entries, newest first.
pub async fn recent(store: &Store, limit: usize) -> Result<Vec<AuditEntry>, RedisCallError> {
    let reply: Value = store
        .run(|mut c| async move {
            redis::cmd("XREVRANGE")
                .arg(keys::AUDIT)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(limit)
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(stream_entries(reply)
        .iter()
        .filter_map(|e| serde_json::from_slice(field(e, "e")?).ok())
        .collect())
}
