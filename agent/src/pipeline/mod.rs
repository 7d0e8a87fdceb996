//! One pipeline at work: `concurrency` slots, each on its own Redis connection, taking jobs
//! from the reliable queue, running the handler and settling each job ([`slot`]); a
//! supervisor around them that recovers what a previous run left and restarts a crashed run up
//! to `max_restarts` times before it pauses the pipeline and says why ([`supervisor`]); and a
//! sweeper that gives back jobs a lost reply stranded ([`sweeper`]).
//!
//! A pipeline sees the agent only through its [`Host`]: the agent's id, Redis, the job
//! permits, the global pause, the shutdown tokens and the metrics — never the whole agent.
//! The agent keeps its pipelines in [`Pipelines`].

mod gate;
mod slot;
mod supervisor;
mod sweeper;
mod waiting;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::redis_target::Conn;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::control::PipelineStatus;
use shared::worker::WorkerState;
use tokio::sync::{watch, Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use shared::jobs::JobRow;

use crate::config::PipelineConfig;
use crate::history::{Change, Job};
use crate::metrics::Metrics;
use crate::queue::{Failed, QueueKeys};

/// How long one BLMOVE waits before the slot looks at pause and stop again.
const TAKE_WAIT: Duration = Duration::from_secs(1);
/// Redis calls of a slot give up after this (above TAKE_WAIT: BLMOVE blocks that long).
const SLOT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What a pipeline needs of the agent that runs it.
pub struct Host {
    pub agent_id: String,
    redis: crate::redis_target::Target,
    /// `max_concurrent`: one permit per job in flight across all pipelines.
    pub permits: Arc<Semaphore>,
    /// `queue:paused` as last read.
    pub global_paused: Arc<watch::Sender<bool>>,
    pub metrics: Arc<Metrics>,
    /// Shutdown has begun: take no new job.
    pub stop: CancellationToken,
    /// The grace is over: kill handlers in hand and give their jobs back.
    pub abort: CancellationToken,
    /// Work changed a pipeline's state: beat soon.
    pub beat_now: Arc<Notify>,
    pub sweep_interval: Duration,
}

impl Host {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        agent_id: String,
        redis: crate::redis_target::Target,
        permits: Arc<Semaphore>,
        global_paused: Arc<watch::Sender<bool>>,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
        abort: CancellationToken,
        beat_now: Arc<Notify>,
        sweep_interval: Duration,
    ) -> Self {
        Self {
            agent_id,
            redis,
            permits,
            global_paused,
            metrics,
            stop,
            abort,
            beat_now,
            sweep_interval,
        }
    }

    /// A connection of its own for one slot (BLMOVE blocks the connection it runs on).
    pub async fn slot_connection(&self, timeout: Duration) -> redis::RedisResult<Conn> {
        let mut c = self.redis.connect(timeout).await?;
        crate::queue::load_scripts(&mut c).await?;
        Ok(c)
    }
}

/// The agent's pipelines by id.
pub struct Pipelines {
    host: Arc<Host>,
    map: Mutex<BTreeMap<String, Arc<Pipeline>>>,
}

impl Pipelines {
    pub fn new(host: Arc<Host>) -> Self {
        Self {
            host,
            map: Mutex::new(BTreeMap::new()),
        }
    }

    /// The handle every pipeline gets (its Redis connections are the agent's too).
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    pub fn get(&self, id: &str) -> Option<Arc<Pipeline>> {
        lock(&self.map).get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Pipeline>> {
        lock(&self.map).values().cloned().collect()
    }

    /// Starts a pipeline (or starts it again), keeping the counters of an earlier run.
    pub fn start(&self, config: PipelineConfig) -> Arc<Pipeline> {
        let mut map = lock(&self.map);
        let stats = map
            .get(&config.id)
            .map(|p| p.stats.clone())
            .unwrap_or_else(|| Arc::new(Stats::default()));
        let p = Pipeline::start(&self.host, config, stats);
        map.insert(p.config.id.clone(), p.clone());
        self.host.beat_now.notify_one();
        p
    }

    /// Forgets a stopped pipeline (update_config removed it).
    pub fn remove(&self, id: &str) {
        lock(&self.map).remove(id);
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked mid-update of plain data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
        }
    }
}

/// What the control plane is told (`pipeline_stats[].status`).
impl From<Status> for PipelineStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Running => Self::Running,
            Status::Paused => Self::Paused,
            Status::Stopped => Self::Stopped,
        }
    }
}

/// Counters of a pipeline; they survive stop/start and config updates of the same id.
#[derive(Debug, Default)]
pub struct Stats {
    pub processed: AtomicU64,
    /// Failed attempts (exit non-zero, killed at the timeout).
    pub errors: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub in_flight: AtomicU32,
    pub restarts: AtomicU32,
    pub last_job_at: Mutex<Option<String>>,
    pub last_error: Mutex<Option<String>>,
    /// The last [`RECENT_KEPT`] jobs this pipeline changed, newest first (the local API's
    /// `/pipelines/{id}/jobs`).
    pub recent: Mutex<std::collections::VecDeque<JobRow>>,
}

/// Jobs the local API lists per pipeline.
pub const RECENT_KEPT: usize = 100;

impl Stats {
    pub fn last_job_at(&self) -> Option<String> {
        lock(&self.last_job_at).clone()
    }
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }
    fn set_error(&self, e: Option<String>) {
        *lock(&self.last_error) = e;
    }

    /// Remembers a job's latest change for the local API.
    pub(crate) fn remember(&self, job: &Job<'_>, c: &Change<'_>) {
        let row = JobRow {
            id: job.read.id.clone(),
            queue: job.queue.to_string(),
            status: c.status.clone(),
            reason: c.reason.map(String::from),
            attempts: c.attempt.map_or(0, |(n, _)| n),
            agent_id: Some(c.agent.to_string()),
            started_at: None,
            finished_at: c
                .status
                .is_final()
                .then(|| shared::time::format_ts(Utc::now())),
            duration_ms: c.duration.and_then(|d| u64::try_from(d.as_millis()).ok()),
            exit_code: c.exit_code,
        };
        let mut recent = lock(&self.recent);
        recent.retain(|r| r.id != row.id);
        recent.push_front(row);
        recent.truncate(RECENT_KEPT);
    }
}

/// A pipeline as the host holds it: its config, counters and controls.
pub struct Pipeline {
    pub config: PipelineConfig,
    pub keys: QueueKeys,
    pub stats: Arc<Stats>,
    pub started_at: DateTime<Utc>,
    paused: watch::Sender<bool>,
    /// Take no new job (stop_pipeline, shutdown).
    stop: CancellationToken,
    /// Kill handlers in hand and give their jobs back (end of the shutdown grace).
    abort: CancellationToken,
    done: watch::Sender<bool>,
    /// The jobs our slots hold right now (job → copies), for the sweeper.
    in_hand: Mutex<HashMap<Vec<u8>, u32>>,
    /// A job of this pipeline succeeded: jobs waiting on it may be released.
    settled: Notify,
}

impl Pipeline {
    /// Starts the pipeline's supervisor; `stats` carries the counters of an earlier run.
    pub fn start(host: &Arc<Host>, config: PipelineConfig, stats: Arc<Stats>) -> Arc<Self> {
        let keys = QueueKeys::new(&config.queue, &host.agent_id, config.on_failure.as_deref());
        let p = Arc::new(Self {
            config,
            keys,
            stats,
            started_at: Utc::now(),
            paused: watch::Sender::new(false),
            stop: host.stop.child_token(),
            abort: host.abort.child_token(),
            done: watch::Sender::new(false),
            in_hand: Mutex::new(HashMap::new()),
            settled: Notify::new(),
        });
        tokio::spawn(supervisor::supervise(host.clone(), p.clone()));
        p
    }

    pub fn status(&self) -> Status {
        if self.stop.is_cancelled() {
            Status::Stopped
        } else if *self.paused.borrow() {
            Status::Paused
        } else {
            Status::Running
        }
    }

    pub fn set_paused(&self, paused: bool) {
        if !paused {
            self.stats.set_error(None);
        }
        self.paused.send_replace(paused);
    }

    /// Takes no new job; jobs in hand finish. `finished` says when they have.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn abort(&self) {
        self.abort.cancel();
    }

    /// Waits until every slot has ended, at most `limit`; true when they have.
    pub async fn finished(&self, limit: Duration) -> bool {
        let mut rx = self.done.subscribe();
        let finished = tokio::time::timeout(limit, rx.wait_for(|d| *d))
            .await
            .is_ok();
        finished
    }

    /// Contract-1 `state` for this pipeline's worker.
    pub fn beat_state(&self, globally_paused: bool) -> WorkerState {
        match self.status() {
            Status::Running if globally_paused => WorkerState::Paused,
            Status::Running if self.stats.in_flight.load(Ordering::Relaxed) > 0 => {
                WorkerState::Busy
            }
            Status::Running => WorkerState::Idle,
            Status::Paused | Status::Stopped => WorkerState::Paused,
        }
    }

    /// Marks a job as in hand until the guard drops.
    fn hold(&self, job: &[u8]) -> Held<'_> {
        *lock(&self.in_hand).entry(job.to_vec()).or_insert(0) += 1;
        Held(self, job.to_vec())
    }

    fn may_take(&self, host: &Host) -> bool {
        !*self.paused.borrow() && !*host.global_paused.borrow()
    }
}

struct Held<'a>(&'a Pipeline, Vec<u8>);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut in_hand = lock(&self.0.in_hand);
        if let Some(n) = in_hand.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                in_hand.remove(&self.1);
            }
        }
    }
}

/// A run ended by a fault of the pipeline itself (its handler cannot start, a slot panicked).
struct Crash(String);

fn count_failure(host: &Host, p: &Pipeline, f: Failed) {
    if let Failed::DeadLettered { attempts } = f {
        tracing::warn!(pipeline = %p.config.id, attempts, "job moved to {}", p.keys.dead);
        p.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        host.metrics.dead_lettered(&p.config.id);
    }
}

/// A slot's own connection, made on first use and again after any error (a connection that
/// failed once is not trusted: Redis may have restarted under it).
#[derive(Default)]
struct SlotConn(Option<Conn>);

impl SlotConn {
    async fn get(&mut self, host: &Host) -> redis::RedisResult<&mut Conn> {
        if self.0.is_none() {
            self.0 = Some(host.slot_connection(SLOT_TIMEOUT).await?);
        }
        // Set just above when it was empty.
        Ok(self.0.as_mut().expect("connection present"))
    }

    fn reset(&mut self) {
        self.0 = None;
    }
}

/// Doubling waits up to [`MAX_BACKOFF`].
#[derive(Default)]
struct Backoff(u32);

impl Backoff {
    /// Sleeps the next wait; false when `stop` fired first.
    async fn wait(&mut self, stop: &CancellationToken) -> bool {
        let d = Duration::from_millis(100 << self.0.min(7)).min(MAX_BACKOFF);
        self.0 += 1;
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = stop.cancelled() => false,
        }
    }
}
