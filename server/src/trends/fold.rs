//! Folding collector snapshots into per-step points (SPEC §11's trends), pure.
//!
//! Each cycle gives every worker's `jobs_done`, `jobs_failed`, queue depth and liveness. A
//! step's `done`/`failed` are the counters' growth within it — a counter that goes down is a
//! restart, so its new value is the growth, never a negative count; a worker that is not alive
//! adds nothing and keeps its last counters — `queue_depth` is the largest depth seen and
//! `alive` the fraction of the step's samples in which the worker was alive. A group's and the
//! fleet's points add their workers' growth, take the largest total queue depth seen, and the
//! fraction of worker-samples alive.

use std::collections::HashMap;

/// A series' range, the step of its points and how many steps it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub range: &'static str,
    pub step_s: i64,
    pub slots: i64,
}

/// `1h` in minutes, `24h` in quarter hours, `30d` in half days (README "Trends").
pub const RESOLUTIONS: [Resolution; 3] = [
    Resolution {
        range: "1h",
        step_s: 60,
        slots: 60,
    },
    Resolution {
        range: "24h",
        step_s: 900,
        slots: 96,
    },
    Resolution {
        range: "30d",
        step_s: 43_200,
        slots: 60,
    },
];

impl Resolution {
    pub fn by_range(range: &str) -> Option<Self> {
        RESOLUTIONS.into_iter().find(|r| r.range == range)
    }

    /// The start of the step `t` (seconds) falls in.
    pub fn step_of(self, t: i64) -> i64 {
        t - t.rem_euclid(self.step_s)
    }

    /// Where that step lives in its ring of `slots`.
    pub fn slot_of(self, step: i64) -> i64 {
        (step / self.step_s).rem_euclid(self.slots)
    }
}

/// One step of one series, as it is being filled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Point {
    /// The step's start (seconds since the epoch).
    pub t: i64,
    pub done: u64,
    pub failed: u64,
    pub queue_depth: u64,
    /// Samples alive, of `samples`.
    pub alive: u64,
    pub samples: u64,
}

impl Point {
    /// The stored form: `<step number> done failed queue_depth alive samples` (the step's
    /// number, `t / step_s`, is shorter than its time: a few bytes a point, ~0.6 KB a worker).
    pub fn encode(&self, step_s: i64) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.t / step_s,
            self.done,
            self.failed,
            self.queue_depth,
            self.alive,
            self.samples
        )
    }

    pub fn decode(s: &str, step_s: i64) -> Option<Self> {
        let mut it = s.split(' ').map(str::parse::<i64>);
        let mut next = || it.next()?.ok();
        let t = next()?.checked_mul(step_s)?;
        let mut n = || next().and_then(|v| u64::try_from(v).ok());
        Some(Self {
            t,
            done: n()?,
            failed: n()?,
            queue_depth: n()?,
            alive: n()?,
            samples: n()?,
        })
    }

    /// The fraction of the step alive.
    pub fn alive_fraction(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.alive as f64 / self.samples as f64
        }
    }
}

/// What one cycle says of one worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub done: u64,
    pub failed: u64,
    pub queue_depth: u64,
    pub alive: bool,
}

/// A counter's growth since `before` (a drop is a restart: the new value is the growth).
pub fn growth(before: u64, now: u64) -> u64 {
    if now >= before {
        now - before
    } else {
        now
    }
}

/// The last counters seen alive, per worker: what the next cycle's growth is measured from.
#[derive(Default)]
pub struct Counters(HashMap<String, (u64, u64)>);

impl Counters {
    /// The growth of a worker's counters this cycle (0 the first time it is seen, or while it
    /// is not alive).
    pub fn advance(&mut self, name: &str, s: &Sample) -> (u64, u64) {
        if !s.alive {
            return (0, 0);
        }
        match self.0.insert(name.to_string(), (s.done, s.failed)) {
            Some((d, f)) => (growth(d, s.done), growth(f, s.failed)),
            None => (0, 0),
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Forgets workers no longer in the fleet.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.0.retain(|k, _| keep(k));
    }
}

impl Point {
    /// Adds one worker's cycle to this step (a worker's own series).
    pub fn add_worker(&mut self, grew: (u64, u64), s: &Sample) {
        self.done += grew.0;
        self.failed += grew.1;
        self.queue_depth = self.queue_depth.max(s.queue_depth);
        self.alive += u64::from(s.alive);
        self.samples += 1;
    }

    /// Adds one cycle of a whole group: the workers' growth, their total depth, their liveness.
    pub fn add_group(&mut self, grew: (u64, u64), total_depth: u64, alive: u64, workers: u64) {
        self.done += grew.0;
        self.failed += grew.1;
        self.queue_depth = self.queue_depth.max(total_depth);
        self.alive += alive;
        self.samples += workers;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(done: u64, failed: u64, q: u64, alive: bool) -> Sample {
        Sample {
            done,
            failed,
            queue_depth: q,
            alive,
        }
    }

    #[test]
    fn counters_grow_by_their_deltas_and_a_drop_is_a_restart() {
        let mut c = Counters::default();
        assert_eq!(
            c.advance("w", &s(10, 1, 0, true)),
            (0, 0),
            "first sight: no baseline"
        );
        assert_eq!(c.advance("w", &s(15, 1, 0, true)), (5, 0));
        assert_eq!(
            c.advance("w", &s(3, 0, 0, true)),
            (3, 0),
            "restart: counted from 0"
        );
        assert_eq!(
            c.advance("w", &s(0, 0, 0, false)),
            (0, 0),
            "down: nothing, baseline kept"
        );
        assert_eq!(c.advance("w", &s(7, 2, 0, true)), (4, 2));
    }

    #[test]
    fn a_step_keeps_the_largest_depth_and_the_alive_fraction() {
        let mut p = Point::default();
        p.add_worker((2, 0), &s(0, 0, 5, true));
        p.add_worker((1, 1), &s(0, 0, 9, true));
        p.add_worker((0, 0), &s(0, 0, 3, false));
        p.add_worker((0, 0), &s(0, 0, 1, false));
        assert_eq!((p.done, p.failed, p.queue_depth), (3, 1, 9));
        assert_eq!(p.alive_fraction(), 0.5);
        p.t = 120;
        assert_eq!(p.encode(60), "2 3 1 9 2 4");
        let back = Point::decode(&p.encode(60), 60).unwrap();
        assert_eq!(back, p);
        assert!(Point::decode("1 2 x 4 5 6", 60).is_none());
        assert!(Point::decode("1 2 3", 60).is_none());
        assert!(Point::decode("1 -2 3 4 5 6", 60).is_none());
        assert!(Point::decode(&format!("{} 0 0 0 0 0", i64::MAX), 60).is_none());
    }

    #[test]
    fn steps_and_slots_of_each_range() {
        let r = Resolution::by_range("1h").unwrap();
        assert_eq!(r.step_of(3_661), 3_660);
        assert_eq!(r.slot_of(3_660), 1);
        assert_eq!(r.slot_of(3_600 + 3_600), 0, "the ring wraps after an hour");
        let d = Resolution::by_range("30d").unwrap();
        assert_eq!(d.step_s * d.slots, 30 * 24 * 3600);
        assert!(Resolution::by_range("7d").is_none());
    }
}
