//! Commands, their per-agent fate (the ledger), what an agent receives and reports, and the
//! audit log's entries.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::agent::{PipelineStatus, Registration};
use super::selector::Selector;
use super::valid::{self, FieldError};
use super::{DEFAULT_DEADLINE_S, MAX_DEADLINE_S};

/// Longest message an agent may report with a result; longer ones are cut.
pub const MAX_MESSAGE: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandType {
    StartPipeline,
    StopPipeline,
    PausePipeline,
    ResumePipeline,
    UpdateConfig,
    Shutdown,
}

impl CommandType {
    pub const ALL: [CommandType; 6] = [
        Self::StartPipeline,
        Self::StopPipeline,
        Self::PausePipeline,
        Self::ResumePipeline,
        Self::UpdateConfig,
        Self::Shutdown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartPipeline => "start_pipeline",
            Self::StopPipeline => "stop_pipeline",
            Self::PausePipeline => "pause_pipeline",
            Self::ResumePipeline => "resume_pipeline",
            Self::UpdateConfig => "update_config",
            Self::Shutdown => "shutdown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The button's label for it, in `lang`.
    pub fn button(self, lang: crate::i18n::Lang) -> &'static str {
        use crate::i18n::Word;
        lang.t(match self {
            Self::StartPipeline => Word::VerbStart,
            Self::StopPipeline => Word::VerbStop,
            Self::PausePipeline => Word::VerbPause,
            Self::ResumePipeline => Word::VerbResume,
            Self::UpdateConfig => Word::VerbUpdateConfig,
            Self::Shutdown => Word::VerbShutdown,
        })
    }

    /// A short word for it that never changes with the language (`data-action`, the agent's
    /// `agent_command_received_total{type}`: the plan's values).
    pub fn verb(self) -> &'static str {
        match self {
            Self::StartPipeline => "start",
            Self::StopPipeline => "stop",
            Self::PausePipeline => "pause",
            Self::ResumePipeline => "resume",
            Self::UpdateConfig => "update_config",
            Self::Shutdown => "shutdown",
        }
    }

    /// The commands that make sense for a pipeline in `status` (the agents page's buttons; the
    /// agent refuses the others with a reason).
    pub fn for_pipeline(status: &PipelineStatus) -> &'static [Self] {
        match status {
            PipelineStatus::Running => &[Self::PausePipeline, Self::StopPipeline],
            PipelineStatus::Paused => &[Self::ResumePipeline, Self::StopPipeline],
            PipelineStatus::Stopped | PipelineStatus::Other(_) => &[Self::StartPipeline],
        }
    }

    /// Whether the command acts on one pipeline (and so needs `pipeline_id`).
    pub fn needs_pipeline(self) -> bool {
        !matches!(self, Self::Shutdown | Self::UpdateConfig)
    }
}

/// Who a command goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Agent(String),
    Selector(Selector),
}

/// A `POST /api/commands` body as a client writes it; [`CommandRequest::parse`] reads it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandBody {
    #[serde(rename = "type")]
    pub kind: CommandType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_s: Option<u64>,
}

impl CommandBody {
    /// `kind` with no pipeline, config or target yet.
    pub fn new(kind: CommandType) -> Self {
        Self {
            kind,
            pipeline_id: None,
            config: None,
            agent_id: None,
            selector: None,
            deadline_s: None,
        }
    }

    /// `kind` for one pipeline of one agent.
    pub fn for_pipeline(kind: CommandType, pipeline_id: &str, agent_id: &str) -> Self {
        Self {
            pipeline_id: Some(pipeline_id.to_string()),
            agent_id: Some(agent_id.to_string()),
            ..Self::new(kind)
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and JSON values always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A validated `POST /api/commands` body.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandRequest {
    pub kind: CommandType,
    pub pipeline_id: Option<String>,
    pub config: Option<Value>,
    pub target: Target,
    pub deadline_s: u64,
}

impl CommandRequest {
    /// Parses `{type, pipeline_id?, config?, agent_id? | selector?, deadline_s?}`, naming the
    /// first field that is wrong.
    pub fn parse(v: &Value) -> Result<Self, FieldError> {
        let obj = v
            .as_object()
            .ok_or_else(|| FieldError::new("body", "must be a JSON object"))?;
        const FIELDS: [&str; 6] = [
            "type",
            "pipeline_id",
            "config",
            "agent_id",
            "selector",
            "deadline_s",
        ];
        if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(FieldError::new(k.as_str(), "unknown field"));
        }
        let given = |k: &str| obj.get(k).filter(|v| !v.is_null());
        let kind = parse_kind(obj.get("type"))?;
        let pipeline_id = parse_pipeline_id(given("pipeline_id"))?;
        if kind.needs_pipeline() && pipeline_id.is_none() {
            return Err(FieldError::new(
                "pipeline_id",
                format!("{} needs a pipeline_id", kind.as_str()),
            ));
        }
        let config = match given("config") {
            None => None,
            Some(c @ Value::Object(_)) => Some(c.clone()),
            Some(_) => return Err(FieldError::new("config", "must be an object")),
        };
        if kind == CommandType::UpdateConfig && config.is_none() {
            return Err(FieldError::new("config", "update_config needs a config"));
        }
        Ok(Self {
            kind,
            pipeline_id,
            config,
            target: parse_target(given("agent_id"), given("selector"))?,
            deadline_s: parse_deadline(given("deadline_s"))?,
        })
    }
}

fn parse_kind(v: Option<&Value>) -> Result<CommandType, FieldError> {
    let text = v
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new("type", "must be a string"))?;
    CommandType::parse(text).ok_or_else(|| {
        FieldError::new(
            "type",
            format!(
                "unknown command {text:?}; one of {}",
                CommandType::ALL.map(CommandType::as_str).join(", ")
            ),
        )
    })
}

fn parse_pipeline_id(v: Option<&Value>) -> Result<Option<String>, FieldError> {
    match v {
        None => Ok(None),
        Some(Value::String(p)) => {
            valid::id("pipeline_id", p)?;
            Ok(Some(p.clone()))
        }
        Some(_) => Err(FieldError::new("pipeline_id", "must be a string")),
    }
}

/// One agent by id or a label selector, never both, never neither.
fn parse_target(agent: Option<&Value>, selector: Option<&Value>) -> Result<Target, FieldError> {
    match (agent, selector) {
        (Some(_), Some(_)) => Err(FieldError::new(
            "selector",
            "give agent_id or selector, not both",
        )),
        (Some(a), None) => {
            let a = a
                .as_str()
                .ok_or_else(|| FieldError::new("agent_id", "must be a string"))?;
            valid::id("agent_id", a)?;
            Ok(Target::Agent(a.to_string()))
        }
        (None, Some(s)) => Ok(Target::Selector(Selector::parse("selector", s)?)),
        (None, None) => Err(FieldError::new(
            "agent_id",
            "a command needs a target: agent_id or selector",
        )),
    }
}

fn parse_deadline(v: Option<&Value>) -> Result<u64, FieldError> {
    let Some(d) = v else {
        return Ok(DEFAULT_DEADLINE_S);
    };
    d.as_u64()
        .filter(|d| (1..=MAX_DEADLINE_S).contains(d))
        .ok_or_else(|| {
            FieldError::new(
                "deadline_s",
                format!("must be a whole number of seconds from 1 to {MAX_DEADLINE_S}"),
            )
        })
}

/// `POST /api/commands` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedReply {
    pub command_id: String,
    pub targets: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    pub agent_id: String,
    pub reason: String,
}

/// `POST /api/commands?dry_run=true` answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRunReply {
    pub matched: Vec<String>,
    pub excluded: Vec<Excluded>,
}

/// A command as an agent receives it: in the pub/sub wake-up, from its stream, or by polling.
/// `cursor` is its position in the agent's stream; reading `after` it gives the next ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentCommand {
    pub command_id: String,
    #[serde(rename = "type")]
    pub kind: CommandType,
    pub pipeline_id: Option<String>,
    pub config: Option<Value>,
    /// After this time (UTC ISO-8601) the server no longer waits for a result.
    pub deadline: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cursor: String,
}

/// `GET /api/agents/{id}/commands?after=` answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PollReply {
    pub commands: Vec<AgentCommand>,
    /// Where to read from next time (the last command's cursor, or `after` when none).
    pub cursor: String,
}

/// The spec's name for one polled command.
pub type PolledCommand = AgentCommand;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    Succeeded,
    Failed,
}

/// `POST /api/commands/{id}/results`, or `InboxMessage::Result` over Redis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandResult {
    pub agent_id: String,
    pub status: ResultStatus,
    #[serde(default)]
    pub message: String,
}

impl CommandResult {
    pub fn validate(&self) -> Result<(), FieldError> {
        valid::id("agent_id", &self.agent_id)?;
        if self.message.len() > MAX_MESSAGE {
            return Err(FieldError::new(
                "message",
                format!("at most {MAX_MESSAGE} bytes"),
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    Queued,
    Delivered,
    Succeeded,
    Failed,
    Expired,
}

impl TargetState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Expired)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Delivered => "delivered",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Delivered,
            Self::Succeeded,
            Self::Failed,
            Self::Expired,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// How a command reached its agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Pubsub,
    Poll,
}

/// One target's row in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetView {
    pub agent_id: String,
    pub state: TargetState,
    pub via: Option<Via>,
    pub message: Option<String>,
    /// When the state last changed.
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// A command in the ledger: `GET /api/commands/{id}`, and each item of `GET /api/commands`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandView {
    pub command_id: String,
    #[serde(rename = "type")]
    pub kind: CommandType,
    pub pipeline_id: Option<String>,
    #[serde(default)]
    pub config: Option<Value>,
    pub created_at: String,
    pub deadline: String,
    pub sent_by: String,
    /// The selector as sent (none when the command named one agent).
    pub selector: Option<Selector>,
    /// The agent named as the target (none when a selector was used).
    #[serde(default)]
    pub agent_id: Option<String>,
    pub targets: Vec<TargetView>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandsReply {
    pub commands: Vec<CommandView>,
}

/// Who made a state-changing request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Operator,
    Agent,
    None,
}

/// One line of the audit log. Never holds a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub time: String,
    pub role: Role,
    /// The peer's address, or `redis` for messages agents sent through Redis.
    pub remote: String,
    pub action: String,
    pub target: String,
    /// `ok`, or `refused: <why>` / `failed: <why>`.
    pub outcome: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReply {
    pub entries: Vec<AuditEntry>,
}

/// What an agent in Redis mode sends the server: `XADD agent-office:{ctl}:inbox * msg <json>`.
/// The same JSON bodies as the REST calls, tagged with `kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InboxMessage {
    /// Over Redis the agent must bring its own `agent_id` (there is no answer to read).
    Register(Registration),
    Unregister {
        agent_id: String,
    },
    /// The agent has the command (read from pub/sub or its stream).
    Delivered {
        agent_id: String,
        command_id: String,
    },
    Result {
        command_id: String,
        #[serde(flatten)]
        result: CommandResult,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_command_needs_what_its_type_needs() {
        let ok = CommandRequest::parse(&json!({
            "type": "pause_pipeline", "pipeline_id": "image", "agent_id": "a1"
        }))
        .unwrap();
        assert_eq!(ok.kind, CommandType::PausePipeline);
        assert_eq!(ok.deadline_s, 60);
        assert_eq!(ok.target, Target::Agent("a1".into()));
        let field = |v: Value| CommandRequest::parse(&v).unwrap_err().field;
        assert_eq!(
            field(json!({"type": "pause_pipeline", "agent_id": "a"})),
            "pipeline_id"
        );
        assert_eq!(
            field(json!({"type": "update_config", "agent_id": "a"})),
            "config"
        );
        assert_eq!(field(json!({"type": "reboot", "agent_id": "a"})), "type");
        assert_eq!(field(json!({"type": "shutdown"})), "agent_id");
        assert_eq!(
            field(json!({"type": "shutdown", "agent_id": "a", "selector": {}})),
            "selector"
        );
        assert_eq!(
            field(json!({"type": "shutdown", "agent_id": "a", "deadline_s": 0})),
            "deadline_s"
        );
        assert_eq!(
            field(json!({"type": "shutdown", "agent_id": "a", "deadline_s": "5"})),
            "deadline_s"
        );
        assert_eq!(
            field(json!({"type": "shutdown", "agent_id": "a", "extra": 1})),
            "extra"
        );
        assert_eq!(field(json!({"type": 3})), "type");
        assert_eq!(field(json!([])), "body");
        assert_eq!(
            field(
                json!({"type": "shutdown", "selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}})
            ),
            "selector.matchExpressions[0].operator"
        );
        let s = CommandRequest::parse(&json!({"type": "shutdown", "selector": {"matchLabels": {"env": "prod"}}, "deadline_s": 5})).unwrap();
        assert!(matches!(s.target, Target::Selector(_)));
        assert_eq!(s.deadline_s, 5);
    }

    #[test]
    fn inbox_messages_carry_the_rest_bodies() {
        let m: InboxMessage = serde_json::from_value(json!({
            "kind": "result", "command_id": "c1", "agent_id": "a1", "status": "failed", "message": "no such pipeline"
        }))
        .unwrap();
        assert_eq!(
            m,
            InboxMessage::Result {
                command_id: "c1".into(),
                result: CommandResult {
                    agent_id: "a1".into(),
                    status: ResultStatus::Failed,
                    message: "no such pipeline".into()
                }
            }
        );
        let d: InboxMessage =
            serde_json::from_str(r#"{"kind":"delivered","agent_id":"a1","command_id":"c1"}"#)
                .unwrap();
        assert!(matches!(d, InboxMessage::Delivered { .. }));
    }

    #[test]
    fn the_client_body_is_what_the_server_parses() {
        let b = CommandBody::for_pipeline(CommandType::PausePipeline, "image", "a1");
        let v: Value = serde_json::from_str(&b.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "pause_pipeline", "pipeline_id": "image", "agent_id": "a1"})
        );
        let r = CommandRequest::parse(&v).unwrap();
        assert_eq!(r.kind, CommandType::PausePipeline);
        assert_eq!(r.target, Target::Agent("a1".into()));
        let mut b = CommandBody::new(CommandType::UpdateConfig);
        b.config = Some(serde_json::json!({"concurrency": 2}));
        b.selector = Some(serde_json::json!({"matchLabels": {"env": "prod"}}));
        b.deadline_s = Some(30);
        let r = CommandRequest::parse(&serde_json::to_value(&b).unwrap()).unwrap();
        assert_eq!((r.kind, r.deadline_s), (CommandType::UpdateConfig, 30));
        assert!(matches!(r.target, Target::Selector(_)));
    }

    #[test]
    fn each_pipeline_status_offers_its_commands() {
        use CommandType::*;
        let of = |s: &str| CommandType::for_pipeline(&PipelineStatus::parse(s)).to_vec();
        assert_eq!(of("running"), [PausePipeline, StopPipeline]);
        assert_eq!(of("paused"), [ResumePipeline, StopPipeline]);
        assert_eq!(of("stopped"), [StartPipeline]);
        assert_eq!(of("crashed"), [StartPipeline]);
        assert_eq!(PipelineStatus::parse("crashed").as_str(), "crashed");
    }

    #[test]
    fn states_round_trip() {
        for s in ["queued", "delivered", "succeeded", "failed", "expired"] {
            assert_eq!(TargetState::parse(s).unwrap().as_str(), s);
        }
        assert!(TargetState::Expired.is_final());
        assert!(!TargetState::Delivered.is_final());
    }
}
