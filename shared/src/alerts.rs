//! The body of `GET /api/agent-office/alerts`: recent alert batches and their delivery state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertKind {
    WorkerDown,
    WorkerRecovered,
    DeadLetters,
    RedisLost,
    RedisBack,
    /// Heartbeat keys of unknown workers that never held a valid heartbeat, told as one line.
    StrayKeys,
}

/// One thing to tell a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub worker: Option<String>,
    pub text: String,
}

/// The alerts of one evaluation, sent as one message per channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    pub id: String,
    pub created_at: String,
    pub alerts: Vec<Alert>,
    /// Delivery state per channel: `pending`, `sent` or `failed: <reason>`.
    pub delivery: BTreeMap<String, String>,
}

/// What the alerts endpoint answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertsView {
    /// False when no channel is configured.
    pub enabled: bool,
    pub channels: Vec<String>,
    /// Newest first, at most 100.
    pub recent: Vec<BatchRecord>,
}
