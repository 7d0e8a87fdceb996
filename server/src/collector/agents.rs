//! The agent registry as the collector reads it, in the same cycle as the workers: `GET` of the
//! registry's version, `MGET` of every registered agent's heartbeat key and, only in the cycle
//! after the version moved, `HGETALL` of the registry. All pure but the pipeline it hands out.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use redis::Value;
use shared::control::agent::agent_view;
use shared::control::keys;
use shared::control::{AgentHeartbeat, AgentRecord, AgentView, AgentsReply};
use tokio::sync::watch;

use super::ReplyError;
use crate::control::registry::parse_record;

/// A heartbeat value larger than this is ignored (an agent's is a few hundred bytes).
const MAX_BEAT_BYTES: usize = 64 * 1024;

/// What `GET /api/agents` serves: the agents and their JSON, made once per cycle.
#[derive(Clone, Debug, Default)]
pub struct AgentsSnapshot {
    pub redis_ok: bool,
    pub agents: Vec<AgentView>,
    pub json: Bytes,
}

impl AgentsSnapshot {
    pub fn new(redis_ok: bool, agents: Vec<AgentView>) -> Self {
        let reply = AgentsReply { agents };
        let json = Bytes::from(serde_json::to_vec(&reply).unwrap_or_default());
        Self {
            redis_ok,
            agents: reply.agents,
            json,
        }
    }
}

pub type AgentsRx = watch::Receiver<Arc<AgentsSnapshot>>;

pub struct AgentsPlan {
    version: Option<Vec<u8>>,
    records: Vec<AgentRecord>,
    need_registry: bool,
    pipeline: redis::Pipeline,
    last_beats: HashMap<String, DateTime<Utc>>,
}

impl Default for AgentsPlan {
    fn default() -> Self {
        let mut plan = Self {
            version: None,
            records: Vec::new(),
            need_registry: true,
            pipeline: redis::pipe(),
            last_beats: HashMap::new(),
        };
        plan.pipeline = plan.build();
        plan
    }
}

impl AgentsPlan {
    pub fn pipeline(&self) -> &redis::Pipeline {
        &self.pipeline
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn build(&self) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.cmd("GET").arg(keys::AGENTS_VERSION);
        if self.need_registry {
            pipe.cmd("HGETALL").arg(keys::AGENTS);
        }
        if !self.records.is_empty() {
            let beats: Vec<String> = self
                .records
                .iter()
                .map(|r| keys::beat(&r.agent_id))
                .collect();
            pipe.cmd("MGET").arg(beats);
        }
        pipe
    }

    /// Decodes one cycle's replies into the agents as they are now.
    pub fn read(
        &mut self,
        replies: Vec<Value>,
        now: DateTime<Utc>,
    ) -> Result<Vec<AgentView>, ReplyError> {
        let expected = 1 + usize::from(self.need_registry) + usize::from(!self.records.is_empty());
        if replies.len() != expected {
            return Err(ReplyError::Count {
                expected,
                got: replies.len(),
            });
        }
        let mut it = replies.into_iter();
        let version = match it.next() {
            Some(Value::BulkString(b)) => Some(b),
            _ => None,
        };
        let fresh = if self.need_registry {
            it.next().map(records)
        } else {
            None
        };
        let mut beats: HashMap<String, AgentHeartbeat> = HashMap::new();
        if !self.records.is_empty() {
            match it.next() {
                Some(Value::Array(items)) if items.len() == self.records.len() => {
                    for (r, v) in self.records.iter().zip(items) {
                        if let Some(b) = beat(v) {
                            if b.agent_id == r.agent_id {
                                beats.insert(r.agent_id.clone(), b);
                            }
                        }
                    }
                }
                other => return Err(ReplyError::NotArray(format!("{other:?}"))),
            }
        }
        let mut rebuild = false;
        if let Some(records) = fresh {
            self.records = records;
            self.need_registry = false;
            self.version = version;
            rebuild = true;
        } else if version != self.version {
            self.need_registry = true;
            rebuild = true;
        }
        if rebuild {
            self.pipeline = self.build();
        }
        let views = self
            .records
            .iter()
            .map(|r| {
                let b = beats.get(&r.agent_id);
                if let Some(ts) = b.and_then(|b| b.timestamp.parse::<DateTime<Utc>>().ok()) {
                    self.last_beats.insert(r.agent_id.clone(), ts);
                }
                let age = self
                    .last_beats
                    .get(&r.agent_id)
                    .map(|ts| (now - *ts).num_seconds().max(0));
                agent_view(r, b, age)
            })
            .collect();
        if self.last_beats.len() > self.records.len() {
            let ids: std::collections::HashSet<&str> =
                self.records.iter().map(|r| r.agent_id.as_str()).collect();
            self.last_beats.retain(|id, _| ids.contains(id.as_str()));
        }
        Ok(views)
    }
}

fn records(v: Value) -> Vec<AgentRecord> {
    let pairs: Vec<Value> = match v {
        Value::Array(items) => items,
        Value::Map(kv) => kv.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<AgentRecord> = pairs
        .chunks(2)
        .filter_map(|kv| match kv.get(1) {
            Some(Value::BulkString(b)) => parse_record(b),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    out
}

fn beat(v: Value) -> Option<AgentHeartbeat> {
    match v {
        Value::BulkString(b) if b.len() <= MAX_BEAT_BYTES => serde_json::from_slice(&b).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn record(id: &str) -> String {
        serde_json::json!({
            "agent_id": id, "ip": "10.0.0.1", "hostname": "h", "os": "linux", "arch": "x86_64",
            "version": "0.1.0", "max_concurrent": 2, "labels": [], "registered_at": "x", "updated_at": "x"
        })
        .to_string()
    }

    #[test]
    fn the_registry_is_read_once_then_only_when_its_version_moves() {
        let now = Utc::now();
        let mut plan = AgentsPlan::default();
        assert_eq!(
            plan.pipeline().cmd_iter().count(),
            2,
            "GET version + HGETALL"
        );
        let views = plan
            .read(
                vec![
                    bulk("1"),
                    Value::Array(vec![
                        bulk("a1"),
                        bulk(&record("a1")),
                        bulk("junk"),
                        bulk("{"),
                    ]),
                ],
                now,
            )
            .unwrap();
        assert_eq!(views.len(), 1);
        assert!(!views[0].online, "no beat read yet");
        assert_eq!(plan.pipeline().cmd_iter().count(), 2, "GET version + MGET");
        let beat = serde_json::json!({"agent_id": "a1", "timestamp": shared::nodes::format_ts(now), "communication_mode": "rest"}).to_string();
        let views = plan
            .read(vec![bulk("1"), Value::Array(vec![bulk(&beat)])], now)
            .unwrap();
        assert!(views[0].online);
        assert_eq!(views[0].last_beat_age_s, Some(0));
        // The version moved: the next cycle re-reads the registry.
        plan.read(vec![bulk("2"), Value::Array(vec![Value::Nil])], now)
            .unwrap();
        assert_eq!(plan.pipeline().cmd_iter().count(), 3);
        let later = now + chrono::Duration::seconds(40);
        let views = plan
            .read(
                vec![
                    bulk("2"),
                    Value::Array(vec![bulk("a1"), bulk(&record("a1"))]),
                    Value::Array(vec![Value::Nil]),
                ],
                later,
            )
            .unwrap();
        assert!(!views[0].online);
        assert_eq!(
            views[0].last_beat_age_s,
            Some(40),
            "offline, but says when it last beat"
        );
        assert!(
            plan.read(vec![bulk("2")], later).is_err(),
            "wrong reply count"
        );
    }

    #[test]
    fn a_beat_under_another_agents_key_is_not_trusted() {
        let now = Utc::now();
        let mut plan = AgentsPlan::default();
        plan.read(
            vec![
                bulk("1"),
                Value::Array(vec![bulk("a1"), bulk(&record("a1"))]),
            ],
            now,
        )
        .unwrap();
        let beat =
            serde_json::json!({"agent_id": "other", "timestamp": shared::nodes::format_ts(now)})
                .to_string();
        let views = plan
            .read(vec![bulk("1"), Value::Array(vec![bulk(&beat)])], now)
            .unwrap();
        assert!(!views[0].online);
    }
}
