//! The agent as a whole: its identity, its Redis client, its pipelines and the tokens that
//! walk it through a graceful shutdown. Everything else gets an `Arc<Agent>`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::redis_target::Conn;
use chrono::Utc;
use shared::heartbeat::Heartbeat;
use shared::keys;
use shared::worker::{HEARTBEAT_INTERVAL_S, HEARTBEAT_TTL_S};
use tokio::sync::{watch, Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, PipelineConfig};
use crate::metrics::Metrics;
use crate::mode::Mode;
use crate::pipeline::{Host, Pipeline, Pipelines, Status};
use crate::redis_target::Target;

/// Contract 1: a worker beats every 15 s with a 45 s TTL.
pub const WORKER_BEAT_EVERY: Duration = Duration::from_secs(HEARTBEAT_INTERVAL_S);
/// Beats caused by work (busy/idle changes) come at most this often.
const BEAT_DEBOUNCE: Duration = Duration::from_secs(1);
/// Redis calls outside the slots give up after this.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Agent {
    pub id: String,
    pub hostname: String,
    pub config: Config,
    pub started: Instant,
    redis: Target,
    /// The shared, non-blocking connection (beats, commands, health checks).
    shared: tokio::sync::Mutex<Option<Conn>>,
    /// `max_concurrent`: one permit per job in flight across all pipelines.
    pub permits: Arc<Semaphore>,
    /// `queue:paused` as last read.
    pub global_paused: Arc<watch::Sender<bool>>,
    pub mode: watch::Sender<Mode>,
    pub redis_healthy: AtomicBool,
    pipelines: Pipelines,
    pub metrics: Arc<Metrics>,
    /// Shutdown has begun: take no new job.
    pub stop: CancellationToken,
    /// The grace is over: kill handlers in hand and give their jobs back.
    pub abort: CancellationToken,
    /// Leaving now: steps still waiting for Redis give up (their jobs stay recoverable).
    pub exit: CancellationToken,
    pub beat_now: Arc<Notify>,
}

impl Agent {
    pub fn new(id: String, config: Config) -> anyhow::Result<Arc<Self>> {
        let redis = config.redis_target()?;
        let hostname = hostname();
        let permits = Arc::new(Semaphore::new(config.max_concurrent() as usize));
        let global_paused = Arc::new(watch::Sender::new(false));
        let metrics = Arc::new(Metrics::default());
        let (stop, abort) = (CancellationToken::new(), CancellationToken::new());
        let beat_now = Arc::new(Notify::new());
        let host = Host::new(
            id.clone(),
            redis.clone(),
            permits.clone(),
            global_paused.clone(),
            metrics.clone(),
            stop.clone(),
            abort.clone(),
            beat_now.clone(),
            config.sweep_interval(),
        );
        Ok(Arc::new(Self {
            id,
            hostname,
            permits,
            config,
            started: Instant::now(),
            redis,
            shared: tokio::sync::Mutex::new(None),
            global_paused,
            mode: watch::Sender::new(Mode::Redis),
            redis_healthy: AtomicBool::new(false),
            pipelines: Pipelines::new(Arc::new(host)),
            metrics,
            stop,
            abort,
            exit: CancellationToken::new(),
            beat_now,
        }))
    }

    /// The shared connection, made again after a failure was reported with [`Self::lost`].
    pub async fn redis(&self) -> redis::RedisResult<Conn> {
        let mut g = self.shared.lock().await;
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let c = self.pipelines.host().slot_connection(REDIS_TIMEOUT).await?;
        *g = Some(c.clone());
        Ok(c)
    }

    pub async fn lost(&self) {
        *self.shared.lock().await = None;
    }

    /// A client for the Redis to use now (with Sentinel: the primary, asked again).
    pub async fn redis_client(&self, timeout: Duration) -> redis::RedisResult<redis::Client> {
        self.redis.client(timeout).await
    }

    pub fn pipeline(&self, id: &str) -> Option<Arc<Pipeline>> {
        self.pipelines.get(id)
    }

    pub fn all_pipelines(&self) -> Vec<Arc<Pipeline>> {
        self.pipelines.all()
    }

    /// Starts a pipeline (or starts it again), keeping the counters of an earlier run.
    pub fn start_pipeline(&self, config: PipelineConfig) -> Arc<Pipeline> {
        self.pipelines.start(config)
    }

    /// Forgets a stopped pipeline (update_config removed it).
    pub fn remove_pipeline(&self, id: &str) {
        self.pipelines.remove(id);
    }

    pub fn running_count(&self) -> usize {
        self.all_pipelines()
            .iter()
            .filter(|p| p.status() == Status::Running)
            .count()
    }

    pub fn set_redis_healthy(&self, ok: bool) {
        self.redis_healthy.store(ok, Ordering::Relaxed);
        self.metrics.redis_connected(ok);
    }

    pub fn is_redis_healthy(&self) -> bool {
        self.redis_healthy.load(Ordering::Relaxed)
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The Contract-1 heartbeat of one pipeline's worker.
pub fn worker_heartbeat(p: &Pipeline, globally_paused: bool) -> Heartbeat {
    use std::sync::atomic::Ordering::Relaxed;
    Heartbeat {
        name: p.config.worker_name().to_string(),
        kind: p.config.worker_kind(),
        state: p.beat_state(globally_paused),
        ts: Utc::now(),
        last_job_at: p.stats.last_job_at(),
        jobs_done: p.stats.processed.load(Relaxed),
        // Every failed job (each failed attempt), as the plan's workers count it.
        jobs_failed: p.stats.errors.load(Relaxed),
        mode: None,
    }
}

/// Writes every pipeline's Contract-1 heartbeat every 15 s, and soon after work changes a
/// pipeline's state (debounced, so a busy pipeline costs one SET a second, not one a job).
pub async fn beat_workers(agent: Arc<Agent>) {
    loop {
        let paused = *agent.global_paused.borrow();
        let beats: Vec<(String, String)> = agent
            .all_pipelines()
            .iter()
            .map(|p| {
                (
                    keys::heartbeat(p.config.worker_name()),
                    worker_heartbeat(p, paused).to_json(),
                )
            })
            .collect();
        if !beats.is_empty() {
            if let Err(e) = write_beats(&agent, &beats).await {
                tracing::debug!("worker heartbeats: {e}");
                agent.lost().await;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(WORKER_BEAT_EVERY) => {}
            _ = agent.beat_now.notified() => {
                tokio::select! {
                    _ = tokio::time::sleep(BEAT_DEBOUNCE) => {}
                    _ = agent.exit.cancelled() => return,
                }
            }
            _ = agent.exit.cancelled() => return,
        }
    }
}

async fn write_beats(agent: &Agent, beats: &[(String, String)]) -> redis::RedisResult<()> {
    let mut c = agent.redis().await?;
    let mut pipe = redis::pipe();
    for (key, value) in beats {
        pipe.cmd("SET")
            .arg(key)
            .arg(value)
            .arg("EX")
            .arg(HEARTBEAT_TTL_S)
            .ignore();
    }
    // The heartbeat keys spread over every slot of a Cluster.
    c.query(&pipe).await
}
