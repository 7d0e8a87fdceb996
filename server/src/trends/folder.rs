//! What a replica holds in memory: the open step of every series (per range), which changed
//! since the last write, and each worker's last hour for the cards' sparklines.

use std::collections::HashSet;

// Looked up once per worker per cycle: foldhash, not SipHash (at 100,000 workers the hashing
// was a tenth of the server's CPU).
use foldhash::HashMap;

use shared::fleet::group_of;
use shared::series::{Spark, SparksReply, SPARK_STEPS};
use shared::NodesSnapshot;

use super::fold::{slot_of, step_of, Baseline, Point, Range, Sample, RESOLUTIONS};
use super::Series;

/// One cycle of a group (or the fleet): its workers' growth, total depth and liveness.
#[derive(Default)]
struct Tally {
    grew: (u64, u64),
    depth: u64,
    alive: u64,
    workers: u64,
}

/// One minute of a worker's sparkline: the minute's number (`t / 60`), done, failed.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Minute {
    pub n: i64,
    pub done: u32,
    pub failed: u32,
}

/// A worker's last hour, a ring of minutes indexed like the `1h` series in Redis.
#[derive(Clone, Debug)]
pub struct Hour(pub [Minute; SPARK_STEPS]);

impl Default for Hour {
    fn default() -> Self {
        Self([Minute::default(); SPARK_STEPS])
    }
}

/// One worker's open steps, last hour and counter baseline.
#[derive(Default)]
struct WorkerSeries {
    open: [Point; 3],
    hour: Hour,
    baseline: Baseline,
    dirty: bool,
}

/// Every series a replica folds: the workers' (looked up by name without allocating, every
/// cycle) and the groups' and the fleet's.
#[derive(Default)]
pub struct Folder {
    workers: HashMap<String, WorkerSeries>,
    /// Groups and the fleet.
    open: HashMap<Series, [Point; 3]>,
    dirty: HashSet<Series>,
}

impl Folder {
    /// Adds one snapshot taken at `t` (seconds).
    pub fn fold(&mut self, snap: &NodesSnapshot, t: i64) {
        let mut groups: HashMap<&str, Tally> = HashMap::default();
        let mut fleet = Tally::default();
        for w in &snap.workers {
            let s = Sample {
                done: w.jobs_done,
                failed: w.jobs_failed,
                queue_depth: w.queue_depth,
                alive: w.alive,
            };
            let series = match self.workers.get_mut(w.name.as_str()) {
                Some(series) => series,
                None => self.workers.entry(w.name.clone()).or_default(),
            };
            let grew = series.baseline.advance(&s);
            advance(&mut series.open, t, |p| p.add_worker(grew, &s));
            remember(&mut series.hour, &series.open[0]);
            series.dirty = true;
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
        if self.workers.len() > snap.workers.len() {
            let here: HashSet<&str> = snap.workers.iter().map(|w| w.name.as_str()).collect();
            self.workers.retain(|name, _| here.contains(name.as_str()));
        }
    }

    fn add(&mut self, series: Series, t: i64, f: impl Fn(&mut Point)) {
        advance(self.open.entry(series.clone()).or_default(), t, f);
        self.dirty.insert(series);
    }

    /// The open steps of `series`.
    pub fn points(&self, series: &Series) -> Option<&[Point; 3]> {
        match series {
            Series::Worker(name) => self.workers.get(name).map(|w| &w.open),
            other => self.open.get(other),
        }
    }

    fn points_mut(&mut self, series: &Series) -> Option<&mut [Point; 3]> {
        match series {
            Series::Worker(name) => self.workers.get_mut(name).map(|w| &mut w.open),
            other => self.open.get_mut(other),
        }
    }

    /// The open point of `series` in `r`, if this replica has folded one.
    pub fn open_point(&self, series: &Series, r: Range) -> Option<Point> {
        let i = RESOLUTIONS.iter().position(|x| *x == r)?;
        self.points(series).map(|p| p[i])
    }

    /// Every series folded here.
    pub fn series(&self) -> Vec<Series> {
        let workers = self.workers.keys().map(|n| Series::Worker(n.clone()));
        workers.chain(self.open.keys().cloned()).collect()
    }

    /// The series changed since the last call (marked unchanged now).
    pub fn take_dirty(&mut self) -> Vec<Series> {
        let mut out: Vec<Series> = self.dirty.drain().collect();
        for (name, w) in &mut self.workers {
            if std::mem::take(&mut w.dirty) {
                out.push(Series::Worker(name.clone()));
            }
        }
        out
    }

    /// Marks every series unchanged (a replica that does not write them).
    pub fn clear_dirty(&mut self) {
        self.dirty.clear();
        for w in self.workers.values_mut() {
            w.dirty = false;
        }
    }

    /// Replaces the open steps of `series` (seeding from Redis); false when it has none.
    pub fn set_points(&mut self, series: &Series, points: [Point; 3]) -> bool {
        match self.points_mut(series) {
            Some(p) => {
                *p = points;
                true
            }
            None => false,
        }
    }

    /// A worker's last hour as Redis holds it (a replica that starts), merged into its own.
    pub fn seed_hour(&mut self, name: String, stored: &[Point]) {
        let hour = &mut self.workers.entry(name).or_default().hour;
        for p in stored {
            remember(hour, p);
        }
    }

    /// The sparklines of `names` for the hour ending with the minute `t` falls in.
    pub fn sparks<'a>(&self, names: impl Iterator<Item = &'a str>, t: i64) -> SparksReply {
        let now = step_of(Range::Hour, t) / 60;
        let workers = names
            .filter_map(|name| {
                let hour = &self.workers.get(name)?.hour;
                let mut spark = Spark {
                    done: vec![0; SPARK_STEPS],
                    failed: vec![0; SPARK_STEPS],
                };
                let mut any = false;
                for (i, n) in (now + 1 - SPARK_STEPS as i64..=now).enumerate() {
                    let m = hour.0[slot_of(Range::Hour, n * 60) as usize];
                    if m.n == n && (m.done, m.failed) != (0, 0) {
                        spark.done[i] = m.done;
                        spark.failed[i] = m.failed;
                        any = true;
                    }
                }
                any.then(|| (name.to_string(), spark))
            })
            .collect();
        SparksReply {
            end: chrono::DateTime::from_timestamp(now * 60, 0)
                .map(shared::time::format_ts)
                .unwrap_or_default(),
            workers,
        }
    }
}

/// Folds `f` into each range's open step at `t`, opening a new step where `t` left the old.
fn advance(points: &mut [Point; 3], t: i64, f: impl Fn(&mut Point)) {
    for (p, r) in points.iter_mut().zip(RESOLUTIONS) {
        let step = step_of(r, t);
        if p.t != step {
            *p = Point {
                t: step,
                ..Point::default()
            };
        }
        f(p);
    }
}

/// Puts a `1h` point into a worker's hour ring; within one minute the larger counts win (a
/// minute seeded from Redis and the same minute folded here since start both undercount).
pub fn remember(hour: &mut Hour, p: &Point) {
    let n = p.t / 60;
    let slot = &mut hour.0[slot_of(Range::Hour, p.t) as usize];
    let (done, failed) = (sat(p.done), sat(p.failed));
    if slot.n == n {
        slot.done = slot.done.max(done);
        slot.failed = slot.failed.max(failed);
    } else {
        *slot = Minute { n, done, failed };
    }
}

fn sat(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
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
        let a = *f.points(&Series::Worker("render-a".into())).unwrap();
        // 1h: 120 and 130 in one minute, 185 in the next: a restart, 1 done
        assert_eq!(
            (a[0].t, a[0].done, a[0].failed, a[0].queue_depth),
            (180, 1, 0, 0)
        );
        // 24h: all three in one quarter hour: 3 + 1 (restart) done, 1 failed, depth 6
        assert_eq!((a[1].done, a[1].failed, a[1].queue_depth), (4, 1, 6));
        let b = *f.points(&Series::Worker("render-b".into())).unwrap();
        // b was down at 130 (its 2 is not a restart), back at 185: 7 - 5 = 2
        assert_eq!((b[1].done, b[1].failed), (2, 1));
        assert_eq!(b[1].alive_fraction(), 2.0 / 3.0);
        let g = f.open[&Series::Group("render".into())];
        assert_eq!((g[1].done, g[1].failed), (6, 2));
        assert_eq!(g[1].queue_depth, 7, "the largest total depth seen");
        assert_eq!(f.open[&Series::Fleet][1].samples, 6);

        // The sparkline: minute 2 (3 done, 1 failed), minute 3 (1 done), the newest last.
        let sparks = f.sparks(["render-a", "render-b", "nobody"].into_iter(), 185);
        assert_eq!(sparks.end, "1970-01-01T00:03:00Z");
        let a = &sparks.workers["render-a"];
        assert_eq!((&a.done[58..], &a.failed[58..]), (&[3, 1][..], &[1, 0][..]));
        assert!(a.done[..58].iter().all(|v| *v == 0));
        assert_eq!(sparks.workers["render-b"].done[59], 2);
        assert!(!sparks.workers.contains_key("nobody"));
        // An hour later the old minutes have left the ring's window.
        assert!(f
            .sparks(["render-a"].into_iter(), 185 + 3600)
            .workers
            .is_empty());

        // A worker that leaves is forgotten.
        f.fold(&snap(&[("render-a", 1, 1, 0, true)]), 190);
        assert!(f.points(&Series::Worker("render-b".into())).is_none());
        assert!(f.sparks(["render-b"].into_iter(), 190).workers.is_empty());
        assert_eq!(
            f.take_dirty().len(),
            1 + 1 + 1,
            "render-a, its group, the fleet"
        );
        assert!(f.take_dirty().is_empty());
    }

    #[test]
    fn a_seeded_minute_and_the_folded_one_keep_the_larger_counts() {
        let mut hour = Hour::default();
        let p = |done, failed| Point {
            t: 600,
            done,
            failed,
            ..Point::default()
        };
        remember(&mut hour, &p(7, 1));
        remember(&mut hour, &p(2, 3));
        assert_eq!(
            hour.0[10],
            Minute {
                n: 10,
                done: 7,
                failed: 3
            }
        );
        remember(
            &mut hour,
            &Point {
                t: 600 + 3600,
                ..p(1, 0)
            },
        );
        assert_eq!(
            (hour.0[10].n, hour.0[10].done),
            (70, 1),
            "an hour later: replaced"
        );
    }
}
