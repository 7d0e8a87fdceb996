//! Agents: what they register, what they beat, and how the server lists them.

use serde::{Deserialize, Serialize};

use super::valid::{self, FieldError, Labels};

/// Longest free-text field of a registration (hostname, os, ...).
const MAX_TEXT: usize = 255;
/// Most pipelines one heartbeat may list.
const MAX_PIPELINES: usize = 256;

/// `POST /api/agents/register` (or an `InboxMessage::Register` over Redis).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The agent's own stable id; the server assigns one when absent.
    #[serde(default)]
    pub agent_id: Option<String>,
    pub ip: String,
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub version: String,
    pub max_concurrent: u32,
    #[serde(default)]
    pub labels: Labels,
}

impl Registration {
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(id) = &self.agent_id {
            valid::id("agent_id", id)?;
        }
        for (field, v) in [
            ("ip", &self.ip),
            ("hostname", &self.hostname),
            ("os", &self.os),
            ("arch", &self.arch),
            ("version", &self.version),
        ] {
            valid::text(field, v, MAX_TEXT)?;
        }
        valid::labels("labels", &self.labels)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterReply {
    pub agent_id: String,
    pub heartbeat_interval_s: u64,
}

/// What the registry keeps per agent (the registration plus its history).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub agent_id: String,
    pub ip: String,
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub version: String,
    pub max_concurrent: u32,
    pub labels: Labels,
    /// Set once an operator replaced the labels: a re-registration then keeps them.
    #[serde(default)]
    pub labels_from_operator: bool,
    pub registered_at: String,
    pub updated_at: String,
}

impl AgentRecord {
    /// The record as the registry stores it, whatever Redis's cjson did to it (it may reorder
    /// keys, or turn `{}` labels into `[]` on a table it cannot tell apart). `None`: not a record.
    pub fn parse_stored(raw: &[u8]) -> Option<Self> {
        let mut v: serde_json::Value = serde_json::from_slice(raw).ok()?;
        if v.get("labels")
            .is_some_and(|l| l.as_array().is_some_and(Vec::is_empty))
        {
            v["labels"] = serde_json::json!({});
        }
        serde_json::from_value(v).ok()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommunicationMode {
    #[default]
    Redis,
    Hybrid,
    Rest,
}

impl CommunicationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Hybrid => "hybrid",
            Self::Rest => "rest",
        }
    }
}

/// A pipeline's status as its agent reports it. Our `pipeline-agent` reports the first three;
/// any other word (another agent's) is kept as written. On the wire it is the word.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PipelineStatus {
    Running,
    Paused,
    Stopped,
    Other(String),
}

impl PipelineStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "running" => Self::Running,
            "paused" => Self::Paused,
            "stopped" => Self::Stopped,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
            Self::Other(s) => s,
        }
    }
}

serde_as_word!(PipelineStatus);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineStat {
    pub id: String,
    pub status: PipelineStatus,
    pub processed: u64,
    pub errors: u64,
    /// The queue it consumes (our agent says; the page links that queue's jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

/// The SPEC §7 agent heartbeat, every 10 s, over Redis (its key, with a TTL) or REST.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentHeartbeat {
    pub agent_id: String,
    /// UTC ISO-8601.
    pub timestamp: String,
    #[serde(default)]
    pub cpu_usage: f64,
    #[serde(default)]
    pub memory_usage: f64,
    #[serde(default)]
    pub pipelines: Vec<String>,
    #[serde(default)]
    pub pipeline_stats: Vec<PipelineStat>,
    #[serde(default)]
    pub communication_mode: CommunicationMode,
}

impl AgentHeartbeat {
    pub fn validate(&self) -> Result<(), FieldError> {
        valid::id("agent_id", &self.agent_id)?;
        chrono::DateTime::parse_from_rfc3339(&self.timestamp)
            .map_err(|e| FieldError::new("timestamp", format!("is not RFC 3339: {e}")))?;
        for (field, v) in [
            ("cpu_usage", self.cpu_usage),
            ("memory_usage", self.memory_usage),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(FieldError::new(field, "must be a number at or above 0"));
            }
        }
        if self.pipelines.len() > MAX_PIPELINES || self.pipeline_stats.len() > MAX_PIPELINES {
            return Err(FieldError::new(
                "pipelines",
                format!("at most {MAX_PIPELINES} pipelines"),
            ));
        }
        for (i, p) in self.pipelines.iter().enumerate() {
            valid::id(&format!("pipelines[{i}]"), p)?;
        }
        for (i, p) in self.pipeline_stats.iter().enumerate() {
            valid::id(&format!("pipeline_stats[{i}].id"), &p.id)?;
            valid::id(&format!("pipeline_stats[{i}].status"), p.status.as_str())?;
        }
        Ok(())
    }
}

/// One agent in `GET /api/agents`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    pub agent_id: String,
    pub hostname: String,
    pub labels: Labels,
    pub online: bool,
    pub communication_mode: Option<CommunicationMode>,
    pub last_beat_age_s: Option<i64>,
    pub cpu_usage: Option<f64>,
    pub memory_usage: Option<f64>,
    pub pipelines: Vec<PipelineStat>,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub max_concurrent: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentsReply {
    pub agents: Vec<AgentView>,
}

/// Joins a registry record with its latest heartbeat (if any) as seen at `age_s`.
pub fn agent_view(
    record: &AgentRecord,
    beat: Option<&AgentHeartbeat>,
    age_s: Option<i64>,
) -> AgentView {
    let online = beat.is_some() && age_s.is_some_and(|a| a <= super::OFFLINE_AFTER_S);
    let pipelines = beat
        .map(|b| {
            let mut stats = b.pipeline_stats.clone();
            // A pipeline listed without stats still shows, as running with no counts yet.
            for id in &b.pipelines {
                if !stats.iter().any(|s| &s.id == id) {
                    stats.push(PipelineStat {
                        id: id.clone(),
                        status: PipelineStatus::Running,
                        processed: 0,
                        errors: 0,
                        queue: None,
                    });
                }
            }
            stats
        })
        .unwrap_or_default();
    AgentView {
        agent_id: record.agent_id.clone(),
        hostname: record.hostname.clone(),
        labels: record.labels.clone(),
        online,
        communication_mode: beat.map(|b| b.communication_mode),
        last_beat_age_s: age_s,
        cpu_usage: beat.map(|b| b.cpu_usage),
        memory_usage: beat.map(|b| b.memory_usage),
        pipelines,
        ip: record.ip.clone(),
        version: record.version.clone(),
        max_concurrent: record.max_concurrent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_record_survives_what_cjson_does_to_it() {
        let raw = br#"{"updated_at":"t","agent_id":"a1","ip":"10.0.0.1","hostname":"h","os":"linux","arch":"x86_64","version":"1","max_concurrent":2,"labels":[],"registered_at":"t"}"#;
        let r = AgentRecord::parse_stored(raw).unwrap();
        assert_eq!((r.agent_id.as_str(), r.labels.len()), ("a1", 0));
        assert!(!r.labels_from_operator, "absent means false");
        assert_eq!(AgentRecord::parse_stored(b"[1]"), None);
        assert_eq!(AgentRecord::parse_stored(b"{\"agent_id\":\"a1\"}"), None);
    }

    fn beat() -> AgentHeartbeat {
        serde_json::from_value(serde_json::json!({
            "agent_id": "a1", "timestamp": "2026-12-01T10:00:00Z",
            "cpu_usage": 12.5, "memory_usage": 40.0,
            "pipelines": ["image", "video"],
            "pipeline_stats": [{"id": "image", "status": "paused", "processed": 3, "errors": 1}],
            "communication_mode": "hybrid"
        }))
        .unwrap()
    }

    #[test]
    fn a_heartbeat_reads_the_spec_shape() {
        let b = beat();
        assert!(b.validate().is_ok());
        assert_eq!(b.communication_mode, CommunicationMode::Hybrid);
        let mut bad = b.clone();
        bad.timestamp = "yesterday".into();
        assert_eq!(bad.validate().unwrap_err().field, "timestamp");
        let mut bad = b;
        bad.cpu_usage = f64::NAN;
        assert_eq!(bad.validate().unwrap_err().field, "cpu_usage");
    }

    #[test]
    fn the_view_is_online_only_with_a_recent_beat() {
        let rec = AgentRecord {
            agent_id: "a1".into(),
            ip: "10.0.0.1".into(),
            hostname: "h".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            version: "0.1.0".into(),
            max_concurrent: 4,
            labels: Labels::new(),
            labels_from_operator: false,
            registered_at: "2026-12-01T10:00:00Z".into(),
            updated_at: "2026-12-01T10:00:00Z".into(),
        };
        let b = beat();
        let v = agent_view(&rec, Some(&b), Some(3));
        assert!(v.online);
        assert_eq!(v.pipelines.len(), 2, "video is listed without stats");
        assert_eq!(v.pipelines[0].status, PipelineStatus::Paused);
        assert!(!agent_view(&rec, Some(&b), Some(31)).online);
        let never = agent_view(&rec, None, None);
        assert!(!never.online);
        assert_eq!(never.communication_mode, None);
    }

    #[test]
    fn registration_rejects_unknown_fields_and_bad_ids() {
        let r: Result<Registration, _> = serde_json::from_str(
            r#"{"ip":"1","hostname":"h","os":"l","arch":"a","version":"v","max_concurrent":1,"extra":1}"#,
        );
        assert!(r.is_err());
        let r: Registration = serde_json::from_str(
            r#"{"agent_id":"bad id","ip":"1","hostname":"h","os":"l","arch":"a","version":"v","max_concurrent":1}"#,
        )
        .unwrap();
        assert_eq!(r.validate().unwrap_err().field, "agent_id");
    }
}
