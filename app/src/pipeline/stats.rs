//! Frame timings the page publishes on the canvas (`data-frame-ms`, `data-cpu-ms`), read by the
//! benchmark. A fixed window, so it never grows.

use std::collections::VecDeque;

const WINDOW: usize = 240;

#[derive(Default)]
pub struct FrameStats {
    pub frames: u64,
    intervals: VecDeque<f64>,
    cpu: VecDeque<f64>,
    last_start: Option<f64>,
}

fn push(q: &mut VecDeque<f64>, v: f64) {
    if q.len() == WINDOW {
        q.pop_front();
    }
    q.push_back(v);
}

/// The middle value (0 when empty).
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl FrameStats {
    /// A frame that started at `start` ms and took `cpu` ms of our code.
    /// Returns the time since the previous frame started.
    pub fn record(&mut self, start: f64, cpu: f64) -> Option<f64> {
        let interval = self.last_start.map(|last| start - last);
        if let Some(i) = interval {
            push(&mut self.intervals, i);
        }
        self.last_start = Some(start);
        push(&mut self.cpu, cpu);
        self.frames += 1;
        interval
    }

    /// Median time between frames: what a person sees, GPU work included.
    pub fn frame_ms(&self) -> f64 {
        median(self.intervals.iter().copied())
    }

    /// Median time spent in our frame code.
    pub fn cpu_ms(&self) -> f64 {
        median(self.cpu.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_intervals_and_cpu() {
        let mut s = FrameStats::default();
        for (i, cpu) in [3.0, 1.0, 2.0].into_iter().enumerate() {
            s.record(i as f64 * 16.0, cpu);
        }
        assert_eq!(s.frame_ms(), 16.0);
        assert_eq!(s.cpu_ms(), 2.0);
        assert_eq!(s.frames, 3);
    }

    #[test]
    fn the_window_is_bounded() {
        let mut s = FrameStats::default();
        for i in 0..10_000 {
            s.record(i as f64, 1.0);
        }
        assert!(s.intervals.len() <= WINDOW && s.cpu.len() <= WINDOW);
        assert_eq!(median(std::iter::empty()), 0.0);
    }
}
