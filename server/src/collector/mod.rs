//! The collector: one task that owns its Redis connection, reads the whole fleet in one
//! pipelined round trip per cycle and publishes the snapshot through a `watch` channel.
//! Request handlers only ever read that channel.

mod agents;
mod beats;
pub mod cluster;
mod discovery;
mod plan;
mod published;
mod snapshot;
mod wire;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use redis::aio::MultiplexedConnection;
use shared::time::format_ts;
use shared::NodesSnapshot;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

pub use agents::{AgentEntry, AgentsPlan, AgentsRx, AgentsSnapshot};
pub use beats::HeartbeatCache;
pub use discovery::Discovery;
pub use plan::{Discovered, Plan, Reading, ReplyError};
pub use published::{gzip, Published};
pub use snapshot::{build_snapshot, fill_beats, fill_counts, fill_snapshot};

use crate::metrics::Metrics;
use crate::redis_conn::{connect_with, with_timeout, RedisCallError};
use cluster::{ClusterReader, ReadError};
use wire::{Replies, WireConn, WireError};

/// The deadline of a cycle's pipeline grows with its size: Redis answers about a microsecond a
/// command, so five is a Redis in trouble (100,000 workers: ~400,000 commands, 2 s), and below
/// that size `REDIS_TIMEOUT` holds.
const PER_COMMAND: std::time::Duration = std::time::Duration::from_micros(5);

/// The longest the first cycle waits for discovery's first pass (a pass over 1M keys takes
/// about a second; a Redis that does not answer ends it sooner, at its timeout).
const FIRST_PASS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The receiving end handlers read.
pub type SnapshotRx = watch::Receiver<Arc<Published>>;

/// The collector's and discovery's slice of the settings.
#[derive(Clone, Debug)]
pub struct CollectorConfig {
    /// How often a cycle reads Redis.
    pub collect_interval: std::time::Duration,
    /// Rest between two discovery passes.
    pub discover_interval: std::time::Duration,
    /// Timeout of every Redis call below the cycle's own deadline.
    pub redis_timeout: std::time::Duration,
    /// How long a discovered worker stays listed after its key is gone.
    pub forget_after: std::time::Duration,
    /// The registered workers.
    pub workers: Vec<shared::registry::WorkerSpec>,
    /// Whom the collector's own connection trusts when `REDIS_URL` is `rediss://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

#[derive(Debug, thiserror::Error)]
enum CycleError {
    #[error(transparent)]
    Call(#[from] RedisCallError),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("unexpected reply: {0}")]
    Reply(#[from] ReplyError),
    #[error(transparent)]
    Cluster(#[from] ReadError),
    #[error(transparent)]
    Slots(#[from] crate::redis_target::ClusterError),
}

pub struct Collector {
    config: Arc<CollectorConfig>,
    redis: crate::redis_target::Target,
    /// The agents' reads (redis-rs).
    conn: Option<MultiplexedConnection>,
    /// The workers' reads: the plan's packed commands, replies parsed in place.
    wire: Option<WireConn>,
    /// On a Redis Cluster, the workers' reads instead: one round trip per primary.
    cluster: Option<ClusterReader>,
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
    beats: HeartbeatCache,
    /// The keys whose TTL this cycle asked for, and the answers (applied once the cycle's
    /// values are in the cache).
    ttls: (Vec<String>, Vec<i64>),
    /// This cycle's snapshot with its workers' heartbeat fields filled, when the read did that
    /// while Redis was still answering the lists' lengths ([`snapshot::fill_beats`]), and the
    /// time it took (part of the build, not of the read).
    half: Option<(NodesSnapshot, std::time::Duration)>,
    started_at: DateTime<Utc>,
}

impl Collector {
    /// A collector and the channel it publishes on; nothing runs until [`Collector::run`].
    pub fn new(
        config: Arc<CollectorConfig>,
        redis: crate::redis_target::Target,
        discovered: watch::Receiver<Arc<Discovered>>,
        metrics: Arc<Metrics>,
    ) -> (Self, SnapshotRx, AgentsRx) {
        let started_at = Utc::now();
        let plan = Plan::new(&config.workers, &discovered.borrow());
        let cluster = match &redis {
            crate::redis_target::Target::Cluster(nodes) => Some(ClusterReader::new(
                nodes.seeds.clone(),
                nodes.template.clone(),
                config.tls.clone(),
                config.redis_timeout,
            )),
            _ => None,
        };
        let first = not_yet_read(&plan, started_at);
        let (tx, rx) = watch::channel(Arc::new(Published::new(first)));
        let (agents_tx, agents_rx) =
            watch::channel(Arc::new(AgentsSnapshot::new(false, started_at, Vec::new())));
        let collector = Self {
            config,
            redis,
            conn: None,
            wire: None,
            cluster,
            replies: Replies::default(),
            discovered,
            plan,
            tx,
            agents: AgentsPlan::default(),
            agents_tx,
            metrics,
            last_good: None,
            spare: None,
            beats: HeartbeatCache::default(),
            ttls: Default::default(),
            half: None,
            started_at,
        };
        (collector, rx, agents_rx)
    }

    /// Cycles until `shutdown`. The first cycle waits (at most [`FIRST_PASS_WAIT`]) for
    /// discovery's first pass, so the first snapshot counts the processing lists there are
    /// instead of saying 0 for lists not scanned yet.
    pub async fn run(mut self, shutdown: CancellationToken, first_pass: oneshot::Receiver<()>) {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::timeout(FIRST_PASS_WAIT, first_pass) => {}
        }
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
            // The heartbeat memory follows the new plan by name (HeartbeatCache::update).
            self.plan = Plan::new(&self.config.workers, &self.discovered.borrow_and_update());
            if let Some(cluster) = self.cluster.as_mut() {
                cluster.replan();
            }
        }
        let now = Utc::now();
        let read = self.read(now).await;
        // The reading borrows the replies' bytes while the snapshot is built: taken out of
        // `self` meanwhile (a move, not a copy) and put back for the next cycle to reuse.
        let replies = std::mem::take(&mut self.replies);
        let cluster = self.cluster.take();
        let read = read.and_then(|agents| {
            let reading = match &cluster {
                Some(c) => self.plan.read(c.replies())?,
                None => self.plan.read(replies.iter())?,
            };
            Ok((reading, agents))
        });
        let build_start = Instant::now();
        // The part of the build done during the read counts as build.
        let early = self.half.as_ref().map_or(Default::default(), |h| h.1);
        self.metrics.phase(
            "read",
            (build_start - start).saturating_sub(early).as_secs_f64(),
        );
        let snapshot = match read {
            Ok((reading, agents)) => self.fresh(&reading, agents, now),
            Err(e) => self.failed(&e, now),
        };
        self.replies = replies;
        self.cluster = cluster;
        let publish_start = Instant::now();
        self.metrics
            .phase("build", (publish_start - build_start + early).as_secs_f64());
        self.publish(snapshot);
        let end = Instant::now();
        self.metrics
            .phase("publish", (end - publish_start).as_secs_f64());
        self.metrics
            .cycle_seconds
            .observe((end - start).as_secs_f64());
    }

    /// The snapshot of what this cycle read, filled into the spare one when nobody holds it.
    fn fresh(
        &mut self,
        reading: &Reading<'_>,
        agents: Vec<AgentEntry>,
        now: DateTime<Utc>,
    ) -> Arc<NodesSnapshot> {
        if self.last_good.is_none() || self.metrics.redis_up.get() == 0 {
            tracing::info!(workers = self.plan.workers.len(), "reading Redis");
        }
        self.metrics.redis_up.set(1);
        let mut snap = match self.half.take() {
            Some((half, _)) => half,
            None => beats_in(
                &mut self.beats,
                std::mem::take(&mut self.ttls),
                self.spare.take(),
                &self.plan,
                &reading.heartbeats,
                now,
            ),
        };
        fill_counts(&mut snap, &self.plan, reading, now);
        let snap = Arc::new(snap);
        self.last_good = Some(snap.clone());
        self.agents_tx
            .send_replace(Arc::new(AgentsSnapshot::new(true, now, agents)));
        snap
    }

    /// Redis could not be read: the last good data, marked stale; fresh connections next time.
    fn failed(&mut self, e: &CycleError, now: DateTime<Utc>) -> Arc<NodesSnapshot> {
        if self.metrics.redis_up.get() != 0 || self.last_good.is_none() {
            tracing::warn!(error = %e, "Redis unreachable; serving stale data");
        }
        self.metrics.redis_up.set(0);
        self.metrics.redis_error("collector");
        self.conn = None;
        self.wire = None;
        self.half = None;
        // The last agents read, marked stale; ages keep counting.
        let last = self.agents_tx.borrow().entries.clone();
        self.agents_tx
            .send_replace(Arc::new(AgentsSnapshot::new(false, now, last)));
        Arc::new(self.stale(now))
    }

    /// Hands `snapshot` to the readers and keeps the one it replaces as the next spare.
    fn publish(&mut self, snapshot: Arc<NodesSnapshot>) {
        let alive = snapshot.workers.iter().filter(|w| w.alive).count();
        self.metrics.workers_alive.set(alive as i64);
        self.metrics
            .workers_total
            .set(snapshot.workers.len() as i64);
        let previous = self.tx.send_replace(Arc::new(Published::new(snapshot)));
        self.spare = Some(Arc::clone(&previous.snapshot));
    }

    /// Workers and agents in one round trip: the workers' commands go out on the collector's
    /// own connection while the agents' pipeline goes out on the multiplexed one, and both
    /// replies are awaited together. The workers' replies are left in `self.replies`.
    async fn read(&mut self, now: DateTime<Utc>) -> Result<Vec<AgentEntry>, CycleError> {
        if self.cluster.is_some() {
            return self.read_cluster(now).await;
        }
        let connect_timeout = self.config.redis_timeout;
        let count = self.plan.command_count();
        let timeout = wire::deadline(connect_timeout, PER_COMMAND, count);
        let mut round_trips = 0;
        if self.conn.is_none() || self.wire.is_none() {
            // No per-reply limit on the connection: each call below has its own deadline.
            // With Sentinel: the primary now, asked again after every failure.
            let client = self.redis.client(connect_timeout).await?;
            let info = client.get_connection_info();
            let (conn, wire) = tokio::try_join!(
                async { Ok::<_, CycleError>(connect_with(&client, connect_timeout, None).await?) },
                async {
                    tokio::time::timeout(
                        connect_timeout,
                        WireConn::connect(info, self.config.tls.as_ref()),
                    )
                    .await
                    .map_err(|_| RedisCallError::Timeout(connect_timeout))?
                    .map_err(CycleError::from)
                },
            )?;
            self.conn = Some(conn);
            self.wire = Some(wire);
            round_trips += 1;
        }
        let (Some(conn), Some(mut wire)) = (self.conn.as_mut(), self.wire.take()) else {
            return Err(RedisCallError::Timeout(timeout).into());
        };
        let agents_pipe = self.agents.pipeline();
        // The TTLs of the few keys whose value stands still (see beats::HeartbeatCache), in
        // the same round trip, on the agents' connection.
        let suspects = self.beats.suspects(now);
        let mut ttl_pipe = redis::pipe();
        for name in &suspects {
            ttl_pipe.cmd("PTTL").arg(shared::keys::heartbeat(name));
        }
        let mut ttl_conn = conn.clone();
        let ttls = async {
            if suspects.is_empty() {
                return Ok(Vec::new());
            }
            Ok::<_, CycleError>(
                with_timeout(timeout, ttl_pipe.query_async::<Vec<i64>>(&mut ttl_conn)).await?,
            )
        };
        let agents = async {
            Ok::<_, CycleError>(
                with_timeout(timeout, agents_pipe.query_async::<Vec<redis::Value>>(conn)).await?,
            )
        };
        let deadline = (tokio::time::Instant::now() + timeout, timeout);
        // The workers' replies: the heartbeats first; they become the snapshot's workers while
        // Redis answers the lists' lengths, then the rest.
        let mut ex = wire.start(
            self.plan.packed(),
            count,
            Plan::MAX_REPLY_BYTES,
            &mut self.replies,
        )?;
        let heartbeats = by(deadline, ex.until(self.plan.heartbeats_end()));
        let ((), agents, ttls) = tokio::try_join!(heartbeats, agents, ttls)?;
        let early = Instant::now();
        let snap = beats_in(
            &mut self.beats,
            (suspects, ttls),
            self.spare.take(),
            &self.plan,
            &self.plan.heartbeats(ex.replies().iter()),
            now,
        );
        self.half = Some((snap, early.elapsed()));
        by(deadline, ex.until(count)).await?;
        drop(ex);
        self.wire = Some(wire);
        round_trips += 1;
        self.metrics.round_trips.set(round_trips);
        self.agents_read(agents, now)
    }

    /// [`read`](Self::read) on a Redis Cluster: the workers' reads one round trip per primary,
    /// all at once, beside the agents' reads on the primary of the control plane's `{ctl}` slot;
    /// the TTLs of the few suspect heartbeats (if any) in a second round trip to their primaries.
    async fn read_cluster(&mut self, now: DateTime<Utc>) -> Result<Vec<AgentEntry>, CycleError> {
        let connect_timeout = self.config.redis_timeout;
        let timeout = wire::deadline(connect_timeout, PER_COMMAND, self.plan.command_count());
        if self.conn.is_none() {
            let ctl = shared::control::keys::AGENTS;
            self.conn = Some(self.redis.connect_for(ctl, connect_timeout).await?);
        }
        let (Some(conn), Some(cluster)) = (self.conn.as_mut(), self.cluster.as_mut()) else {
            return Err(RedisCallError::Timeout(timeout).into());
        };
        let agents_pipe = self.agents.pipeline();
        let workers = async { Ok::<_, CycleError>(cluster.read(&self.plan, timeout).await?) };
        let agents = async {
            Ok::<_, CycleError>(
                with_timeout(timeout, agents_pipe.query_async::<Vec<redis::Value>>(conn)).await?,
            )
        };
        let ((), agents) = tokio::try_join!(workers, agents)?;
        if agents.iter().any(moved) {
            // The `{ctl}` slot has another primary now: asked again next cycle.
            self.conn = None;
        }
        let suspects = self.beats.suspects(now);
        let keys: Vec<String> = suspects
            .iter()
            .map(|n| shared::keys::heartbeat(n))
            .collect();
        let ttls = if keys.is_empty() {
            Vec::new()
        } else {
            cluster.pttl(&keys, timeout).await?
        };
        self.ttls = (suspects, ttls);
        self.metrics.round_trips.set(cluster.round_trips() as i64);
        self.agents_read(agents, now)
    }

    /// The agents' replies decoded, and counted in the metrics.
    fn agents_read(
        &mut self,
        replies: Vec<redis::Value>,
        now: DateTime<Utc>,
    ) -> Result<Vec<AgentEntry>, CycleError> {
        let agents = self.agents.read(replies)?;
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

/// A step of the cycle's exchange, by the cycle's deadline.
async fn by(
    (deadline, timeout): (tokio::time::Instant, std::time::Duration),
    step: impl std::future::Future<Output = Result<(), WireError>>,
) -> Result<(), CycleError> {
    tokio::time::timeout_at(deadline, step)
        .await
        .map_err(|_| RedisCallError::Timeout(timeout))?
        .map_err(CycleError::from)
}

/// This cycle's heartbeats into the cache, with the TTLs asked beside them (`ttls`: the keys and
/// the answers), then into the spare snapshot's workers when nobody holds it any more (else a
/// fresh one).
fn beats_in(
    beats: &mut HeartbeatCache,
    (suspects, ttls): (Vec<String>, Vec<i64>),
    spare: Option<Arc<NodesSnapshot>>,
    plan: &Plan,
    heartbeats: &[Option<&[u8]>],
    now: DateTime<Utc>,
) -> NodesSnapshot {
    beats.update(
        plan.workers.iter().map(|w| w.name.as_str()),
        heartbeats,
        now,
    );
    beats.set_ttls(&suspects, &ttls, now);
    let mut snap = spare
        .and_then(|spare| Arc::try_unwrap(spare).ok())
        .unwrap_or_else(|| NodesSnapshot::empty(now));
    fill_beats(&mut snap, plan, beats, now);
    snap
}

/// A reply that says the key's slot is served by another primary now.
fn moved(v: &redis::Value) -> bool {
    matches!(v, redis::Value::ServerError(e) if e.kind() == Some(redis::ServerErrorKind::Moved))
}

/// Before Redis was ever read: the registered workers, none known alive, stale since start.
fn not_yet_read(plan: &Plan, started_at: DateTime<Utc>) -> NodesSnapshot {
    let mut snap = build_snapshot(plan, &Reading::default(), started_at);
    snap.redis_ok = false;
    snap.stale_since = Some(format_ts(started_at));
    snap
}
