//! Discovery: finds unregistered workers' heartbeat keys and the per-consumer processing lists
//! with an incremental SCAN on a slow cadence, off the collector's path. Its SCAN calls run in
//! the gap right after a collector cycle (see [`Pacer`]): a SCAN holds Redis's one thread for a
//! millisecond or more, and one landing inside a cycle's pipeline delays the whole cycle.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use shared::keys;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::{Discovered, SnapshotRx};
use crate::metrics::Metrics;
use crate::redis_conn::{with_timeout, RedisCallError};
use crate::redis_target::ClusterError;

/// Between passes discovery rests at least this many times as long as its last pass kept Redis
/// busy with SCAN calls, so it never takes more than a tenth of Redis's one thread: with 1M
/// keys a pass is ~200 calls, about a second of Redis's time, and walking the whole keyspace
/// also leaves Redis's caches cold for the collector's next cycle.
const REST_PER_BUSY: u32 = 9;

/// Keys SCAN looks at per call: large enough that 1M keys take ~200 calls, small enough that a
/// call holds Redis for about a millisecond.
const SCAN_COUNT: usize = 5_000;
/// A cap on discovered workers, so a flood of stray keys cannot exhaust memory (a name costs
/// about 100 bytes here; fleets of 100,000 workers are meant to work).
const MAX_DISCOVERED: usize = 200_000;

pub struct Discovery {
    config: Arc<super::CollectorConfig>,
    redis: crate::redis_target::Target,
    /// A connection to each Redis that holds keys (empty: made anew on the next pass).
    conns: Vec<MultiplexedConnection>,
    tx: watch::Sender<Arc<Discovered>>,
    metrics: Arc<Metrics>,
    /// Workers and processing lists by when discovery last saw their key. A consumer's list
    /// vanishes whenever it empties; remembering it keeps the next job visible at once.
    last_seen: HashMap<String, Instant>,
    lists_seen: HashMap<String, Instant>,
    /// The last pass stopped at [`MAX_DISCOVERED`] (said once, when it starts).
    capped: bool,
    /// Told once the first pass has ended (found something or failed): the collector's first
    /// cycle waits for it, so its first snapshot counts the processing lists there are.
    first_pass: Option<oneshot::Sender<()>>,
}

impl Discovery {
    pub fn new(
        config: Arc<super::CollectorConfig>,
        redis: crate::redis_target::Target,
        metrics: Arc<Metrics>,
    ) -> (
        Self,
        watch::Receiver<Arc<Discovered>>,
        oneshot::Receiver<()>,
    ) {
        let (tx, rx) = watch::channel(Arc::new(Discovered::default()));
        let (first_tx, first_rx) = oneshot::channel();
        let discovery = Self {
            config,
            redis,
            conns: Vec::new(),
            tx,
            metrics,
            last_seen: HashMap::new(),
            lists_seen: HashMap::new(),
            capped: false,
            first_pass: Some(first_tx),
        };
        (discovery, rx, first_rx)
    }

    /// Runs until shutdown; `cycles` is the collector's channel, whose every publish marks the
    /// end of a cycle.
    pub async fn run(mut self, shutdown: CancellationToken, cycles: SnapshotRx) {
        let mut pacer = Pacer::new(cycles, self.config.collect_interval / 2);
        loop {
            let started = Instant::now();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                result = self.pass(&mut pacer) => match result {
                    Ok(found) => {
                        self.metrics.discovery_pass_seconds.set(started.elapsed().as_secs_f64());
                        self.publish(found);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "discovery pass failed");
                        self.metrics.redis_error("discovery");
                        self.conns.clear();
                    }
                },
            }
            if let Some(first) = self.first_pass.take() {
                // The collector may have stopped waiting (its bound passed): nothing to tell.
                first.send(()).ok();
                pacer.paced = true;
            }
            let rest = rest_after(self.config.discover_interval, pacer.take_busy());
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(rest) => {}
            }
        }
    }

    /// One pass over every Redis that holds keys (on a Cluster: each primary in turn).
    async fn pass(&mut self, pacer: &mut Pacer) -> Result<Discovered, ClusterError> {
        let timeout = self.config.redis_timeout;
        if self.conns.is_empty() {
            self.conns = self.redis.connect_each(timeout).await?;
        }
        pacer.start().await;
        let (mut beats, mut lists) = (Vec::new(), Vec::new());
        let (mut full_b, mut full_l) = (false, false);
        for conn in &mut self.conns {
            let left = MAX_DISCOVERED - beats.len();
            let (found, full) = scan(conn, pacer, "worker:*:heartbeat", timeout, left).await?;
            beats.extend(found);
            full_b |= full;
            let left = MAX_DISCOVERED - lists.len();
            let (found, full) = scan(conn, pacer, "processing:queue:*", timeout, left).await?;
            lists.extend(found);
            full_l |= full;
        }
        if (full_b || full_l) != self.capped {
            self.capped = full_b || full_l;
            if self.capped {
                tracing::warn!(
                    cap = MAX_DISCOVERED,
                    "discovery stopped at its cap: more heartbeat keys or processing lists than it keeps"
                );
            }
        }
        Ok(collect(&beats, &lists))
    }

    fn publish(&mut self, found: Discovered) {
        let now = Instant::now();
        let forget_after = self.config.forget_after;
        let workers = remember(&mut self.last_seen, found.workers, now, forget_after);
        let lists = found.processing.into_values().flatten().collect();
        let lists = remember(&mut self.lists_seen, lists, now, forget_after);
        let next = Discovered {
            workers,
            processing: by_queue(&lists),
        };
        self.tx.send_if_modified(|current| {
            if **current == next {
                false
            } else {
                *current = Arc::new(next);
                true
            }
        });
    }
}

/// Marks `found` as seen now, forgets what was not seen for `forget_after`, and returns what is
/// remembered, sorted. At most [`MAX_DISCOVERED`] names are kept.
fn remember(
    seen: &mut HashMap<String, Instant>,
    found: Vec<String>,
    now: Instant,
    forget_after: Duration,
) -> Vec<String> {
    for name in found {
        if seen.len() < MAX_DISCOVERED || seen.contains_key(&name) {
            seen.insert(name, now);
        }
    }
    seen.retain(|_, at| now.duration_since(*at) <= forget_after);
    let mut names: Vec<String> = seen.keys().cloned().collect();
    names.sort_unstable();
    names
}

/// A SCAN for one pattern, stopping once `cap` keys are collected (so a flood of keys cannot
/// grow memory during a pass); keys that are not UTF-8 are skipped. Says whether it stopped
/// at the cap.
async fn scan(
    conn: &mut MultiplexedConnection,
    pacer: &mut Pacer,
    pattern: &str,
    timeout: Duration,
    cap: usize,
) -> Result<(Vec<String>, bool), RedisCallError> {
    let mut cursor: u64 = 0;
    let mut out = Vec::new();
    loop {
        pacer.turn().await;
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        let call = Instant::now();
        let (next, keys): (u64, Vec<Vec<u8>>) =
            with_timeout(timeout, cmd.query_async(conn)).await?;
        pacer.busy += call.elapsed();
        out.extend(keys.into_iter().filter_map(|k| String::from_utf8(k).ok()));
        if out.len() >= cap {
            out.truncate(cap);
            return Ok((out, true));
        }
        if next == 0 {
            return Ok((out, false));
        }
        cursor = next;
    }
}

/// Keeps SCAN calls in the gaps between collector cycles: a slice of calls starts when a cycle
/// has just ended and lasts at most `budget` (half the collect interval), then waits for the
/// next cycle's end. Without a collector (its channel closed) calls simply run back to back.
pub struct Pacer {
    cycles: SnapshotRx,
    budget: Duration,
    slice_started: Instant,
    /// False during the first pass: no cycle has run yet (the first waits for this pass), so
    /// there is nothing to keep out of the way of.
    paced: bool,
    /// Time spent in SCAN calls since [`Pacer::take_busy`].
    busy: Duration,
}

impl Pacer {
    pub fn new(cycles: SnapshotRx, budget: Duration) -> Self {
        Self {
            cycles,
            budget,
            slice_started: Instant::now(),
            paced: false,
            busy: Duration::ZERO,
        }
    }

    /// The time spent in SCAN calls since the last call.
    fn take_busy(&mut self) -> Duration {
        std::mem::take(&mut self.busy)
    }

    /// Waits for a cycle to end and starts a slice.
    async fn start(&mut self) {
        if !self.paced {
            return;
        }
        self.cycles.borrow_and_update();
        // An error means the collector is gone: nothing left to keep out of the way of.
        let _ = self.cycles.changed().await;
        self.slice_started = Instant::now();
    }

    /// Before each call: within the slice's budget go on, else wait for the next cycle's end.
    async fn turn(&mut self) {
        if self.paced && self.slice_started.elapsed() >= self.budget {
            self.start().await;
        }
    }
}

/// The rest before the next pass: `interval`, or [`REST_PER_BUSY`] times the time the last
/// pass spent in SCAN calls when that is longer.
fn rest_after(interval: Duration, busy: Duration) -> Duration {
    interval.max(busy * REST_PER_BUSY)
}

/// Sorts raw key names into workers and processing lists.
fn collect(heartbeat_keys: &[String], processing_keys: &[String]) -> Discovered {
    let mut workers: Vec<String> = heartbeat_keys
        .iter()
        .filter_map(|k| keys::worker_of_heartbeat_key(k))
        .map(str::to_string)
        .collect();
    workers.sort_unstable();
    workers.dedup();
    Discovered {
        workers,
        processing: by_queue(processing_keys),
    }
}

/// Groups processing-list keys by their queue, sorted and without repeats.
fn by_queue(processing_keys: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut processing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in processing_keys {
        if let Some(q) = keys::queue_of_processing_key(key) {
            processing
                .entry(q.to_string())
                .or_default()
                .push(key.clone());
        }
    }
    for lists in processing.values_mut() {
        lists.sort_unstable();
        lists.dedup();
    }
    processing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_keys_into_workers_and_lists() {
        let beats = [
            "worker:b:heartbeat",
            "worker:a:heartbeat",
            "worker:a:heartbeat",
            "worker::heartbeat",
        ]
        .map(String::from);
        let lists = [
            "processing:queue:q:c2",
            "processing:queue:q:c1",
            "processing:queue:bad",
        ]
        .map(String::from);
        let d = collect(&beats, &lists);
        assert_eq!(d.workers, ["a", "b"]);
        assert_eq!(d.processing.len(), 1);
        assert_eq!(
            d.processing["q"],
            ["processing:queue:q:c1", "processing:queue:q:c2"]
        );
    }

    #[test]
    fn a_long_pass_buys_a_longer_rest() {
        let five = Duration::from_secs(5);
        assert_eq!(rest_after(five, Duration::from_millis(20)), five);
        assert_eq!(
            rest_after(five, Duration::from_secs(1)),
            Duration::from_secs(9),
            "a second of SCAN calls: nine seconds of rest"
        );
    }
}
