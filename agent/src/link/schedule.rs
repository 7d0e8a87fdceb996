//! When the link registers, beats and polls: a pure function of the clock, the mode and what
//! the last calls answered, so its decisions are tested without Redis or a control plane.

use std::time::{Duration, Instant};

use crate::mode::Mode;

/// Over Redis the agent says it is registered again this often (the server keeps it once).
pub const REGISTER_EVERY: Duration = Duration::from_secs(300);
/// A registration sent over Redis is in the registry once the server has read its inbox;
/// a heartbeat that finds us missing sooner than this after it does not register again.
pub const REGISTER_SETTLE: Duration = Duration::from_secs(5);

/// What a heartbeat over REST was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeatRest {
    Sent,
    /// 404: the control plane does not know us (it lost its registry): register again.
    Unknown,
    Failed,
}

pub struct Schedule {
    beat_every: Duration,
    poll_every: Duration,
    next_beat: Instant,
    next_poll: Instant,
    /// Over Redis: when to register next, and when the last registration went out.
    next_register: Instant,
    registered_at: Option<Instant>,
    /// Over REST: whether the control plane answered our registration.
    rest_registered: bool,
}

impl Schedule {
    /// Everything is due at `now`: register, beat, poll.
    pub fn new(beat_every: Duration, poll_every: Duration, now: Instant) -> Self {
        Self {
            beat_every,
            poll_every,
            next_beat: now,
            next_poll: now,
            next_register: now,
            registered_at: None,
            rest_registered: false,
        }
    }

    /// Back on Redis after REST: say who we are at once.
    pub fn mode_changed(&mut self, to: Mode, now: Instant) {
        if to == Mode::Redis {
            self.next_register = now;
        }
    }

    /// Whether to register over Redis now (`redis`: the mode uses Redis and it answers).
    pub fn register_redis_due(&self, redis: bool, now: Instant) -> bool {
        redis && now >= self.next_register
    }

    /// A registration went out over Redis.
    pub fn registered_over_redis(&mut self, now: Instant) {
        self.next_register = now + REGISTER_EVERY;
        self.registered_at = Some(now);
    }

    /// Whether a heartbeat is due; taking it schedules the next.
    pub fn take_beat(&mut self, now: Instant) -> bool {
        if now < self.next_beat {
            return false;
        }
        self.next_beat = now + self.beat_every;
        true
    }

    /// A heartbeat over Redis found the registry holding us (or not).
    pub fn beat_over_redis(&mut self, in_registry: bool, now: Instant) {
        if !in_registry {
            // The server lost us, or has not read the registration just sent: then wait a
            // moment rather than register twice.
            self.next_register = self
                .registered_at
                .map_or(now, |at| now.max(at + REGISTER_SETTLE));
        }
    }

    /// Whether to register over REST before this heartbeat.
    pub fn register_rest_due(&self) -> bool {
        !self.rest_registered
    }

    /// The control plane took the registration and named the heartbeat interval.
    pub fn registered_over_rest(&mut self, beat_every: Duration) {
        self.rest_registered = true;
        self.beat_every = beat_every;
    }

    pub fn beat_over_rest(&mut self, answer: BeatRest) {
        if answer == BeatRest::Unknown {
            self.rest_registered = false;
        }
    }

    /// Not on REST for this heartbeat: the next REST heartbeat registers first.
    pub fn off_rest(&mut self) {
        self.rest_registered = false;
    }

    /// Whether a command poll over REST is due; taking it schedules the next.
    pub fn take_poll(&mut self, now: Instant) -> bool {
        if now < self.next_poll {
            return false;
        }
        self.next_poll = now + self.poll_every;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEAT: Duration = Duration::from_secs(10);
    const POLL: Duration = Duration::from_secs(5);
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn at_start_everything_is_due_once() {
        let t = Instant::now();
        let mut s = Schedule::new(BEAT, POLL, t);
        assert!(s.register_redis_due(true, t));
        assert!(
            !s.register_redis_due(false, t),
            "not while Redis is unusable"
        );
        assert!(
            s.take_beat(t) && !s.take_beat(t + S),
            "one beat, then the interval"
        );
        assert!(s.take_beat(t + BEAT));
        assert!(s.take_poll(t) && !s.take_poll(t + S) && s.take_poll(t + POLL));
    }

    #[test]
    fn a_beat_right_after_registering_does_not_register_again() {
        let t = Instant::now();
        let mut s = Schedule::new(BEAT, POLL, t);
        s.registered_over_redis(t);
        // The server has not read the inbox yet: the registry does not hold us.
        s.beat_over_redis(false, t + S);
        assert!(!s.register_redis_due(true, t + S));
        assert!(!s.register_redis_due(true, t + REGISTER_SETTLE - S));
        assert!(
            s.register_redis_due(true, t + REGISTER_SETTLE),
            "still missing: again"
        );
    }

    #[test]
    fn a_registry_that_lost_us_hears_from_us_at_once() {
        let t = Instant::now();
        let mut s = Schedule::new(BEAT, POLL, t);
        s.registered_over_redis(t);
        assert!(
            !s.register_redis_due(true, t + BEAT),
            "registered: not before REGISTER_EVERY"
        );
        s.beat_over_redis(true, t + BEAT);
        assert!(!s.register_redis_due(true, t + BEAT));
        let later = t + 3 * BEAT;
        s.beat_over_redis(false, later);
        assert!(s.register_redis_due(true, later));
        s.registered_over_redis(later);
        assert!(s.register_redis_due(true, later + REGISTER_EVERY));
    }

    #[test]
    fn coming_back_to_redis_registers_at_once() {
        let t = Instant::now();
        let mut s = Schedule::new(BEAT, POLL, t);
        s.registered_over_redis(t);
        s.mode_changed(Mode::Rest, t + S);
        assert!(!s.register_redis_due(true, t + S));
        s.mode_changed(Mode::Redis, t + 2 * S);
        assert!(s.register_redis_due(true, t + 2 * S));
    }

    #[test]
    fn over_rest_a_beat_registers_first_and_again_after_a_404() {
        let t = Instant::now();
        let mut s = Schedule::new(BEAT, POLL, t);
        assert!(s.register_rest_due());
        s.registered_over_rest(Duration::from_secs(30));
        assert!(!s.register_rest_due());
        assert!(s.take_beat(t));
        assert!(!s.take_beat(t + BEAT), "the interval the server named");
        assert!(s.take_beat(t + Duration::from_secs(30)));
        s.beat_over_rest(BeatRest::Failed);
        assert!(
            !s.register_rest_due(),
            "a failed beat is no reason to register"
        );
        s.beat_over_rest(BeatRest::Unknown);
        assert!(s.register_rest_due(), "the control plane lost us");
        s.registered_over_rest(BEAT);
        s.off_rest();
        assert!(s.register_rest_due(), "back on REST later: register first");
    }
}
