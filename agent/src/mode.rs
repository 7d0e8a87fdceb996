//! How the agent talks to the control plane: Redis → Hybrid → REST → Redis (SPEC §8).
//!
//! A pure state machine fed one Redis health check at a time; the driver in `link` acts on
//! the mode it returns. The rules:
//! - **Redis**: everything over Redis. The first failed check moves to Hybrid (when REST
//!   fallback is enabled; without it the agent stays in Redis mode and keeps reconnecting).
//! - **Hybrid**: Redis is failing; reconnect attempts go on and REST runs beside them
//!   (heartbeats and command polls over REST). Still failing `rest_after` after the first
//!   failure → REST.
//! - **REST**: heartbeats over REST, commands polled every `command_poll_interval`.
//! - From Hybrid or REST, back to **Redis** only once Redis has answered every check for the
//!   whole `stabilisation` period: one good answer in a flapping network is not enough.

use std::time::{Duration, Instant};

pub use shared::control::CommunicationMode as Mode;

#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Failing this long in Hybrid → REST.
    pub rest_after: Duration,
    /// Healthy this long without a failure → back to Redis.
    pub stabilisation: Duration,
    pub rest_fallback: bool,
}

#[derive(Clone, Debug)]
pub struct ModeMachine {
    mode: Mode,
    timing: Timing,
    failing_since: Option<Instant>,
    healthy_since: Option<Instant>,
}

impl ModeMachine {
    pub fn new(timing: Timing) -> Self {
        Self {
            mode: Mode::Redis,
            timing,
            failing_since: None,
            healthy_since: None,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Takes one Redis health check made at `now` and returns the mode to be in.
    pub fn observe(&mut self, redis_ok: bool, now: Instant) -> Mode {
        if redis_ok {
            self.failing_since = None;
            let since = *self.healthy_since.get_or_insert(now);
            if self.mode != Mode::Redis && now.duration_since(since) >= self.timing.stabilisation {
                self.mode = Mode::Redis;
            }
        } else {
            self.healthy_since = None;
            let since = *self.failing_since.get_or_insert(now);
            self.mode = match self.mode {
                _ if !self.timing.rest_fallback => Mode::Redis,
                Mode::Redis => Mode::Hybrid,
                Mode::Hybrid if now.duration_since(since) >= self.timing.rest_after => Mode::Rest,
                m => m,
            };
        }
        self.mode
    }
}

/// What each mode uses, so the driver never matches on modes itself.
pub fn uses_redis(mode: Mode) -> bool {
    mode != Mode::Rest
}

pub fn uses_rest(mode: Mode) -> bool {
    mode != Mode::Redis
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn machine(rest_fallback: bool) -> ModeMachine {
        ModeMachine::new(Timing {
            rest_after: 15 * S,
            stabilisation: 30 * S,
            rest_fallback,
        })
    }

    /// Feeds one check per second from `t` and returns the mode after each.
    fn run(m: &mut ModeMachine, t0: Instant, from_s: u64, checks: &[bool]) -> Vec<Mode> {
        checks
            .iter()
            .enumerate()
            .map(|(i, ok)| m.observe(*ok, t0 + S * (from_s + i as u64) as u32))
            .collect()
    }

    #[test]
    fn redis_failing_goes_hybrid_at_once_then_rest_after_the_window() {
        let t0 = Instant::now();
        let mut m = machine(true);
        assert_eq!(m.observe(true, t0), Mode::Redis);
        let modes = run(&mut m, t0, 1, &[false; 17]);
        assert_eq!(modes[0], Mode::Hybrid, "the first failure");
        assert_eq!(modes[14], Mode::Hybrid, "14 s failing");
        assert_eq!(modes[15], Mode::Rest, "15 s failing");
        assert_eq!(modes[16], Mode::Rest);
    }

    #[test]
    fn back_to_redis_only_after_a_whole_stabilisation_period() {
        let t0 = Instant::now();
        let mut m = machine(true);
        run(&mut m, t0, 0, &[false; 20]);
        assert_eq!(m.mode(), Mode::Rest);
        // healthy for 29 s, one failure, then healthy again: the clock starts over
        let mut checks = vec![true; 30];
        checks.push(false);
        let modes = run(&mut m, t0, 20, &checks);
        assert!(modes.iter().all(|m| *m == Mode::Rest), "{modes:?}");
        let modes = run(&mut m, t0, 51, &[true; 31]);
        assert_eq!(modes[29], Mode::Rest, "29 s healthy");
        assert_eq!(modes[30], Mode::Redis, "30 s healthy");
    }

    #[test]
    fn hybrid_recovers_to_redis_without_passing_through_rest() {
        let t0 = Instant::now();
        let mut m = machine(true);
        run(&mut m, t0, 0, &[false; 5]);
        assert_eq!(m.mode(), Mode::Hybrid);
        let modes = run(&mut m, t0, 5, &[true; 31]);
        assert!(modes[..30].iter().all(|m| *m == Mode::Hybrid));
        assert_eq!(modes[30], Mode::Redis);
    }

    #[test]
    fn a_short_blip_inside_hybrid_does_not_reset_the_failure_clock_when_it_keeps_failing() {
        let t0 = Instant::now();
        let mut m = machine(true);
        run(&mut m, t0, 0, &[false; 10]);
        // one good answer restarts the failure window: REST needs 15 s of failure in a row
        m.observe(true, t0 + S * 10);
        let modes = run(&mut m, t0, 11, &[false; 16]);
        assert_eq!(modes[14], Mode::Hybrid);
        assert_eq!(modes[15], Mode::Rest);
    }

    #[test]
    fn without_rest_fallback_the_agent_stays_on_redis() {
        let t0 = Instant::now();
        let mut m = machine(false);
        let modes = run(&mut m, t0, 0, &[false; 60]);
        assert!(modes.iter().all(|m| *m == Mode::Redis));
    }

    #[test]
    fn what_each_mode_uses() {
        assert!(uses_redis(Mode::Redis) && !uses_rest(Mode::Redis));
        assert!(uses_redis(Mode::Hybrid) && uses_rest(Mode::Hybrid));
        assert!(!uses_redis(Mode::Rest) && uses_rest(Mode::Rest));
    }
}
