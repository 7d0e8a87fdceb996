//! Folding collector snapshots into per-step points (SPEC §11's trends), pure.
//!
//! Each cycle gives every worker's `jobs_done`, `jobs_failed`, queue depth and liveness. A
//! step's `done`/`failed` are the counters' growth within it — a counter that goes down is a
//! restart, so its new value is the growth, never a negative count; a worker that is not alive
//! adds nothing and keeps its last counters — `queue_depth` is the largest depth seen and
//! `alive` the fraction of the step's samples in which the worker was alive. A group's and the
//! fleet's points add their workers' growth, take the largest total queue depth seen, and the
//! fraction of worker-samples alive.

pub use shared::series::Range;

/// Every range, in the order a series' open points are kept.
pub const RESOLUTIONS: [Range; 3] = Range::ALL;

/// The start of the step of `r` that `t` (seconds) falls in.
pub fn step_of(r: Range, t: i64) -> i64 {
    t - t.rem_euclid(r.step_s())
}

/// Where the step starting at `step` lives in `r`'s ring.
pub fn slot_of(r: Range, step: i64) -> i64 {
    (step / r.step_s()).rem_euclid(r.steps())
}

/// One step of one series, as it is being filled.
/// The bytes of a stored point.
pub const POINT_BYTES: usize = 24;

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
    /// The stored form: six little-endian `u32`s — the step's number (`t / step_s`, 0 for
    /// a slot never written), done, failed, queue depth, alive, samples — each saturating.
    pub fn to_bytes(&self, r: Range) -> [u8; POINT_BYTES] {
        let mut out = [0u8; POINT_BYTES];
        let fields = [
            (self.t / r.step_s()) as u64,
            self.done,
            self.failed,
            self.queue_depth,
            self.alive,
            self.samples,
        ];
        for (chunk, v) in out.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes());
        }
        out
    }

    /// A stored point; `None` for a slot never written or bytes too short.
    pub fn from_bytes(b: &[u8], r: Range) -> Option<Self> {
        let mut it = b
            .get(..POINT_BYTES)?
            .chunks_exact(4)
            .map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        let mut next = || it.next().unwrap_or(0);
        let step = next();
        if step == 0 {
            return None;
        }
        Some(Self {
            t: step as i64 * r.step_s(),
            done: next(),
            failed: next(),
            queue_depth: next(),
            alive: next(),
            samples: next(),
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

/// The last counters a worker was seen alive with: what the next cycle's growth is measured
/// from.
#[derive(Default)]
pub struct Baseline(Option<(u64, u64)>);

impl Baseline {
    /// The growth of a worker's counters this cycle (0 the first time it is seen, or while it
    /// is not alive).
    pub fn advance(&mut self, s: &Sample) -> (u64, u64) {
        if !s.alive {
            return (0, 0);
        }
        match self.0.replace((s.done, s.failed)) {
            Some((d, f)) => (growth(d, s.done), growth(f, s.failed)),
            None => (0, 0),
        }
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
        let mut c = Baseline::default();
        assert_eq!(
            c.advance(&s(10, 1, 0, true)),
            (0, 0),
            "first sight: no baseline"
        );
        assert_eq!(c.advance(&s(15, 1, 0, true)), (5, 0));
        assert_eq!(
            c.advance(&s(3, 0, 0, true)),
            (3, 0),
            "restart: counted from 0"
        );
        assert_eq!(
            c.advance(&s(0, 0, 0, false)),
            (0, 0),
            "down: nothing, baseline kept"
        );
        assert_eq!(c.advance(&s(7, 2, 0, true)), (4, 2));
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
        let bytes = p.to_bytes(Range::Hour);
        assert_eq!(&bytes[..8], &[2, 0, 0, 0, 3, 0, 0, 0], "step 2, 3 done");
        assert_eq!(Point::from_bytes(&bytes, Range::Hour), Some(p));
        assert_eq!(
            Point::from_bytes(&[0; POINT_BYTES], Range::Hour),
            None,
            "never written"
        );
        assert_eq!(
            Point::from_bytes(&bytes[..20], Range::Hour),
            None,
            "cut short"
        );
        p.done = u64::MAX;
        let back = Point::from_bytes(&p.to_bytes(Range::Hour), Range::Hour).unwrap();
        assert_eq!(back.done, u64::from(u32::MAX), "saturates");
    }

    #[test]
    fn steps_and_slots_of_each_range() {
        let r = Range::Hour;
        assert_eq!(step_of(r, 3_661), 3_660);
        assert_eq!(slot_of(r, 3_660), 1);
        assert_eq!(slot_of(r, 3_600 + 3_600), 0, "the ring wraps after an hour");
        assert_eq!(slot_of(Range::Day, 900 * 97), 1);
    }
}
