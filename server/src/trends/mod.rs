//! Trends (SPEC §11): every worker's, every group's and the fleet's done, failed, queue depth
//! and liveness over time, folded from the collector's snapshots ([`fold`]) and kept in Redis
//! so replicas agree and a restart keeps them.
//!
//! Every replica folds each snapshot into the current step of each series (cheap: a pass over
//! the workers), so each knows every counter's baseline; one replica — the holder of
//! `agent-office:{trends}:lease` — writes the steps to Redis every [`FLUSH_EVERY`] and when a
//! step ends. A replica that takes the lease over starts from what Redis holds for the current
//! steps (so a handover loses at most the last [`FLUSH_EVERY`] of counts, never doubles them).
//! Each series is a hash per range: field = the step's slot in a ring, value = the point.

pub mod fold;
mod http;

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use std::time::Duration;

use chrono::Utc;
use shared::fleet::group_of;
use shared::NodesSnapshot;
use tokio_util::sync::CancellationToken;

use crate::collector::SnapshotRx;
use crate::control::Store;
use crate::redis_conn::RedisCallError;
use fold::{Counters, Point, Sample, RESOLUTIONS};

pub use http::router;

/// How often the holder writes the open steps.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);
/// How often the lease is taken or renewed, and how long it lasts.
const LEASE_EVERY: Duration = Duration::from_secs(2);
const LEASE_MS: u64 = 6_000;
const LEASE: &str = "agent-office:{trends}:lease";

/// What the series handlers share.
#[derive(Clone)]
pub struct Trends {
    pub store: Store,
}

/// A series: one worker's, one group's, or the fleet's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Series {
    Worker(String),
    Group(String),
    Fleet,
}

impl Series {
    /// The hash of this series for resolution `r` (`agent-office:{trends}:1h:w:image-render`).
    pub fn key(&self, range: &str) -> String {
        match self {
            Self::Worker(n) => format!("agent-office:{{trends}}:{range}:w:{n}"),
            Self::Group(g) => format!("agent-office:{{trends}}:{range}:g:{g}"),
            Self::Fleet => format!("agent-office:{{trends}}:{range}:fleet"),
        }
    }
}

/// One cycle of a group (or the fleet): its workers' growth, total depth and liveness.
#[derive(Default)]
struct Tally {
    grew: (u64, u64),
    depth: u64,
    alive: u64,
    workers: u64,
}

/// The open step of every series, per resolution, and which changed since the last write.
#[derive(Default)]
struct Folder {
    counters: Counters,
    open: HashMap<Series, [Point; 3]>,
    dirty: HashSet<Series>,
}

impl Folder {
    /// Adds one snapshot taken at `t` (seconds).
    fn fold(&mut self, snap: &NodesSnapshot, t: i64) {
        let mut groups: HashMap<&str, Tally> = HashMap::new();
        let mut fleet = Tally::default();
        for w in &snap.workers {
            let s = Sample {
                done: w.jobs_done,
                failed: w.jobs_failed,
                queue_depth: w.queue_depth,
                alive: w.alive,
            };
            let grew = self.counters.advance(&w.name, &s);
            self.add(Series::Worker(w.name.clone()), t, |p| {
                p.add_worker(grew, &s)
            });
            for acc in [groups.entry(group_of(&w.name)).or_default(), &mut fleet] {
                acc.grew.0 += grew.0;
                acc.grew.1 += grew.1;
                acc.depth += s.queue_depth;
                acc.alive += u64::from(s.alive);
                acc.workers += 1;
            }
        }
        for (g, a) in groups {
            self.add(Series::Group(g.to_string()), t, |p| {
                p.add_group(a.grew, a.depth, a.alive, a.workers)
            });
        }
        self.add(Series::Fleet, t, |p| {
            p.add_group(fleet.grew, fleet.depth, fleet.alive, fleet.workers)
        });
        // Workers that left the fleet are forgotten (their series in Redis expire by themselves).
        if self.counters.len() > snap.workers.len() {
            let here: HashSet<&str> = snap.workers.iter().map(|w| w.name.as_str()).collect();
            self.counters.retain(|name| here.contains(name));
            self.open
                .retain(|s, _| !matches!(s, Series::Worker(n) if !here.contains(n.as_str())));
        }
    }

    fn add(&mut self, series: Series, t: i64, f: impl Fn(&mut Point)) {
        let points = self.open.entry(series.clone()).or_default();
        for (p, r) in points.iter_mut().zip(RESOLUTIONS) {
            let step = r.step_of(t);
            if p.t != step {
                *p = Point {
                    t: step,
                    ..Point::default()
                };
            }
            f(p);
        }
        self.dirty.insert(series);
    }
}

/// The KEYS: the lease. ARGV: me, ms. Takes the lease when free, renews it when ours.
static TAKE_LEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"#,
    )
});

async fn lease(store: &Store, me: &str) -> Result<bool, RedisCallError> {
    let me = me.to_string();
    let got: u32 = store
        .run(|mut c| async move {
            TAKE_LEASE
                .key(LEASE)
                .arg(me)
                .arg(LEASE_MS)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(got == 1)
}

/// Writes every changed open step (one pipeline), each key living as long as its range.
async fn flush(store: &Store, folder: &mut Folder) -> Result<(), RedisCallError> {
    if folder.dirty.is_empty() {
        return Ok(());
    }
    let mut p = redis::pipe();
    for s in folder.dirty.drain() {
        let Some(points) = folder.open.get(&s) else {
            continue;
        };
        for (pt, r) in points.iter().zip(RESOLUTIONS) {
            let key = s.key(r.range);
            p.cmd("HSET")
                .arg(&key)
                .arg(r.slot_of(pt.t))
                .arg(pt.encode(r.step_s))
                .ignore()
                .cmd("EXPIRE")
                .arg(&key)
                .arg(r.step_s * r.slots)
                .ignore();
        }
    }
    store
        .run(|mut c| async move { p.query_async::<()>(&mut c).await })
        .await
}

/// On taking the lease over: the current steps as Redis holds them replace ours (what the
/// previous holder wrote is kept, and added to from here).
async fn seed(store: &Store, folder: &mut Folder, t: i64) -> Result<(), RedisCallError> {
    let series: Vec<Series> = folder.open.keys().cloned().collect();
    let mut p = redis::pipe();
    for s in &series {
        for r in RESOLUTIONS {
            p.cmd("HGET")
                .arg(s.key(r.range))
                .arg(r.slot_of(r.step_of(t)));
        }
    }
    let stored: Vec<Option<String>> = store
        .run(|mut c| async move { p.query_async(&mut c).await })
        .await?;
    for (i, s) in series.iter().enumerate() {
        let Some(points) = folder.open.get_mut(s) else {
            continue;
        };
        for (j, r) in RESOLUTIONS.into_iter().enumerate() {
            let step = r.step_of(t);
            points[j] = stored
                .get(i * RESOLUTIONS.len() + j)
                .and_then(|v| v.as_deref())
                .and_then(|v| Point::decode(v, r.step_s))
                .filter(|p| p.t == step)
                .unwrap_or(Point {
                    t: step,
                    ..Point::default()
                });
        }
    }
    folder.dirty.clear();
    Ok(())
}

/// Folds every snapshot until `stop`; writes while holding the lease.
pub async fn run(store: Store, mut nodes: SnapshotRx, stop: CancellationToken) {
    let me = format!("{:x}", rand::random::<u64>());
    let mut folder = Folder::default();
    let mut holder = false;
    let mut leased_at: Option<tokio::time::Instant> = None;
    let mut flushed_at = tokio::time::Instant::now();
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
        folder.fold(&snap, t);
        if leased_at.is_none_or(|at| at.elapsed() >= LEASE_EVERY) {
            let was = holder;
            holder = lease(&store, &me).await.unwrap_or(false);
            leased_at = Some(tokio::time::Instant::now());
            if holder && !was {
                tracing::info!("trends: this replica writes the series now");
                if let Err(e) = seed(&store, &mut folder, t).await {
                    tracing::warn!("trends: cannot read the open steps: {e}");
                    holder = false;
                    continue;
                }
            }
        }
        if holder && flushed_at.elapsed() >= FLUSH_EVERY {
            match flush(&store, &mut folder).await {
                Ok(()) => flushed_at = tokio::time::Instant::now(),
                Err(e) => tracing::warn!("trends: cannot write the series: {e}"),
            }
        } else if !holder {
            folder.dirty.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::WorkerView;

    fn snap(workers: &[(&str, u64, u64, u64, bool)]) -> NodesSnapshot {
        let mut s = NodesSnapshot::empty(Utc::now());
        s.redis_ok = true;
        s.workers = workers
            .iter()
            .map(|(name, done, failed, q, alive)| {
                let mut w = WorkerView::down(*name, shared::WorkerKind::Render);
                w.jobs_done = *done;
                w.jobs_failed = *failed;
                w.queue_depth = *q;
                w.alive = *alive;
                w
            })
            .collect();
        s
    }

    #[test]
    fn a_worker_its_group_and_the_fleet_fold_into_steps() {
        let mut f = Folder::default();
        f.fold(
            &snap(&[("render-a", 10, 0, 2, true), ("render-b", 5, 1, 4, true)]),
            120,
        );
        f.fold(
            &snap(&[("render-a", 13, 1, 6, true), ("render-b", 2, 1, 1, false)]),
            130,
        );
        f.fold(
            &snap(&[("render-a", 1, 1, 0, true), ("render-b", 7, 2, 1, true)]),
            185,
        );
        let a = f.open[&Series::Worker("render-a".into())];
        // 1h: 120 and 130 in one minute, 185 in the next: a restart, 1 done
        assert_eq!(
            (a[0].t, a[0].done, a[0].failed, a[0].queue_depth),
            (180, 1, 0, 0)
        );
        // 24h: all three in one quarter hour: 3 + 1 (restart) done, 1 failed, depth 6
        assert_eq!((a[1].done, a[1].failed, a[1].queue_depth), (4, 1, 6));
        let b = f.open[&Series::Worker("render-b".into())];
        // b was down at 130 (its 2 is not a restart), back at 185: 7 - 5 = 2
        assert_eq!((b[1].done, b[1].failed), (2, 1));
        assert_eq!(b[1].alive_fraction(), 2.0 / 3.0);
        let g = f.open[&Series::Group("render".into())];
        assert_eq!((g[1].done, g[1].failed), (6, 2));
        assert_eq!(g[1].queue_depth, 7, "the largest total depth seen");
        assert_eq!(f.open[&Series::Fleet][1].samples, 6);
    }
}
