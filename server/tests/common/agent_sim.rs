//! A small pipeline-agent simulator that speaks Contract 3 for real: over Redis (its heartbeat
//! key, pub/sub wake-ups, its command stream, the inbox) or over REST (register, heartbeat,
//! poll, results). It applies each command id once and answers at once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use shared::control::keys;
use shared::control::{AgentCommand, PollReply};
use tokio::task::JoinHandle;

pub const AGENT_TOKEN: &str = "agent-token-0123456789";
pub const OPERATOR_TOKEN: &str = "operator-token-0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Redis,
    Rest,
}

/// What the simulated agent did.
#[derive(Default)]
pub struct Log {
    /// Every command received (repeats included), in order.
    pub received: Vec<String>,
    /// Commands applied (each id once).
    pub applied: Vec<String>,
}

pub struct SimAgent {
    pub id: String,
    pub log: Arc<Mutex<Log>>,
    task: JoinHandle<()>,
}

impl Drop for SimAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn registration(id: &str, labels: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "agent_id": id, "ip": "127.0.0.1", "hostname": format!("host-{id}"), "os": "linux",
        "arch": "x86_64", "version": "0.1.0", "max_concurrent": 4, "labels": labels
    })
}

pub fn beat_json(id: &str, mode: &str) -> serde_json::Value {
    serde_json::json!({
        "agent_id": id, "timestamp": shared::time::format_ts(chrono::Utc::now()),
        "cpu_usage": 10.0, "memory_usage": 20.0, "pipelines": ["image"],
        "pipeline_stats": [{"id": "image", "status": "running", "processed": 5, "errors": 0}],
        "communication_mode": mode
    })
}

/// Registers over REST with the agent token, expecting 200.
pub async fn register_rest(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    labels: serde_json::Value,
) {
    let r = http
        .post(format!("{base}/api/agents/register"))
        .bearer_auth(AGENT_TOKEN)
        .json(&registration(id, labels))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn inbox(conn: &mut MultiplexedConnection, msg: serde_json::Value) {
    redis::cmd("XADD")
        .arg(keys::INBOX)
        .arg("MAXLEN")
        .arg("~")
        .arg(keys::MAX_INBOX)
        .arg("*")
        .arg("msg")
        .arg(msg.to_string())
        .query_async::<()>(conn)
        .await
        .unwrap();
}

impl SimAgent {
    /// An agent in Redis mode: beats its key, catches up on its stream from the start, then
    /// listens for wake-ups; answers `succeeded` (or `failed` for `pipeline_id: "broken"`).
    pub async fn redis(redis_url: &str, id: &str) -> Self {
        let client = redis::Client::open(redis_url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub.subscribe(keys::wake(id)).await.unwrap();
        let log: Arc<Mutex<Log>> = Arc::default();
        let (agent, log2) = (id.to_string(), log.clone());
        let task = tokio::spawn(async move {
            let mut applied = HashSet::new();
            set_beat(&mut conn, &agent, "redis").await;
            // Catch up: everything in the stream (sent while away).
            let reply: redis::Value = redis::cmd("XRANGE")
                .arg(keys::stream(&agent))
                .arg("-")
                .arg("+")
                .query_async(&mut conn)
                .await
                .unwrap();
            for cmd in server::control::ledger::stream_commands(reply) {
                handle(&mut conn, &agent, cmd, &mut applied, &log2).await;
            }
            let mut messages = pubsub.into_on_message();
            let mut beat = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    m = messages.next() => {
                        let Some(m) = m else { return };
                        let payload: String = m.get_payload().unwrap();
                        let cmd: AgentCommand = serde_json::from_str(&payload).unwrap();
                        handle(&mut conn, &agent, cmd, &mut applied, &log2).await;
                    }
                    _ = beat.tick() => set_beat(&mut conn, &agent, "redis").await,
                }
            }
        });
        Self {
            id: id.to_string(),
            log,
            task,
        }
    }

    /// An agent in REST mode: beats and polls over HTTP every 100 ms.
    pub async fn rest(base: &str, id: &str) -> Self {
        let http = reqwest::Client::new();
        let log: Arc<Mutex<Log>> = Arc::default();
        let (agent, log2, base) = (id.to_string(), log.clone(), base.to_string());
        let task = tokio::spawn(async move {
            let mut applied = HashSet::new();
            let mut cursor = "0".to_string();
            loop {
                let r = http
                    .post(format!("{base}/api/agents/{agent}/heartbeat"))
                    .bearer_auth(AGENT_TOKEN)
                    .json(&beat_json(&agent, "rest"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 204);
                let poll: PollReply = http
                    .get(format!("{base}/api/agents/{agent}/commands?after={cursor}"))
                    .bearer_auth(AGENT_TOKEN)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                cursor = poll.cursor;
                for cmd in poll.commands {
                    log2.lock().unwrap().received.push(cmd.command_id.clone());
                    if applied.insert(cmd.command_id.clone()) {
                        log2.lock().unwrap().applied.push(cmd.command_id.clone());
                        let r = http
                            .post(format!("{base}/api/commands/{}/results", cmd.command_id))
                            .bearer_auth(AGENT_TOKEN)
                            .json(&serde_json::json!({"agent_id": agent, "status": "succeeded", "message": "done over rest"}))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 204);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self {
            id: id.to_string(),
            log,
            task,
        }
    }

    pub fn applied(&self) -> Vec<String> {
        self.log.lock().unwrap().applied.clone()
    }

    pub fn received(&self) -> Vec<String> {
        self.log.lock().unwrap().received.clone()
    }
}

pub async fn set_beat(conn: &mut MultiplexedConnection, id: &str, mode: &str) {
    redis::cmd("SET")
        .arg(keys::beat(id))
        .arg(beat_json(id, mode).to_string())
        .arg("EX")
        .arg(keys::BEAT_TTL_S)
        .query_async::<()>(conn)
        .await
        .unwrap();
}

async fn handle(
    conn: &mut MultiplexedConnection,
    agent: &str,
    cmd: AgentCommand,
    applied: &mut HashSet<String>,
    log: &Mutex<Log>,
) {
    log.lock().unwrap().received.push(cmd.command_id.clone());
    inbox(
        conn,
        serde_json::json!({"kind": "delivered", "agent_id": agent, "command_id": cmd.command_id}),
    )
    .await;
    if !applied.insert(cmd.command_id.clone()) {
        return;
    }
    log.lock().unwrap().applied.push(cmd.command_id.clone());
    let (status, message) = if cmd.pipeline_id.as_deref() == Some("broken") {
        ("failed", "no such pipeline: broken")
    } else {
        ("succeeded", "ok")
    };
    inbox(
        conn,
        serde_json::json!({"kind": "result", "command_id": cmd.command_id, "agent_id": agent, "status": status, "message": message}),
    )
    .await;
}

/// Registers over Redis (the inbox), as an agent without REST would.
pub async fn register_redis(conn: &mut MultiplexedConnection, id: &str, labels: serde_json::Value) {
    let mut msg = registration(id, labels);
    msg["kind"] = "register".into();
    inbox(conn, msg).await;
}
