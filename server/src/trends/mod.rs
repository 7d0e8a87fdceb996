//! Trends (SPEC §11): every worker's, every group's and the fleet's done, failed, queue depth
//! and liveness over time, folded from the collector's snapshots ([`fold`]) and kept in Redis
//! so replicas agree and a restart keeps them.
//!
//! Every replica folds each snapshot into the current step of each series (cheap: a pass over
//! the workers), so each knows every counter's baseline; one replica — the holder of
//! `agent-office:{trends}:lease` — writes the steps to Redis every [`FLUSH_EVERY`] and when a
//! step ends. A replica that takes the lease over starts from what Redis holds for the current
//! steps (so a handover loses at most the last [`FLUSH_EVERY`] of counts, never doubles them).
//! Each series is a ring per range in one Redis string ([`store`]). Every replica also keeps
//! each worker's last hour in memory ([`folder`]) for the cards' sparklines, seeded from Redis
//! at start, and answers `/api/series` with Redis's points and its own open step.

pub mod fold;
pub mod folder;
mod http;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use shared::series::SparksReply;
use tokio_util::sync::CancellationToken;

use crate::collector::SnapshotRx;
use crate::control::Store;
use fold::{step_of, Range};
use folder::Folder;

pub use http::router;

/// How often the holder writes the open steps.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);
/// How often the lease is taken or renewed (it lasts 6 s).
const LEASE_EVERY: Duration = Duration::from_secs(2);

/// What the series handlers and the pages share.
#[derive(Clone)]
pub struct Trends {
    pub store: Store,
    pub nodes: SnapshotRx,
    folder: Arc<Mutex<Folder>>,
}

/// A series: one worker's, one group's, or the fleet's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Series {
    Worker(String),
    Group(String),
    Fleet,
}

impl Trends {
    pub fn new(store: Store, nodes: SnapshotRx) -> Self {
        Self {
            store,
            nodes,
            folder: Arc::default(),
        }
    }

    /// The folder (a poisoned lock still holds sound data: every update is a plain store).
    fn folder(&self) -> MutexGuard<'_, Folder> {
        self.folder.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sparklines of the workers on one page of cards (`query` as `/nodes` takes it).
    pub fn sparks(&self, query: &shared::fleet::NodesQuery) -> SparksReply {
        let snap = self.nodes.borrow().snapshot.clone();
        let page = query.apply(&snap);
        self.folder().sparks(
            page.workers.iter().map(|w| w.name.as_str()),
            Utc::now().timestamp(),
        )
    }
}

/// Folds every snapshot until `stop`; writes while holding the lease.
pub async fn run(trends: Trends, stop: CancellationToken) {
    let Trends {
        store,
        mut nodes,
        folder,
    } = trends;
    let lock = || folder.lock().unwrap_or_else(|e| e.into_inner());
    let me = format!("{:x}", rand::random::<u64>());
    let mut holder = false;
    let mut hours_read = false;
    let mut written = HashMap::new();
    let mut leased_at: Option<tokio::time::Instant> = None;
    let mut flushed_at = tokio::time::Instant::now();
    let mut last_t: Option<i64> = None;
    loop {
        tokio::select! {
            changed = nodes.changed() => if changed.is_err() { return },
            _ = stop.cancelled() => return,
        }
        let snap = nodes.borrow_and_update().snapshot.clone();
        if !snap.redis_ok {
            continue;
        }
        let t = Utc::now().timestamp();
        if !hours_read {
            // The sparklines start from what Redis holds, not from this replica's start.
            let names: Vec<String> = snap.workers.iter().map(|w| w.name.clone()).collect();
            match store::read_hours(&store, &names, t).await {
                Ok(hours) => {
                    let mut f = lock();
                    for (name, points) in hours {
                        f.seed_hour(name, &points);
                    }
                    hours_read = true;
                }
                Err(e) => tracing::warn!("trends: cannot read the last hour: {e}"),
            }
        }
        // A step that ends is written with its last counts before the next one opens.
        if holder && last_t.is_some_and(|l| step_of(Range::Hour, l) != step_of(Range::Hour, t)) {
            write(&store, &folder, &mut written).await;
        }
        lock().fold(&snap, t);
        last_t = Some(t);
        if leased_at.is_none_or(|at| at.elapsed() >= LEASE_EVERY) {
            let was = holder;
            holder = store::lease(&store, &me).await.unwrap_or(false);
            leased_at = Some(tokio::time::Instant::now());
            if holder && !was {
                tracing::info!("trends: this replica writes the series now");
                written.clear();
                let series: Vec<Series> = lock().series();
                match store::read_open(&store, &series, t).await {
                    Ok(stored) => store::seed(&mut lock(), &series, &stored, t),
                    Err(e) => {
                        tracing::warn!("trends: cannot read the open steps: {e}");
                        holder = false;
                        continue;
                    }
                }
            }
        }
        if holder && flushed_at.elapsed() >= FLUSH_EVERY {
            // Tried again at the next period, not at every cycle, when Redis did not take it.
            write(&store, &folder, &mut written).await;
            flushed_at = tokio::time::Instant::now();
        } else if !holder {
            lock().clear_dirty();
        }
    }
}

/// Writes the changed open steps, a call per [`store::chunks`] chunk, each built under the
/// folder's lock and sent after it (a flush never holds every write in memory at once); false
/// when Redis did not take some (those series are written whole again next time, with their
/// padding and TTL; every fold marks them changed again).
async fn write(
    store: &Store,
    folder: &Mutex<Folder>,
    written: &mut HashMap<Series, [i64; 3]>,
) -> bool {
    let lock = || folder.lock().unwrap_or_else(|e| e.into_inner());
    let dirty = lock().take_dirty();
    let mut all = true;
    for chunk in store::chunks(&dirty) {
        let (series, inv) = store::write_of(&lock(), chunk, written);
        if let Err(e) = store::send(store, inv).await {
            for s in &series {
                written.remove(s);
            }
            if all {
                tracing::warn!("trends: cannot write the series: {e}");
            }
            all = false;
        }
    }
    all
}
