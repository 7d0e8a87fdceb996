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
    /// Delivery state per channel.
    pub delivery: BTreeMap<String, DeliveryState>,
}

/// Where one channel's message of a batch stands. On the wire: `pending`, `sent` or
/// `failed: <reason>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Sent,
    Failed(String),
}

impl DeliveryState {
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "sent" => Self::Sent,
            other => Self::Failed(other.strip_prefix("failed: ").unwrap_or(other).to_string()),
        }
    }
}

impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pending => f.write_str("pending"),
            Self::Sent => f.write_str("sent"),
            Self::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

impl Serialize for DeliveryState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeliveryState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_states_are_their_words_on_the_wire() {
        for (state, word) in [
            (DeliveryState::Pending, "\"pending\""),
            (DeliveryState::Sent, "\"sent\""),
            (
                DeliveryState::Failed("chat not found".into()),
                "\"failed: chat not found\"",
            ),
        ] {
            assert_eq!(serde_json::to_string(&state).unwrap(), word);
            assert_eq!(serde_json::from_str::<DeliveryState>(word).unwrap(), state);
        }
    }
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
