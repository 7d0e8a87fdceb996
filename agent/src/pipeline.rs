//! One pipeline at work: `concurrency` slots, each on its own Redis connection, taking jobs
//! from the reliable queue, running the handler and settling each job; a supervisor around
//! them that recovers what a previous run left and restarts a crashed run up to
//! `max_restarts` times before it pauses the pipeline and says why.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use redis::aio::MultiplexedConnection;
use serde::Serialize;
use shared::nodes::format_ts;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::agent::{lock, Agent};
use crate::config::PipelineConfig;
use crate::handler::{self, Outcome};
use crate::queue::{self, Failed, QueueKeys};

/// How long one BLMOVE waits before the slot looks at pause and stop again.
const TAKE_WAIT: Duration = Duration::from_secs(1);
/// Redis calls of a slot give up after this (above TAKE_WAIT: BLMOVE blocks that long).
const SLOT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

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
}

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
}

/// A pipeline as the agent holds it: its config, counters and controls.
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
}

impl Pipeline {
    /// Starts the pipeline's supervisor; `stats` carries the counters of an earlier run.
    pub fn start(agent: &Arc<Agent>, config: PipelineConfig, stats: Arc<Stats>) -> Arc<Self> {
        let keys = QueueKeys::new(&config.queue, &agent.id, config.on_failure.as_deref());
        let p = Arc::new(Self {
            config,
            keys,
            stats,
            started_at: Utc::now(),
            paused: watch::Sender::new(false),
            stop: agent.stop.child_token(),
            abort: agent.abort.child_token(),
            done: watch::Sender::new(false),
            in_hand: Mutex::new(HashMap::new()),
        });
        tokio::spawn(supervise(agent.clone(), p.clone()));
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
    pub fn beat_state(&self, globally_paused: bool) -> &'static str {
        match self.status() {
            Status::Running if globally_paused => "paused",
            Status::Running if self.stats.in_flight.load(Ordering::Relaxed) > 0 => "busy",
            Status::Running => "idle",
            Status::Paused | Status::Stopped => "paused",
        }
    }

    /// Marks a job as in hand until the guard drops.
    fn hold(&self, job: &[u8]) -> Held<'_> {
        *lock(&self.in_hand).entry(job.to_vec()).or_insert(0) += 1;
        Held(self, job.to_vec())
    }

    fn may_take(&self, agent: &Agent) -> bool {
        !*self.paused.borrow() && !*agent.global_paused.borrow()
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

async fn supervise(agent: Arc<Agent>, p: Arc<Pipeline>) {
    recover(&agent, &p).await;
    tokio::spawn(sweep(agent.clone(), p.clone()));
    let mut restarts = 0u32;
    while !p.stop.is_cancelled() {
        let run = p.stop.child_token();
        let mut slots = tokio::task::JoinSet::new();
        for n in 0..p.config.concurrency {
            let (agent, p, run) = (agent.clone(), p.clone(), run.clone());
            slots.spawn(async move {
                let r = slot(&agent, &p, n, &run).await;
                run.cancel(); // one crashed slot ends the run
                r
            });
        }
        let mut crash = None;
        while let Some(r) = slots.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(Crash(m))) => crash = crash.or(Some(m)),
                Err(e) => crash = crash.or(Some(format!("a slot panicked: {e}"))),
            }
        }
        let Some(why) = crash else { break };
        restarts += 1;
        p.stats.restarts.fetch_add(1, Ordering::Relaxed);
        agent.metrics.pipeline_restart(&p.config.id);
        if restarts > p.config.max_restarts {
            let msg = format!(
                "paused after {} restarts (max_restarts {}): {why}",
                restarts - 1,
                p.config.max_restarts
            );
            tracing::error!(pipeline = %p.config.id, "{msg}");
            p.paused.send_replace(true);
            p.stats.set_error(Some(msg));
            agent.beat_now.notify_one();
            restarts = 0;
            // Waits for resume_pipeline (or stop) before trying again.
            let mut rx = p.paused.subscribe();
            tokio::select! {
                _ = rx.wait_for(|paused| !paused) => {}
                _ = p.stop.cancelled() => {}
            }
        } else {
            tracing::warn!(pipeline = %p.config.id, restarts, "pipeline crashed, restarting: {why}");
            p.stats.set_error(Some(why));
            let backoff = Duration::from_millis(500 * u64::from(restarts)).min(MAX_BACKOFF);
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = p.stop.cancelled() => {}
            }
        }
    }
    p.done.send_replace(true);
    agent.beat_now.notify_one();
}

/// Jobs left in our processing list by a run that died (killed, crashed) count as one failed
/// attempt each: they go back to the queue, or to the dead letter once they have used up
/// `max_retries` — so a job that kills its worker cannot loop for ever.
async fn recover(agent: &Agent, p: &Pipeline) {
    let mut backoff = Backoff::default();
    loop {
        let r = async {
            let mut c = agent.slot_connection(SLOT_TIMEOUT).await?;
            let jobs = queue::leftovers(&mut c, &p.keys).await?;
            let mut n = 0;
            for job in &jobs {
                let outcome = queue::fail(&mut c, &p.keys, job, p.config.max_retries).await?;
                count_failure(agent, p, outcome);
                n += 1;
            }
            Ok::<_, redis::RedisError>(n)
        }
        .await;
        match r {
            Ok(0) => return,
            Ok(n) => {
                tracing::warn!(pipeline = %p.config.id, jobs = n, "recovered jobs a previous run left in {}", p.keys.processing);
                return;
            }
            Err(e) => {
                tracing::warn!(pipeline = %p.config.id, "cannot recover the processing list yet: {e}");
                if !backoff.wait(&p.stop).await {
                    return;
                }
            }
        }
    }
}

/// Gives back jobs stranded in our processing list: a BLMOVE whose reply was lost (Redis
/// paused or restarted mid-call) moved a job no slot knows of. A job in the list but in no
/// slot's hand on two sweeps in a row is stranded — no reply takes that long — and goes back
/// to the front of the queue.
async fn sweep(agent: Arc<Agent>, p: Arc<Pipeline>) {
    let mut suspects: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut conn = SlotConn::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(agent.config.sweep_interval()) => {}
            _ = p.stop.cancelled() => return,
        }
        let listed = match conn.get(&agent).await {
            Ok(c) => queue::leftovers(c, &p.keys).await,
            Err(e) => Err(e),
        };
        let Ok(listed) = listed else {
            conn.reset();
            continue;
        };
        let mut counts: HashMap<Vec<u8>, u32> = HashMap::new();
        for job in listed {
            *counts.entry(job).or_insert(0) += 1;
        }
        let stranded: HashMap<Vec<u8>, u32> = {
            let in_hand = lock(&p.in_hand);
            counts
                .into_iter()
                .filter_map(|(job, n)| {
                    let free = n.saturating_sub(in_hand.get(&job).copied().unwrap_or(0));
                    (free > 0).then_some((job, free))
                })
                .collect()
        };
        let mut next = HashMap::new();
        for (job, n) in stranded {
            let before = suspects.get(&job).copied().unwrap_or(0);
            let mut given = 0;
            for _ in 0..before.min(n) {
                let Ok(c) = conn.get(&agent).await else { break };
                match queue::give_back(c, &p.keys, &job).await {
                    Ok(true) => given += 1,
                    Ok(false) => {}
                    Err(_) => {
                        conn.reset();
                        break;
                    }
                }
            }
            if given > 0 {
                tracing::warn!(pipeline = %p.config.id, jobs = given, "gave back stranded jobs (a lost BLMOVE reply)");
            }
            if n > given {
                next.insert(job, n - given);
            }
        }
        suspects = next;
    }
}

async fn slot(agent: &Agent, p: &Pipeline, n: u32, run: &CancellationToken) -> Result<(), Crash> {
    let mut conn = SlotConn::default();
    let mut backoff = Backoff::default();
    let mut paused = p.paused.subscribe();
    let mut global = agent.global_paused.subscribe();
    while !run.is_cancelled() {
        if !p.may_take(agent) {
            tokio::select! {
                _ = paused.changed() => {}
                _ = global.changed() => {}
                _ = run.cancelled() => {}
            }
            continue;
        }
        let permit = tokio::select! {
            p = agent.permits.acquire() => match p { Ok(p) => p, Err(_) => return Ok(()) },
            _ = run.cancelled() => return Ok(()),
        };
        let taken = match conn.get(agent).await {
            Ok(c) => queue::take(c, &p.keys, TAKE_WAIT).await,
            Err(e) => Err(e),
        };
        let job = match taken {
            Ok(Some(job)) => job,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(pipeline = %p.config.id, slot = n, "take: {e}");
                conn.reset();
                drop(permit);
                if !backoff.wait(run).await {
                    return Ok(());
                }
                continue;
            }
        };
        backoff = Backoff::default();
        let _held = p.hold(&job);
        // Paused or stopped while BLMOVE waited: the job was never started, give it back.
        if !p.may_take(agent) || run.is_cancelled() {
            settle(agent, p, &mut conn, &job, Step::GiveBack).await;
            continue;
        }
        let outcome = work(agent, p, &job).await;
        drop(permit);
        match outcome {
            Outcome::Succeeded => {
                settle(agent, p, &mut conn, &job, Step::Ack).await;
                p.stats.processed.fetch_add(1, Ordering::Relaxed);
                agent.metrics.processed(&p.config.id);
                *lock(&p.stats.last_job_at) = Some(format_ts(Utc::now()));
            }
            Outcome::Failed(_) | Outcome::TimedOut => {
                if let Outcome::Failed(m) = &outcome {
                    tracing::info!(pipeline = %p.config.id, "job failed: {m}");
                } else {
                    tracing::warn!(pipeline = %p.config.id, timeout = ?p.config.timeout, "job timed out; handler group killed");
                }
                p.stats.errors.fetch_add(1, Ordering::Relaxed);
                agent.metrics.failed(&p.config.id);
                if let Some(f) = settle(agent, p, &mut conn, &job, Step::Fail).await {
                    count_failure(agent, p, f);
                }
            }
            Outcome::Aborted => {
                settle(agent, p, &mut conn, &job, Step::GiveBack).await;
            }
            Outcome::NotStarted(why) => {
                settle(agent, p, &mut conn, &job, Step::GiveBack).await;
                return Err(Crash(why));
            }
        }
        agent.beat_now.notify_one();
    }
    Ok(())
}

/// A slot's own connection, made on first use and again after any error (a connection that
/// failed once is not trusted: Redis may have restarted under it).
#[derive(Default)]
struct SlotConn(Option<MultiplexedConnection>);

impl SlotConn {
    async fn get(&mut self, agent: &Agent) -> redis::RedisResult<&mut MultiplexedConnection> {
        if self.0.is_none() {
            self.0 = Some(agent.slot_connection(SLOT_TIMEOUT).await?);
        }
        // Set just above when it was empty.
        Ok(self.0.as_mut().expect("connection present"))
    }

    fn reset(&mut self) {
        self.0 = None;
    }
}

#[derive(Clone, Copy)]
enum Step {
    Ack,
    Fail,
    GiveBack,
}

/// Runs a step that must happen for a job we hold until Redis takes it. Only when the
/// shutdown grace is over does it give up: the job then stays in our processing list and the
/// next start recovers it — never lost. Returns what became of a failed job.
async fn settle(
    agent: &Agent,
    p: &Pipeline,
    conn: &mut SlotConn,
    job: &[u8],
    step: Step,
) -> Option<Failed> {
    let mut backoff = Backoff::default();
    loop {
        let r = match conn.get(agent).await {
            Err(e) => Err(e),
            Ok(c) => match step {
                Step::Ack => queue::ack(c, &p.keys, job).await.map(|()| None),
                Step::GiveBack => queue::give_back(c, &p.keys, job).await.map(|_| None),
                Step::Fail => queue::fail(c, &p.keys, job, p.config.max_retries)
                    .await
                    .map(Some),
            },
        };
        match r {
            Ok(v) => return v,
            Err(e) => {
                tracing::warn!(pipeline = %p.config.id, "settling a job failed, will retry: {e}");
                conn.reset();
                if !backoff.wait(&agent.abort).await {
                    return None;
                }
            }
        }
    }
}

fn count_failure(agent: &Agent, p: &Pipeline, f: Failed) {
    if let Failed::DeadLettered { attempts } = f {
        tracing::warn!(pipeline = %p.config.id, attempts, "job moved to {}", p.keys.dead);
        p.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        agent.metrics.dead_lettered(&p.config.id);
    }
}

async fn work(agent: &Agent, p: &Pipeline, job: &[u8]) -> Outcome {
    p.stats.in_flight.fetch_add(1, Ordering::Relaxed);
    agent.beat_now.notify_one();
    let started = Instant::now();
    let env = [
        ("AGENT_ID", agent.id.clone()),
        ("PIPELINE_ID", p.config.id.clone()),
        ("QUEUE", p.config.queue.clone()),
    ];
    let outcome = handler::run(
        handler::Job {
            argv: &p.config.handler,
            input: job,
            timeout: p.config.timeout,
            env: &env,
        },
        &p.abort,
    )
    .await;
    agent
        .metrics
        .duration(&p.config.id, started.elapsed().as_secs_f64());
    p.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    outcome
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
