//! The agent's side of Contract 3: registration, agent heartbeats, commands and results,
//! over Redis or REST as the mode machine says (`mode`). The pipelines never wait on this:
//! if the control plane is away they keep working; results wait on disk until it is back.
//!
//! [`Link::run`] is the driver: each tick it checks Redis, lets the mode machine decide the
//! transport, and asks its [`Schedule`] (pure, tested) what is due — then [`redis`] and
//! [`rest`] carry it out.

mod redis;
mod rest;
mod schedule;

use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::control::{AgentHeartbeat, CommandResult, InboxMessage, PipelineStat, Registration};

use crate::agent::Agent;
use crate::commands::Commands;
use crate::mode::{uses_redis, uses_rest, Mode, ModeMachine, Timing};
use crate::state::Applied;
use crate::system::Usage;
use schedule::{BeatRest, Schedule};

/// Redis is checked (and `queue:paused` read) this often.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const REST_TIMEOUT: Duration = Duration::from_secs(3);
/// `CONTROL_PLANE_URL` when none is set: Agent Office's own default address.
pub const DEFAULT_CONTROL_PLANE_URL: &str = "http://127.0.0.1:3000";
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
        let url = cp.url.as_deref().unwrap_or(DEFAULT_CONTROL_PLANE_URL);
        let http = match &cp.token {
            Some(token) => Some(Rest {
                client: reqwest::Client::builder()
                    .timeout(REST_TIMEOUT)
                    .build()
                    .map_err(|e| anyhow::anyhow!("http client: {e}"))?,
                base: url.trim_end_matches('/').to_string(),
                token: token.clone(),
            }),
            None => {
                tracing::warn!(
                    control_plane = url,
                    "no AGENT_TOKEN: the REST fallback is off (the control plane refuses agents \
                     without it); commands and heartbeats go over Redis only"
                );
                None
            }
        };
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
        let mut schedule = Schedule::new(
            c.heartbeat_interval,
            c.command_poll_interval,
            Instant::now(),
        );
        let mut usage = Usage::default();
        tokio::spawn(self.clone().listen());
        loop {
            let ok = self.check_redis().await;
            let mode = self.observe(&mut machine, &mut schedule, ok);
            let now = Instant::now();
            let redis = uses_redis(mode) && ok;
            if schedule.register_redis_due(redis, now) && self.register_redis().await.is_ok() {
                schedule.registered_over_redis(now);
            }
            if schedule.take_beat(now) {
                let beat = self.heartbeat(mode, usage.sample());
                let sent = self.beat(&mut schedule, &beat, mode, redis, now).await;
                self.agent.metrics.heartbeat(sent);
            }
            if uses_rest(mode) && schedule.take_poll(now) {
                self.poll_rest().await;
            }
            self.report(mode, ok).await;
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = self.agent.exit.cancelled() => return,
            }
        }
    }

    /// Feeds this tick's Redis check to the mode machine and says what changed.
    fn observe(&self, machine: &mut ModeMachine, schedule: &mut Schedule, ok: bool) -> Mode {
        let before = machine.mode();
        let mode = machine.observe(ok, Instant::now());
        if mode != before {
            tracing::warn!(
                from = before.as_str(),
                to = mode.as_str(),
                redis_ok = ok,
                "communication mode changed"
            );
            schedule.mode_changed(mode, Instant::now());
        }
        self.agent.mode.send_replace(mode);
        self.agent.metrics.mode(mode);
        mode
    }

    /// One heartbeat over the mode's transports; true when one of them took it.
    async fn beat(
        &self,
        schedule: &mut Schedule,
        beat: &AgentHeartbeat,
        mode: Mode,
        redis: bool,
        now: Instant,
    ) -> bool {
        let mut sent = false;
        if redis {
            match self.beat_redis(beat).await {
                Ok(in_registry) => {
                    sent = true;
                    schedule.beat_over_redis(in_registry, now);
                }
                Err(e) => tracing::debug!("heartbeat over redis: {e}"),
            }
        }
        if !uses_rest(mode) {
            schedule.off_rest();
            return sent;
        }
        if schedule.register_rest_due() {
            if let Some(interval) = self.register_rest().await {
                schedule.registered_over_rest(interval);
            }
        }
        let answer = self.beat_rest(beat).await;
        schedule.beat_over_rest(answer);
        sent || answer == BeatRest::Sent
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
                    queue: Some(p.config.queue.clone()),
                })
                .collect(),
            communication_mode: mode,
        }
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
