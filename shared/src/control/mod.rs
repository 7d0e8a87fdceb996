//! Contract 3: the control plane for pipeline agents (SPEC §7) — registration, agent
//! heartbeats, commands and their results, label selectors, the ledger and the audit log.
//!
//! The HTTP paths and JSON fields are fixed by the spec; the Redis side (keys, streams,
//! channels) is ours and lives in [`keys`]. Agents may speak either: every message an agent
//! sends over Redis has the same JSON as its REST call.

pub mod agent;
pub mod command;
pub mod keys;
pub mod selector;
pub mod stream;
pub mod valid;

pub use agent::{
    AgentHeartbeat, AgentRecord, AgentView, AgentsReply, CommunicationMode, PipelineStat,
    PipelineStatus, RegisterReply, Registration,
};
pub use command::{
    AgentCommand, AuditEntry, AuditReply, CommandBody, CommandRequest, CommandResult, CommandType,
    CommandView, CommandsReply, CreatedReply, DryRunReply, Excluded, InboxMessage, PollReply,
    PolledCommand, ResultStatus, Role, TargetState, TargetView, Via,
};
pub use selector::{Operator, Requirement, Selector};
pub use valid::{FieldError, Labels};

use serde::{Deserialize, Serialize};

/// The body of every error answer: `{"error": "...", "field": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `GET /api/control`: what this server accepts, so a page can say it is read-only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlInfo {
    /// No operator token configured: commands, labels and queue actions answer 403.
    pub read_only: bool,
    /// An agent token is configured: agents may register over REST.
    pub agent_api: bool,
}

/// How often an agent must beat, and how long the server waits before calling it offline.
pub const HEARTBEAT_INTERVAL_S: u64 = 10;
pub const OFFLINE_AFTER_S: i64 = 30;
/// A command's deadline when the operator gives none, and the longest allowed.
pub const DEFAULT_DEADLINE_S: u64 = 60;
pub const MAX_DEADLINE_S: u64 = 86_400;
