//! What the collector remembers of each worker's heartbeat key between cycles, on the
//! server's own clock: the value (decoded once, while its bytes stay the same — at 10,000
//! workers nine in ten values are the bytes of the last cycle), when it last changed, and when
//! a valid beat was last seen. Liveness is judged from these, never by comparing the writer's
//! `ts` with our clock (see `snapshot::fill_worker`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use shared::heartbeat::{read_beat, Beat, HeartbeatError, STALE_TS_S};
use shared::worker::HEARTBEAT_INTERVAL_S;

/// Most keys whose TTL one cycle asks for (see [`HeartbeatCache::suspects`]); past it, the
/// value-change rule alone decides.
pub const MAX_SUSPECTS: usize = 10_000;

#[derive(Debug)]
pub struct Value {
    raw: Vec<u8>,
    pub read: Result<Beat, HeartbeatError>,
    /// When these bytes were first seen (the server's clock).
    pub changed_at: DateTime<Utc>,
    /// Whether the key has a TTL (`PTTL` ≥ 0), once asked; `None` until then.
    pub expires: Option<bool>,
    /// When that was last asked (the answer is asked again a beat interval later: a key can
    /// lose its TTL).
    asked_at: Option<DateTime<Utc>>,
}

/// One planned worker's memory.
#[derive(Debug, Default)]
pub struct Slot {
    name: String,
    /// The key's value this cycle (`None`: no heartbeat string).
    pub value: Option<Value>,
    /// The last time this server saw a new valid beat from it.
    pub seen: Option<DateTime<Utc>>,
}

/// One slot per planned worker, in plan order; after a plan change the slots are matched to
/// the new plan by name, so what was learnt of a worker (when its value last changed) is
/// never forgotten by a fleet change.
#[derive(Debug, Default)]
pub struct HeartbeatCache {
    slots: Vec<Slot>,
    /// How many values the last [`HeartbeatCache::update`] decoded (for the bench and tests).
    pub decoded_last: usize,
}

impl HeartbeatCache {
    /// Brings every slot up to this cycle's raw values (`raw[i]` is `names[i]`'s key; `None`:
    /// no heartbeat). A value whose bytes differ in any way is read again and stamped `now`.
    pub fn update<'n>(
        &mut self,
        names: impl ExactSizeIterator<Item = &'n str> + Clone,
        raw: &[Option<&[u8]>],
        now: DateTime<Utc>,
    ) {
        self.align(names);
        let mut decoded = 0;
        for (slot, value) in self.slots.iter_mut().zip(raw) {
            match (slot.value.as_ref(), value) {
                (_, None) => slot.value = None,
                (Some(v), Some(bytes)) if v.raw == *bytes => {}
                (_, Some(bytes)) => {
                    decoded += 1;
                    let read = read_beat(bytes);
                    if read.is_ok() {
                        slot.seen = Some(now);
                    }
                    slot.value = Some(Value {
                        raw: bytes.to_vec(),
                        read,
                        changed_at: now,
                        expires: None,
                        asked_at: None,
                    });
                }
            }
        }
        self.decoded_last = decoded;
    }

    /// The workers whose key's TTL the next cycle should ask for: a beat that has not changed
    /// for a beat interval (a writer changes it every beat) or whose `ts` is older than
    /// [`STALE_TS_S`] — whether it sits in a key with a TTL decides if it is alive. Each is
    /// asked at most once a beat interval, at most [`MAX_SUSPECTS`] a cycle; none in a healthy
    /// fleet.
    pub fn suspects(&self, now: DateTime<Utc>) -> Vec<String> {
        let interval = HEARTBEAT_INTERVAL_S as i64;
        self.slots
            .iter()
            .filter(|s| {
                s.value.as_ref().is_some_and(|v| {
                    let still = (now - v.changed_at).num_seconds() >= interval;
                    let ancient = v
                        .read
                        .as_ref()
                        .ok()
                        .and_then(|b| b.ts)
                        .is_some_and(|ts| (now - ts).num_seconds() > STALE_TS_S);
                    let due = v
                        .asked_at
                        .is_none_or(|at| (now - at).num_seconds() >= interval);
                    v.read.is_ok() && (still || ancient) && due
                })
            })
            .take(MAX_SUSPECTS)
            .map(|s| s.name.clone())
            .collect()
    }

    /// Notes what `PTTL` answered at `now` for `names` (milliseconds; -1: no TTL, -2: no key).
    pub fn set_ttls(&mut self, names: &[String], pttl: &[i64], now: DateTime<Utc>) {
        let mut answers: HashMap<&str, i64> = names
            .iter()
            .map(String::as_str)
            .zip(pttl.iter().copied())
            .collect();
        for slot in &mut self.slots {
            let Some(ms) = answers.remove(slot.name.as_str()) else {
                continue;
            };
            if let Some(v) = slot.value.as_mut() {
                v.asked_at = Some(now);
                v.expires = match ms {
                    -1 => Some(false),
                    ms if ms >= 0 => Some(true),
                    _ => None,
                };
            }
        }
    }

    /// Planned worker `i`'s memory.
    pub fn get(&self, i: usize) -> Option<&Slot> {
        self.slots.get(i)
    }

    /// Puts the slots in `names`' order, keeping each worker's by name (cheap when the plan did
    /// not change: one comparison per worker).
    fn align<'n>(&mut self, names: impl ExactSizeIterator<Item = &'n str> + Clone) {
        let aligned = self.slots.len() == names.len()
            && self
                .slots
                .iter()
                .zip(names.clone())
                .all(|(s, n)| s.name == n);
        if aligned {
            return;
        }
        let mut known: HashMap<String, Slot> = std::mem::take(&mut self.slots)
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        self.slots = names
            .map(|n| {
                known.remove(n).unwrap_or_else(|| Slot {
                    name: n.to_string(),
                    ..Slot::default()
                })
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(raw: &[Option<Vec<u8>>]) -> Vec<Option<&[u8]>> {
        raw.iter().map(|v| v.as_deref()).collect()
    }

    fn beat(name: &str, state: &str) -> Vec<u8> {
        format!(
            r#"{{"name":"{name}","kind":"render","state":"{state}","ts":"2026-11-23T11:59:55Z","last_job_at":null,"jobs_done":1,"jobs_failed":0}}"#
        )
        .into_bytes()
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + s, 0).unwrap()
    }

    const AB: [&str; 3] = ["a", "b", "c"];

    fn state(c: &HeartbeatCache, i: usize) -> Option<String> {
        let v = c.get(i)?.value.as_ref()?;
        Some(match &v.read {
            Ok(b) => b.state.as_ref().map_or("none".into(), |s| s.to_string()),
            Err(_) => "error".into(),
        })
    }

    #[test]
    fn unchanged_bytes_are_not_decoded_again_and_keep_their_time() {
        let mut c = HeartbeatCache::default();
        let raw = vec![Some(beat("a", "idle")), Some(beat("b", "busy")), None];
        c.update(AB.into_iter(), &refs(&raw), t(0));
        assert_eq!(c.decoded_last, 2);
        c.update(AB.into_iter(), &refs(&raw), t(30));
        assert_eq!(c.decoded_last, 0, "same bytes, nothing decoded");
        assert_eq!(state(&c, 0).as_deref(), Some("idle"));
        assert_eq!(state(&c, 1).as_deref(), Some("busy"));
        assert_eq!(state(&c, 2), None);
        let a = c.get(0).unwrap();
        assert_eq!(
            (a.value.as_ref().unwrap().changed_at, a.seen),
            (t(0), Some(t(0)))
        );
    }

    #[test]
    fn a_changed_byte_is_never_missed() {
        let mut c = HeartbeatCache::default();
        let mut raw = vec![Some(beat("a", "idle"))];
        c.update(["a"].into_iter(), &refs(&raw), t(0));
        // Same length, one byte different: `"idle"` → `"idl{`, no longer JSON.
        let v = raw[0].as_mut().unwrap();
        let at = v.windows(5).position(|w| w == b"idle\"").unwrap();
        v[at + 4] = b'{';
        c.update(["a"].into_iter(), &refs(&raw), t(5));
        assert_eq!(c.decoded_last, 1);
        assert_eq!(state(&c, 0).as_deref(), Some("error"));
        assert_eq!(
            c.get(0).unwrap().seen,
            Some(t(0)),
            "garbage is not a beat seen"
        );
        raw[0] = Some(beat("a", "busy"));
        c.update(["a"].into_iter(), &refs(&raw), t(9));
        assert_eq!(state(&c, 0).as_deref(), Some("busy"));
        assert_eq!(c.get(0).unwrap().seen, Some(t(9)));
    }

    #[test]
    fn a_key_that_disappears_is_gone_in_the_same_cycle_but_remembered() {
        let mut c = HeartbeatCache::default();
        let names = ["a", "b"];
        let both = [Some(beat("a", "idle")), Some(beat("b", "idle"))];
        c.update(names.into_iter(), &refs(&both), t(0));
        let one = [None, Some(beat("b", "idle"))];
        c.update(names.into_iter(), &refs(&one), t(1));
        assert_eq!(state(&c, 0), None);
        assert_eq!(c.get(0).unwrap().seen, Some(t(0)), "when it last beat");
        // It comes back: read again, not served from a stale slot.
        let back = [Some(beat("a", "busy")), Some(beat("b", "idle"))];
        c.update(names.into_iter(), &refs(&back), t(2));
        assert_eq!(c.decoded_last, 1);
        assert_eq!(state(&c, 0).as_deref(), Some("busy"));
    }

    #[test]
    fn a_beat_that_stands_still_or_is_old_is_asked_its_ttl() {
        let mut c = HeartbeatCache::default();
        let old = br#"{"name":"b","kind":"render","state":"idle","ts":"2020-01-01T00:00:00Z","jobs_done":0,"jobs_failed":0}"#;
        let raw = [
            Some(beat("a", "idle")),
            Some(old.to_vec()),
            Some(b"junk".to_vec()),
        ];
        c.update(AB.into_iter(), &refs(&raw), t(0));
        assert_eq!(
            c.suspects(t(1)),
            ["b"],
            "old ts: asked at once; junk is no beat"
        );
        assert_eq!(
            c.suspects(t(20)),
            ["a", "b"],
            "a stood still for a beat interval"
        );
        c.set_ttls(&["a".into(), "b".into()], &[30_000, -1], t(20));
        assert!(
            c.suspects(t(21)).is_empty(),
            "answered: not asked again at once"
        );
        assert_eq!(
            c.suspects(t(35)),
            ["a", "b"],
            "but again a beat interval later"
        );
        assert_eq!(
            c.get(0).unwrap().value.as_ref().unwrap().expires,
            Some(true)
        );
        assert_eq!(
            c.get(1).unwrap().value.as_ref().unwrap().expires,
            Some(false)
        );
        // A new value forgets the answer: the next one is about the new write.
        let raw = [Some(beat("a", "busy")), Some(old.to_vec()), None];
        c.update(AB.into_iter(), &refs(&raw), t(21));
        assert_eq!(c.get(0).unwrap().value.as_ref().unwrap().expires, None);
    }

    #[test]
    fn a_plan_change_keeps_each_workers_memory_by_name() {
        let mut c = HeartbeatCache::default();
        let first = [Some(beat("a", "idle")), Some(beat("b", "idle"))];
        c.update(["a", "b"].into_iter(), &refs(&first), t(0));
        // A worker joins in front and `b` leaves: `a`'s value keeps the time it changed.
        let then = [Some(beat("new", "idle")), Some(beat("a", "idle"))];
        c.update(["new", "a"].into_iter(), &refs(&then), t(40));
        assert_eq!(c.decoded_last, 1, "only the new worker's value is read");
        assert_eq!(c.get(1).unwrap().value.as_ref().unwrap().changed_at, t(0));
        assert_eq!(c.get(0).unwrap().value.as_ref().unwrap().changed_at, t(40));
        assert!(c.get(2).is_none());
    }
}
