//! The control plane (SPEC §7, Contract 3): the agent registry, durable commands with a
//! ledger, label selectors, the two tokens, the audit log and the queue actions.
//!
//! Reads of the registry come from the collector's snapshot (no Redis call per request);
//! writes go to Redis through [`store::Store`], each one Lua script over `{ctl}` keys, and
//! every state-changing call — accepted or refused — lands in the audit log.

pub mod audit;
pub mod auth;
pub mod call;
mod http;
pub mod inbox;
pub mod ledger;
mod orphan;
pub mod queues;
pub mod registry;
mod settings;
pub mod store;

use std::sync::Arc;

use axum::body::Body;
use serde::de::DeserializeOwned;
use shared::control::{ControlInfo, Role};

pub use auth::{Caller, Need, Token};
pub use http::router;
pub use settings::{ControlArgs, ControlConfig};
pub use store::Store;

use crate::collector::{AgentsRx, SnapshotRx};
use crate::error::ApiError;

/// Largest request body a control-plane call reads.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the control-plane handlers share.
#[derive(Clone)]
pub struct Control {
    pub config: Arc<ControlConfig>,
    pub store: Store,
    pub agents: AgentsRx,
    pub nodes: SnapshotRx,
}

/// Whether an accepted call goes to the audit log. Heartbeats and polls arrive every few
/// seconds from every agent and would push everything else out of the capped log, so only
/// their refusals are recorded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Audit {
    Always,
    RefusalsOnly,
}

impl Control {
    pub fn info(&self) -> ControlInfo {
        ControlInfo {
            read_only: self.config.operator.is_none(),
            agent_api: self.config.agent.is_some(),
        }
    }

    /// Logs once at start what the control plane will accept.
    pub fn announce(&self) {
        if self.config.operator.is_none() {
            tracing::warn!(
                "control plane is read-only: set OPERATOR_TOKEN to enable commands, label \
                 changes and queue actions"
            );
        }
        if self.config.agent.is_none() {
            tracing::warn!("agent API is off over REST: set AGENT_TOKEN to let agents register");
        }
    }

    pub async fn audit(
        &self,
        role: Role,
        remote: &str,
        action: &str,
        target: &str,
        outcome: String,
    ) {
        audit::record(
            &self.store,
            audit::entry(role, remote, action, target, outcome),
        )
        .await;
    }
}

/// Reads a JSON body of at most [`BODY_LIMIT`] bytes into `T`, naming the field at fault.
pub async fn read_json<T: DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    parse_json(&read_body(body).await?)
}

/// The raw body, at most [`BODY_LIMIT`] bytes.
pub async fn read_body(body: Body) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| ApiError::TooLarge(BODY_LIMIT))
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            "body".to_string()
        } else {
            path
        };
        ApiError::field(field, short(&e.into_inner().to_string()))
    })
}

/// serde's messages can quote a whole huge value; keep what a person needs.
fn short(message: &str) -> String {
    let mut s: String = message.chars().take(200).collect();
    if s.len() < message.len() {
        s.push('…');
    }
    s
}
