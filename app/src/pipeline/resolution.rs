//! Dynamic resolution: the scene renders into fewer pixels when frames come too slowly, and
//! back into more when they come fast again. Drawing is fill-bound on a software rasteriser
//! (SwiftShader) and on weak GPUs; the HUD is HTML, so its text stays sharp whatever the scale.

use super::stats::median;

/// Frames per decision.
const BATCH: usize = 30;
/// Slower than this (median ms between frames) and the scale steps down.
const TOO_SLOW_MS: f64 = 34.0;
/// Faster than this and the scale may step back up.
const FAST_MS: f64 = 20.0;
/// Batches that must be fast in a row before a step up, so the scale does not see-saw.
const FAST_BATCHES_TO_GROW: u32 = 4;
const STEP: f64 = 0.85;
pub const MIN_SCALE: f64 = 0.5;

#[derive(Debug)]
pub struct Resolution {
    scale: f64,
    batch: Vec<f64>,
    fast_batches: u32,
}

impl Default for Resolution {
    fn default() -> Self {
        Self {
            scale: 1.0,
            batch: Vec::with_capacity(BATCH),
            fast_batches: 0,
        }
    }
}

impl Resolution {
    /// Fraction of the device pixels the canvas renders, in `MIN_SCALE..=1`.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Takes the time since the previous frame; returns the new scale when it changes.
    pub fn record(&mut self, interval_ms: f64) -> Option<f64> {
        self.batch.push(interval_ms);
        if self.batch.len() < BATCH {
            return None;
        }
        let typical = median(self.batch.drain(..));
        let before = self.scale;
        if typical > TOO_SLOW_MS {
            self.fast_batches = 0;
            self.scale = (self.scale * STEP).max(MIN_SCALE);
        } else if typical < FAST_MS {
            self.fast_batches += 1;
            if self.fast_batches >= FAST_BATCHES_TO_GROW {
                self.fast_batches = 0;
                self.scale = (self.scale / STEP).min(1.0);
            }
        } else {
            self.fast_batches = 0;
        }
        (self.scale != before).then_some(self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(r: &mut Resolution, ms: f64, n: usize) -> Vec<f64> {
        (0..n * BATCH).filter_map(|_| r.record(ms)).collect()
    }

    #[test]
    fn full_resolution_while_frames_keep_up() {
        let mut r = Resolution::default();
        assert!(batches(&mut r, 16.7, 10).is_empty());
        assert!(batches(&mut r, 33.3, 10).is_empty());
        assert_eq!(r.scale(), 1.0);
    }

    #[test]
    fn slow_frames_step_down_to_the_floor() {
        let mut r = Resolution::default();
        assert_eq!(batches(&mut r, 50.0, 1), vec![0.85]);
        batches(&mut r, 100.0, 20);
        assert_eq!(r.scale(), MIN_SCALE);
    }

    #[test]
    fn one_slow_frame_in_a_batch_changes_nothing() {
        let mut r = Resolution::default();
        r.record(400.0);
        assert!(batches(&mut r, 16.7, 3).is_empty());
        assert_eq!(r.scale(), 1.0);
    }

    #[test]
    fn fast_frames_win_the_resolution_back_slowly() {
        let mut r = Resolution::default();
        batches(&mut r, 50.0, 2);
        let low = r.scale();
        assert!(batches(&mut r, 16.7, FAST_BATCHES_TO_GROW as usize - 1).is_empty());
        assert_eq!(batches(&mut r, 16.7, 1), vec![(low / STEP).min(1.0)]);
        batches(&mut r, 16.7, 40);
        assert_eq!(r.scale(), 1.0);
    }

    #[test]
    fn frames_at_thirty_per_second_hold_the_scale() {
        let mut r = Resolution::default();
        batches(&mut r, 50.0, 1);
        assert!(batches(&mut r, 33.3, 20).is_empty());
        assert_eq!(r.scale(), 0.85);
    }
}
