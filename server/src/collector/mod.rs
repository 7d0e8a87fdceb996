//! The collector: one task that owns its Redis connection, reads the whole fleet in one
//! pipelined round trip per cycle and publishes the snapshot through a `watch` channel.
//! Request handlers only ever read that channel.

mod agents;
mod beats;
mod discovery;
mod plan;
mod published;
mod snapshot;
mod wire;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use redis::aio::MultiplexedConnection;
use shared::nodes::format_ts;
use shared::NodesSnapshot;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use agents::{AgentEntry, AgentsPlan, AgentsRx, AgentsSnapshot};
pub use beats::HeartbeatCache;
pub use discovery::Discovery;
pub use plan::{Discovered, Plan, Reading, ReplyError};
pub use published::{gzip, Published};
pub use snapshot::{build_snapshot, fill_snapshot, LastBeats};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::redis_conn::{connect_with, with_timeout, RedisCallError};
use wire::{Replies, WireConn, WireError};

/// The deadline of a cycle's pipeline grows with its size: Redis answers about a microsecond a
/// command, so five is a Redis in trouble (100,000 workers: ~400,000 commands, 2 s), and below
/// that size `REDIS_TIMEOUT` holds.
const PER_COMMAND: std::time::Duration = std::time::Duration::from_micros(5);

/// The receiving end handlers read.
pub type SnapshotRx = watch::Receiver<Arc<Published>>;

#[derive(Debug, thiserror::Error)]
enum CycleError {
    #[error(transparent)]
    Call(#[from] RedisCallError),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("unexpected reply: {0}")]
    Reply(#[from] ReplyError),
}

pub struct Collector {
    config: Arc<Config>,
    client: redis::Client,
    /// The agents' reads (redis-rs).
    conn: Option<MultiplexedConnection>,
    /// The workers' reads: the plan's packed commands, replies parsed in place.
    wire: Option<WireConn>,
    replies: Replies,
    discovered: watch::Receiver<Arc<Discovered>>,
    plan: Plan,
    tx: watch::Sender<Arc<Published>>,
    agents: AgentsPlan,
    agents_tx: watch::Sender<Arc<AgentsSnapshot>>,
    metrics: Arc<Metrics>,
    /// The last snapshot read from Redis, shared with what was published (never copied).
    last_good: Option<Arc<NodesSnapshot>>,
    /// The snapshot published before the current one: the next cycle fills it in place if
    /// nobody holds it any more (a reader still serialising it: a fresh one is built).
    spare: Option<Arc<NodesSnapshot>>,
    last_beats: LastBeats,
    beats: HeartbeatCache,
    started_at: DateTime<Utc>,
}

impl Collector {
    /// A collector and the channel it publishes on; nothing runs until [`Collector::run`].
    pub fn new(
        config: Arc<Config>,
        client: redis::Client,
        discovered: watch::Receiver<Arc<Discovered>>,
        metrics: Arc<Metrics>,
    ) -> (Self, SnapshotRx, AgentsRx) {
        let started_at = Utc::now();
        let plan = Plan::new(&config.workers, &discovered.borrow());
        let first = not_yet_read(&plan, started_at);
        let (tx, rx) = watch::channel(Arc::new(Published::new(first)));
        let (agents_tx, agents_rx) =
            watch::channel(Arc::new(AgentsSnapshot::new(false, started_at, Vec::new())));
        let collector = Self {
            config,
            client,
            conn: None,
            wire: None,
            replies: Replies::default(),
            discovered,
            plan,
            tx,
            agents: AgentsPlan::default(),
            agents_tx,
            metrics,
            last_good: None,
            spare: None,
            last_beats: LastBeats::default(),
            beats: HeartbeatCache::default(),
            started_at,
        };
        (collector, rx, agents_rx)
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.collect_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => self.cycle().await,
            }
        }
        tracing::debug!("collector stopped");
    }

    async fn cycle(&mut self) {
        let start = Instant::now();
        if self.discovered.has_changed().unwrap_or(false) {
            self.plan = Plan::new(&self.config.workers, &self.discovered.borrow_and_update());
            self.beats.clear();
        }
        let now = Utc::now();
        let read = match self.read(now).await {
            Ok(agents) => self
                .plan
                .read(self.replies.iter())
                .map(|reading| (reading, agents))
                .map_err(CycleError::from),
            Err(e) => Err(e),
        };
        let build_start = Instant::now();
        self.metrics
            .phase("read", (build_start - start).as_secs_f64());
        let snapshot = match read {
            Ok((reading, agents)) => {
                if self.last_good.is_none() || self.metrics.redis_up.get() == 0 {
                    tracing::info!(workers = self.plan.workers.len(), "reading Redis");
                }
                self.metrics.redis_up.set(1);
                self.beats.update(&reading.heartbeats);
                let mut snap = self
                    .spare
                    .take()
                    .and_then(|spare| Arc::try_unwrap(spare).ok())
                    .unwrap_or_else(|| NodesSnapshot::empty(now));
                fill_snapshot(&mut snap, &self.plan, &reading, &self.beats, now);
                self.last_beats.apply(&mut snap, now);
                let snap = Arc::new(snap);
                self.last_good = Some(snap.clone());
                self.agents_tx
                    .send_replace(Arc::new(AgentsSnapshot::new(true, now, agents)));
                snap
            }
            Err(e) => {
                if self.metrics.redis_up.get() != 0 || self.last_good.is_none() {
                    tracing::warn!(error = %e, "Redis unreachable; serving stale data");
                }
                self.metrics.redis_up.set(0);
                self.metrics.redis_error("collector");
                self.conn = None;
                self.wire = None;
                // The last agents read, marked stale; ages keep counting.
                let last = self.agents_tx.borrow().entries.clone();
                self.agents_tx
                    .send_replace(Arc::new(AgentsSnapshot::new(false, now, last)));
                Arc::new(self.stale(now))
            }
        };
        let publish_start = Instant::now();
        self.metrics
            .phase("build", (publish_start - build_start).as_secs_f64());
        let alive = snapshot.workers.iter().filter(|w| w.alive).count();
        self.metrics.workers_alive.set(alive as i64);
        self.metrics
            .workers_total
            .set(snapshot.workers.len() as i64);
        let previous = self.tx.send_replace(Arc::new(Published::new(snapshot)));
        self.spare = Some(Arc::clone(&previous.snapshot));
        drop(previous);
        let end = Instant::now();
        self.metrics
            .phase("publish", (end - publish_start).as_secs_f64());
        self.metrics
            .cycle_seconds
            .observe((end - start).as_secs_f64());
    }

    /// Workers and agents in one round trip: the workers' commands go out on the collector's
    /// own connection while the agents' pipeline goes out on the multiplexed one, and both
    /// replies are awaited together. The workers' replies are left in `self.replies`.
    async fn read(&mut self, now: DateTime<Utc>) -> Result<Vec<AgentEntry>, CycleError> {
        let connect_timeout = self.config.redis_timeout;
        let count = self.plan.command_count();
        let timeout = wire::deadline(connect_timeout, PER_COMMAND, count);
        let mut round_trips = 0;
        if self.conn.is_none() || self.wire.is_none() {
            // No per-reply limit on the connection: each call below has its own deadline.
            let info = self.client.get_connection_info();
            let (conn, wire) = tokio::try_join!(
                async {
                    Ok::<_, CycleError>(connect_with(&self.client, connect_timeout, None).await?)
                },
                async {
                    tokio::time::timeout(connect_timeout, WireConn::connect(info))
                        .await
                        .map_err(|_| RedisCallError::Timeout(connect_timeout))?
                        .map_err(CycleError::from)
                },
            )?;
            self.conn = Some(conn);
            self.wire = Some(wire);
            round_trips += 1;
        }
        let (Some(conn), Some(wire)) = (self.conn.as_mut(), self.wire.as_mut()) else {
            return Err(RedisCallError::Timeout(timeout).into());
        };
        let agents_pipe = self.agents.pipeline();
        let workers = async {
            tokio::time::timeout(
                timeout,
                wire.exchange(
                    self.plan.packed(),
                    count,
                    Plan::MAX_REPLY_BYTES,
                    &mut self.replies,
                ),
            )
            .await
            .map_err(|_| RedisCallError::Timeout(timeout))?
            .map_err(CycleError::from)
        };
        let agents = async {
            Ok::<_, CycleError>(
                with_timeout(timeout, agents_pipe.query_async::<Vec<redis::Value>>(conn)).await?,
            )
        };
        let ((), agents) = tokio::try_join!(workers, agents)?;
        round_trips += 1;
        self.metrics.round_trips.set(round_trips);
        let agents = self.agents.read(agents)?;
        self.metrics.agents_total.set(agents.len() as i64);
        self.metrics
            .agents_online
            .set(agents.iter().filter(|a| a.at(now).online).count() as i64);
        Ok(agents)
    }

    /// What to serve while Redis is away: the last good data, marked stale since it was read.
    fn stale(&self, now: DateTime<Utc>) -> NodesSnapshot {
        match &self.last_good {
            Some(good) => NodesSnapshot {
                redis_ok: false,
                generated_at: format_ts(now),
                stale_since: Some(good.generated_at.clone()),
                ..(**good).clone()
            },
            None => not_yet_read(&self.plan, self.started_at),
        }
    }
}

/// Before Redis was ever read: the registered workers, none known alive, stale since start.
fn not_yet_read(plan: &Plan, started_at: DateTime<Utc>) -> NodesSnapshot {
    let mut snap = build_snapshot(plan, &Reading::default(), started_at);
    snap.redis_ok = false;
    snap.stale_since = Some(format_ts(started_at));
    snap
}
