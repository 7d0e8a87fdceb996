//! The agent registry as the collector reads it, in the same cycle as the workers: `GET` of the
//! registry's version, `MGET` of every registered agent's heartbeat key and, only in the cycle
//! after the version moved, `HGETALL` of the registry. All pure but the pipeline it hands out.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use redis::Value;
use shared::control::agent::agent_view;
use shared::control::keys;
use shared::control::{AgentHeartbeat, AgentRecord, AgentView, AgentsReply, OFFLINE_AFTER_S};
use tokio::sync::watch;

use super::ReplyError;

/// A heartbeat value larger than this is ignored (an agent's is a few hundred bytes).
const MAX_BEAT_BYTES: usize = 64 * 1024;

/// One agent as the collector last saw it. `view` is shared between cycles while the agent's
/// beat bytes do not change; its `online` says only whether a beat key was there, and
/// `last_beat_age_s` is left for [`AgentsSnapshot`] to fill in at read time.
#[derive(Clone, Debug)]
pub struct AgentEntry {
    pub view: Arc<AgentView>,
    pub beat_at: Option<DateTime<Utc>>,
}

impl AgentEntry {
    /// The view as of `now`: its age, and online only with a beat within 30 s.
    pub fn at(&self, now: DateTime<Utc>) -> AgentView {
        let age = self.beat_at.map(|t| (now - t).num_seconds().max(0));
        AgentView {
            online: self.view.online && age.is_some_and(|a| a <= OFFLINE_AFTER_S),
            last_beat_age_s: age,
            ..(*self.view).clone()
        }
    }
}

/// What `GET /api/agents` serves: the agents of one cycle, and their JSON made at most once,
/// on the first request that wants it (nobody asking costs the collector nothing).
#[derive(Debug, Default)]
pub struct AgentsSnapshot {
    pub redis_ok: bool,
    pub at: DateTime<Utc>,
    pub entries: Vec<AgentEntry>,
    json: OnceLock<Bytes>,
}

impl AgentsSnapshot {
    pub fn new(redis_ok: bool, at: DateTime<Utc>, entries: Vec<AgentEntry>) -> Self {
        Self {
            redis_ok,
            at,
            entries,
            json: OnceLock::new(),
        }
    }

    /// Every agent as of this snapshot.
    pub fn agents(&self) -> Vec<AgentView> {
        self.entries.iter().map(|e| e.at(self.at)).collect()
    }

    pub fn find(&self, agent_id: &str) -> Option<AgentView> {
        self.entries
            .iter()
            .find(|e| e.view.agent_id == agent_id)
            .map(|e| e.at(self.at))
    }

    /// `{"agents": [...]}`, serialised once per snapshot.
    pub fn json(&self) -> Bytes {
        self.json
            .get_or_init(|| {
                let reply = AgentsReply {
                    agents: self.agents(),
                };
                Bytes::from(serde_json::to_vec(&reply).unwrap_or_default())
            })
            .clone()
    }
}

pub type AgentsRx = watch::Receiver<Arc<AgentsSnapshot>>;

/// What the plan remembers of one registered agent between cycles.
#[derive(Debug)]
struct Seen {
    /// The beat key's bytes last cycle (`None`: no key).
    raw: Option<Vec<u8>>,
    entry: AgentEntry,
}

pub struct AgentsPlan {
    version: Option<Vec<u8>>,
    records: Vec<AgentRecord>,
    /// Aligned with `records`.
    seen: Vec<Seen>,
    need_registry: bool,
    pipeline: redis::Pipeline,
}

impl Default for AgentsPlan {
    fn default() -> Self {
        let mut plan = Self {
            version: None,
            records: Vec::new(),
            seen: Vec::new(),
            need_registry: true,
            pipeline: redis::pipe(),
        };
        plan.pipeline = plan.build();
        plan
    }
}

impl AgentsPlan {
    pub fn pipeline(&self) -> &redis::Pipeline {
        &self.pipeline
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

    /// Decodes one cycle's replies into the agents as they are now. A beat whose bytes did
    /// not change since the last cycle is not parsed again and keeps its shared view.
    pub fn read(&mut self, replies: Vec<Value>) -> Result<Vec<AgentEntry>, ReplyError> {
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
        if !self.records.is_empty() {
            match it.next() {
                Some(Value::Array(items)) if items.len() == self.records.len() => {
                    for ((r, seen), v) in self.records.iter().zip(&mut self.seen).zip(items) {
                        let raw = match v {
                            Value::BulkString(b) => Some(b),
                            _ => None,
                        };
                        if raw != seen.raw {
                            seen.entry = entry(r, raw.as_deref(), seen.entry.beat_at);
                            seen.raw = raw;
                        }
                    }
                }
                other => return Err(ReplyError::NotArray(format!("{other:?}"))),
            }
        }
        let mut rebuild = false;
        if let Some(records) = fresh {
            self.adopt(records);
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
        Ok(self.seen.iter().map(|s| s.entry.clone()).collect())
    }

    /// Takes a new registry, keeping what was seen of the agents that stay.
    fn adopt(&mut self, records: Vec<AgentRecord>) {
        let mut old: std::collections::HashMap<String, Seen> = self
            .records
            .drain(..)
            .zip(self.seen.drain(..))
            .map(|(r, s)| (r.agent_id, s))
            .collect();
        self.seen = records
            .iter()
            .map(|r| {
                let prev = old.remove(&r.agent_id);
                let beat_at = prev.as_ref().and_then(|p| p.entry.beat_at);
                let raw = prev.and_then(|p| p.raw);
                // The record may have changed (labels): rebuild the view from it.
                Seen {
                    entry: entry(r, raw.as_deref(), beat_at),
                    raw,
                }
            })
            .collect();
        self.records = records;
    }
}

/// One agent's entry from its record and beat bytes; `beat_at` is kept when the beat is gone
/// or unreadable, so an offline agent still says when it last beat.
fn entry(r: &AgentRecord, raw: Option<&[u8]>, beat_at: Option<DateTime<Utc>>) -> AgentEntry {
    let beat = raw.and_then(beat).filter(|b| b.agent_id == r.agent_id);
    let stamped = beat
        .as_ref()
        .and_then(|b| b.timestamp.parse::<DateTime<Utc>>().ok());
    let mut view = agent_view(r, beat.as_ref(), None);
    view.online = beat.is_some();
    AgentEntry {
        view: Arc::new(view),
        beat_at: stamped.or(beat_at),
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
            Some(Value::BulkString(b)) => AgentRecord::parse_stored(b),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    out
}

fn beat(raw: &[u8]) -> Option<AgentHeartbeat> {
    if raw.len() > MAX_BEAT_BYTES {
        return None;
    }
    serde_json::from_slice(raw).ok()
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

    fn views(entries: &[AgentEntry], now: DateTime<Utc>) -> Vec<AgentView> {
        AgentsSnapshot::new(true, now, entries.to_vec()).agents()
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
        let e = plan
            .read(vec![
                bulk("1"),
                Value::Array(vec![
                    bulk("a1"),
                    bulk(&record("a1")),
                    bulk("junk"),
                    bulk("{"),
                ]),
            ])
            .unwrap();
        assert_eq!(e.len(), 1);
        assert!(!views(&e, now)[0].online, "no beat read yet");
        assert_eq!(plan.pipeline().cmd_iter().count(), 2, "GET version + MGET");
        let beat = serde_json::json!({"agent_id": "a1", "timestamp": shared::time::format_ts(now), "communication_mode": "rest"}).to_string();
        let e = plan
            .read(vec![bulk("1"), Value::Array(vec![bulk(&beat)])])
            .unwrap();
        let v = views(&e, now);
        assert!(v[0].online);
        assert_eq!(v[0].last_beat_age_s, Some(0));
        // Unchanged bytes: the same shared view, not parsed again.
        let again = plan
            .read(vec![bulk("1"), Value::Array(vec![bulk(&beat)])])
            .unwrap();
        assert!(Arc::ptr_eq(&e[0].view, &again[0].view));
        // Old bytes, still there: offline once the beat is older than 30 s.
        assert!(!views(&again, now + chrono::Duration::seconds(31))[0].online);
        // The version moved: the next cycle re-reads the registry.
        plan.read(vec![bulk("2"), Value::Array(vec![Value::Nil])])
            .unwrap();
        assert_eq!(plan.pipeline().cmd_iter().count(), 3);
        let later = now + chrono::Duration::seconds(40);
        let e = plan
            .read(vec![
                bulk("2"),
                Value::Array(vec![bulk("a1"), bulk(&record("a1"))]),
                Value::Array(vec![Value::Nil]),
            ])
            .unwrap();
        let v = views(&e, later);
        assert!(!v[0].online);
        assert_eq!(
            v[0].last_beat_age_s,
            Some(40),
            "offline, but says when it last beat"
        );
        assert!(plan.read(vec![bulk("2")]).is_err(), "wrong reply count");
    }

    #[test]
    fn a_changed_byte_is_never_missed() {
        let now = Utc::now();
        let mut plan = AgentsPlan::default();
        plan.read(vec![
            bulk("1"),
            Value::Array(vec![bulk("a1"), bulk(&record("a1"))]),
        ])
        .unwrap();
        let beat = |mode: &str| {
            serde_json::json!({"agent_id": "a1", "timestamp": shared::time::format_ts(now), "communication_mode": mode}).to_string()
        };
        plan.read(vec![bulk("1"), Value::Array(vec![bulk(&beat("redis"))])])
            .unwrap();
        let e = plan
            .read(vec![bulk("1"), Value::Array(vec![bulk(&beat("rest"))])])
            .unwrap();
        assert_eq!(
            views(&e, now)[0].communication_mode,
            Some(shared::control::CommunicationMode::Rest)
        );
        let e = plan
            .read(vec![bulk("1"), Value::Array(vec![Value::Nil])])
            .unwrap();
        assert!(
            !views(&e, now)[0].online,
            "a key that disappears is offline in the same cycle"
        );
    }

    #[test]
    fn a_beat_under_another_agents_key_is_not_trusted() {
        let now = Utc::now();
        let mut plan = AgentsPlan::default();
        plan.read(vec![
            bulk("1"),
            Value::Array(vec![bulk("a1"), bulk(&record("a1"))]),
        ])
        .unwrap();
        let beat =
            serde_json::json!({"agent_id": "other", "timestamp": shared::time::format_ts(now)})
                .to_string();
        let e = plan
            .read(vec![bulk("1"), Value::Array(vec![bulk(&beat)])])
            .unwrap();
        assert!(!views(&e, now)[0].online);
    }
}
