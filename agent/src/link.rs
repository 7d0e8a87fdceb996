//! The agent's side of Contract 3: registration, agent heartbeats, commands and results,
//! over Redis or REST as the mode machine says (`mode`). The pipelines never wait on this:
//! if the control plane is away they keep working; results wait on disk until it is back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use shared::control::{
    keys, stream, AgentCommand, AgentHeartbeat, CommandResult, InboxMessage, PipelineStat,
    PollReply, Registration,
};

use crate::agent::{Agent, REDIS_TIMEOUT};
use crate::commands::Commands;
use crate::mode::{uses_redis, uses_rest, Mode, ModeMachine, Timing};
use crate::state::Applied;
use crate::system::Usage;

/// Redis is checked (and `queue:paused` read) this often.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Over Redis the agent says it is registered again this often (the server keeps it once).
const REGISTER_EVERY: Duration = Duration::from_secs(300);
/// A registration sent over Redis is in the registry once the server has read its inbox;
/// a heartbeat that finds us missing sooner than this after it does not register again.
const REGISTER_SETTLE: Duration = Duration::from_secs(5);
const REST_TIMEOUT: Duration = Duration::from_secs(3);
/// Most commands read from the stream at once.
const READ_BATCH: usize = 100;

pub struct Link {
    agent: Arc<Agent>,
    commands: Arc<Commands>,
    http: Option<Rest>,
}

struct Rest {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Link {
    pub fn new(agent: Arc<Agent>, commands: Arc<Commands>) -> anyhow::Result<Arc<Self>> {
        let cp = &agent.config.control_plane;
        let http = match (&cp.url, &cp.token) {
            (Some(url), Some(token)) => Some(Rest {
                client: reqwest::Client::builder()
                    .timeout(REST_TIMEOUT)
                    .build()
                    .map_err(|e| anyhow::anyhow!("http client: {e}"))?,
                base: url.trim_end_matches('/').to_string(),
                token: token.clone(),
            }),
            (Some(_), None) => {
                anyhow::bail!("control_plane.url is set but no AGENT_TOKEN (control_plane.token)")
            }
            _ => None,
        };
        if http.is_none() {
            tracing::warn!("no CONTROL_PLANE_URL: commands and heartbeats go over Redis only, with no REST fallback");
        }
        Ok(Arc::new(Self {
            agent,
            commands,
            http,
        }))
    }

    /// The health check, the mode machine, heartbeats, polls and result reports.
    pub async fn run(self: Arc<Self>) {
        let c = &self.agent.config.communication;
        let mut machine = ModeMachine::new(Timing {
            rest_after: c.rest_after,
            stabilisation: c.stabilisation,
            rest_fallback: c.enable_rest_fallback && self.http.is_some(),
        });
        let mut beat_every = c.heartbeat_interval;
        let poll_every = c.command_poll_interval;
        let mut usage = Usage::default();
        let mut next_beat = Instant::now();
        let mut next_poll = Instant::now();
        let mut next_register = Instant::now();
        let mut registered_at: Option<Instant> = None;
        let mut rest_registered = false;
        tokio::spawn(self.clone().listen());
        loop {
            let ok = self.check_redis().await;
            let before = machine.mode();
            let mode = machine.observe(ok, Instant::now());
            if mode != before {
                tracing::warn!(
                    from = before.as_str(),
                    to = mode.as_str(),
                    redis_ok = ok,
                    "communication mode changed"
                );
                if mode == Mode::Redis {
                    next_register = Instant::now();
                }
            }
            self.agent.mode.send_replace(mode);
            self.agent.metrics.mode(mode);
            let now = Instant::now();
            if uses_redis(mode) && ok && now >= next_register && self.register_redis().await.is_ok()
            {
                next_register = now + REGISTER_EVERY;
                registered_at = Some(now);
            }
            if now >= next_beat {
                next_beat = now + beat_every;
                let beat = self.heartbeat(mode, usage.sample());
                let mut sent = false;
                if uses_redis(mode) && ok {
                    match self.beat_redis(&beat).await {
                        Ok(registered) => {
                            sent = true;
                            if !registered {
                                // The registry does not hold us: the server lost it, or has
                                // not read the registration just sent (then wait a moment).
                                next_register =
                                    registered_at.map_or(now, |at| now.max(at + REGISTER_SETTLE));
                            }
                        }
                        Err(e) => tracing::debug!("heartbeat over redis: {e}"),
                    }
                }
                if uses_rest(mode) {
                    if !rest_registered {
                        if let Some(interval) = self.register_rest().await {
                            rest_registered = true;
                            beat_every = interval;
                        }
                    }
                    match self.beat_rest(&beat).await {
                        BeatRest::Sent => sent = true,
                        BeatRest::Unknown => rest_registered = false,
                        BeatRest::Failed => {}
                    }
                } else {
                    rest_registered = false;
                }
                self.agent.metrics.heartbeat(sent);
            }
            if uses_rest(mode) && now >= next_poll {
                next_poll = now + poll_every;
                self.poll_rest().await;
            }
            self.report(mode, ok).await;
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = self.agent.exit.cancelled() => return,
            }
        }
    }

    /// One `GET queue:paused`: the health check and the global pause flag in one call.
    async fn check_redis(&self) -> bool {
        let r = async {
            let mut c = self.agent.redis().await?;
            redis::cmd("GET")
                .arg(shared::keys::PAUSED)
                .query_async::<Option<String>>(&mut c)
                .await
        };
        let ok = match tokio::time::timeout(REDIS_TIMEOUT, r).await {
            Ok(Ok(flag)) => {
                self.agent
                    .global_paused
                    .send_if_modified(|p| std::mem::replace(p, flag.as_deref() == Some("1")) != *p);
                true
            }
            _ => {
                self.agent.lost().await;
                false
            }
        };
        self.agent.set_redis_healthy(ok);
        ok
    }

    fn registration(&self) -> Registration {
        let a = &self.agent;
        Registration {
            agent_id: Some(a.id.clone()),
            ip: local_ip(&a.config.redis.host, a.config.redis.port),
            hostname: a.hostname.clone(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            max_concurrent: a.config.max_concurrent(),
            labels: a.config.agent.labels.clone(),
        }
    }

    fn heartbeat(&self, mode: Mode, (cpu, mem): (f64, f64)) -> AgentHeartbeat {
        let pipelines = self.agent.all_pipelines();
        AgentHeartbeat {
            agent_id: self.agent.id.clone(),
            timestamp: shared::time::format_ts(chrono::Utc::now()),
            cpu_usage: cpu,
            memory_usage: mem,
            pipelines: pipelines.iter().map(|p| p.config.id.clone()).collect(),
            pipeline_stats: pipelines
                .iter()
                .map(|p| PipelineStat {
                    id: p.config.id.clone(),
                    status: p.status().into(),
                    processed: p.stats.processed.load(std::sync::atomic::Ordering::Relaxed),
                    errors: p.stats.errors.load(std::sync::atomic::Ordering::Relaxed),
                })
                .collect(),
            communication_mode: mode,
        }
    }

    async fn inbox(&self, msg: &InboxMessage) -> redis::RedisResult<()> {
        // Serialising our own message types cannot fail.
        let json = serde_json::to_string(msg).unwrap_or_default();
        let mut c = self.agent.redis().await?;
        redis::cmd("XADD")
            .arg(keys::INBOX)
            .arg("MAXLEN")
            .arg("~")
            .arg(keys::MAX_INBOX)
            .arg("*")
            .arg(stream::INBOX_FIELD)
            .arg(json)
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
    }

    async fn register_redis(&self) -> redis::RedisResult<()> {
        let r = self
            .inbox(&InboxMessage::Register(self.registration()))
            .await;
        if let Err(e) = &r {
            tracing::debug!("register over redis: {e}");
        }
        r
    }

    /// SETs the heartbeat and asks whether the registry holds us, in one round trip.
    async fn beat_redis(&self, beat: &AgentHeartbeat) -> redis::RedisResult<bool> {
        let mut c = self.agent.redis().await?;
        // Serialising our own heartbeat cannot fail.
        let json = serde_json::to_string(beat).unwrap_or_default();
        let ((), registered): ((), bool) = redis::pipe()
            .cmd("SET")
            .arg(keys::beat(&self.agent.id))
            .arg(json)
            .arg("EX")
            .arg(keys::BEAT_TTL_S)
            .cmd("HEXISTS")
            .arg(keys::AGENTS)
            .arg(&self.agent.id)
            .query_async(&mut c)
            .await?;
        Ok(registered)
    }

    fn rest(&self, method: reqwest::Method, path: &str) -> Option<reqwest::RequestBuilder> {
        let h = self.http.as_ref()?;
        Some(
            h.client
                .request(method, format!("{}{path}", h.base))
                .bearer_auth(&h.token),
        )
    }

    /// Registers over REST; the answer's heartbeat interval is the one to use.
    async fn register_rest(&self) -> Option<Duration> {
        let req = self.rest(reqwest::Method::POST, "/api/agents/register")?;
        match req.json(&self.registration()).send().await {
            Ok(r) if r.status().is_success() => {
                let reply: shared::control::RegisterReply = r.json().await.ok()?;
                tracing::info!(agent_id = %reply.agent_id, "registered over REST");
                Some(Duration::from_secs(reply.heartbeat_interval_s.max(1)))
            }
            Ok(r) => {
                tracing::warn!(status = %r.status(), "the control plane refused the registration");
                None
            }
            Err(e) => {
                tracing::debug!("register over REST: {e}");
                None
            }
        }
    }

    async fn beat_rest(&self, beat: &AgentHeartbeat) -> BeatRest {
        let path = format!("/api/agents/{}/heartbeat", self.agent.id);
        let Some(req) = self.rest(reqwest::Method::POST, &path) else {
            return BeatRest::Failed;
        };
        match req.json(beat).send().await {
            Ok(r) if r.status().is_success() => BeatRest::Sent,
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => BeatRest::Unknown,
            Ok(r) => {
                tracing::debug!(status = %r.status(), "heartbeat over REST refused");
                BeatRest::Failed
            }
            Err(e) => {
                tracing::debug!("heartbeat over REST: {e}");
                BeatRest::Failed
            }
        }
    }

    async fn poll_rest(&self) {
        let cursor = self.commands.cursor().await;
        let after = if cursor.is_empty() {
            stream::START
        } else {
            &cursor
        };
        let path = format!("/api/agents/{}/commands?after={after}", self.agent.id);
        let Some(req) = self.rest(reqwest::Method::GET, &path) else {
            return;
        };
        let reply: PollReply = match req.send().await {
            Ok(r) if r.status().is_success() => match r.json().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("the command poll answered something else: {e}");
                    return;
                }
            },
            Ok(r) => {
                tracing::debug!(status = %r.status(), "command poll refused");
                return;
            }
            Err(e) => {
                tracing::debug!("command poll: {e}");
                return;
            }
        };
        for cmd in &reply.commands {
            self.commands.handle(cmd).await;
        }
        self.commands.advance(&reply.cursor).await;
    }

    /// Sends every result the server has not confirmed, over the mode's transport.
    async fn report(&self, mode: Mode, redis_ok: bool) {
        for a in self.commands.unreported().await {
            let sent = if uses_redis(mode) && redis_ok {
                self.inbox(&result_message(&self.agent.id, &a))
                    .await
                    .is_ok()
            } else {
                self.result_rest(&a).await
            };
            if !sent {
                return; // try again next tick, in order
            }
            self.commands.reported(&a.command_id).await;
        }
    }

    async fn result_rest(&self, a: &Applied) -> bool {
        let path = format!("/api/commands/{}/results", a.command_id);
        let Some(req) = self.rest(reqwest::Method::POST, &path) else {
            return false;
        };
        let body = CommandResult {
            agent_id: self.agent.id.clone(),
            status: a.status,
            message: a.message.clone(),
        };
        match req.json(&body).send().await {
            Ok(r) if r.status().is_success() => true,
            // The server does not know it (trimmed from its ledger, or we are no target):
            // saying it again will not change that.
            Ok(r)
                if r.status().is_client_error()
                    && r.status() != reqwest::StatusCode::UNAUTHORIZED =>
            {
                tracing::warn!(command = %a.command_id, status = %r.status(), "result refused; dropped");
                true
            }
            _ => false,
        }
    }

    /// Redis mode's command intake: the pub/sub wake-up, and the agent's stream read from
    /// the last cursor on every (re)connect and every poll interval (a missed publish
    /// waits at most that long).
    async fn listen(self: Arc<Self>) {
        let mut mode = self.agent.mode.subscribe();
        loop {
            if self.agent.exit.is_cancelled() {
                return;
            }
            let current = *mode.borrow_and_update();
            if !uses_redis(current) {
                tokio::select! {
                    _ = mode.changed() => continue,
                    _ = self.agent.exit.cancelled() => return,
                }
            }
            if let Err(e) = self.listen_once(&mut mode).await {
                tracing::debug!("command subscription: {e}");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = self.agent.exit.cancelled() => return,
            }
        }
    }

    async fn listen_once(
        &self,
        mode: &mut tokio::sync::watch::Receiver<Mode>,
    ) -> redis::RedisResult<()> {
        let mut pubsub =
            tokio::time::timeout(REDIS_TIMEOUT, self.agent.client().get_async_pubsub())
                .await
                .map_err(|_| timeout_error())??;
        pubsub.subscribe(keys::wake(&self.agent.id)).await?;
        let mut messages = pubsub.into_on_message();
        self.catch_up().await?;
        let every = self.agent.config.communication.command_poll_interval;
        loop {
            tokio::select! {
                msg = messages.next() => {
                    let Some(msg) = msg else { return Ok(()) }; // connection closed
                    match serde_json::from_slice::<AgentCommand>(msg.get_payload_bytes()) {
                        Ok(cmd) => self.take(&cmd).await,
                        Err(e) => tracing::warn!("a command message that is not a command: {e}"),
                    }
                }
                _ = tokio::time::sleep(every) => self.catch_up().await?,
                _ = mode.changed() => {
                    let current = *mode.borrow_and_update();
                    if !uses_redis(current) {
                        return Ok(());
                    }
                }
                _ = self.agent.exit.cancelled() => return Ok(()),
            }
        }
    }

    /// A command read over Redis: said delivered, applied once, result reported.
    async fn take(&self, cmd: &AgentCommand) {
        if self.commands.handle(cmd).await {
            let delivered = InboxMessage::Delivered {
                agent_id: self.agent.id.clone(),
                command_id: cmd.command_id.clone(),
            };
            if let Err(e) = self.inbox(&delivered).await {
                tracing::debug!("delivered: {e}");
            }
            let ok = self.agent.is_redis_healthy();
            let mode = *self.agent.mode.borrow();
            self.report(mode, ok).await;
        }
    }

    /// Reads the agent's stream after the last cursor, in batches.
    async fn catch_up(&self) -> redis::RedisResult<()> {
        loop {
            let cursor = self.commands.cursor().await;
            let start = stream::range_after(&cursor);
            let mut c = self.agent.redis().await?;
            let entries: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XRANGE")
                .arg(keys::stream(&self.agent.id))
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(READ_BATCH)
                .query_async(&mut c)
                .await?;
            let n = entries.len();
            for (id, fields) in entries {
                let parsed = fields
                    .get(stream::COMMAND_FIELD)
                    .map(|b| serde_json::from_slice::<AgentCommand>(b));
                match parsed {
                    Some(Ok(mut cmd)) => {
                        cmd.cursor = id.clone();
                        self.take(&cmd).await;
                    }
                    _ => {
                        tracing::warn!(entry = %id, "a stream entry that is not a command; skipped")
                    }
                }
                self.commands.advance(&id).await;
            }
            if n < READ_BATCH {
                return Ok(());
            }
        }
    }
}

enum BeatRest {
    Sent,
    /// 404: the control plane does not know us (it lost its registry): register again.
    Unknown,
    Failed,
}

fn result_message(agent_id: &str, a: &Applied) -> InboxMessage {
    InboxMessage::Result {
        command_id: a.command_id.clone(),
        result: CommandResult {
            agent_id: agent_id.to_string(),
            status: a.status,
            message: a.message.clone(),
        },
    }
}

fn timeout_error() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "redis did not answer in time",
    ))
}

/// The address this host reaches Redis from (no packet is sent: UDP connect only routes).
fn local_ip(host: &str, port: u16) -> String {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect((host, port))?;
            s.local_addr()
        })
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "127.0.0.1".into())
}
