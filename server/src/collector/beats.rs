//! Decoded heartbeats kept between cycles. A worker beats every 10–15 s and the collector reads
//! every second, so at 10,000 workers nine in ten values are the bytes of the last cycle:
//! decoding them again (JSON, RFC 3339) was most of a cycle's CPU. Only the clock-dependent
//! checks (age, skew) run on every cycle.

use shared::heartbeat::{decode_heartbeat, Heartbeat, HeartbeatError};

#[derive(Debug)]
struct Entry {
    raw: Vec<u8>,
    decoded: Result<Heartbeat, HeartbeatError>,
}

/// One slot per planned worker, in plan order; rebuilt from scratch when the plan changes.
#[derive(Debug, Default)]
pub struct HeartbeatCache {
    entries: Vec<Option<Entry>>,
    /// How many values the last [`HeartbeatCache::update`] decoded (for the bench and tests).
    pub decoded_last: usize,
}

impl HeartbeatCache {
    /// Forgets every entry: after a plan change an index names another worker.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Brings every slot up to this cycle's raw values (`None`: no heartbeat). A value whose
    /// bytes differ in any way is decoded again; a value that disappeared empties its slot.
    pub fn update(&mut self, raw: &[Option<&[u8]>]) {
        self.entries.resize_with(raw.len(), || None);
        self.entries.truncate(raw.len());
        let mut decoded = 0;
        for (slot, value) in self.entries.iter_mut().zip(raw) {
            match (slot.as_ref(), value) {
                (_, None) => *slot = None,
                (Some(e), Some(v)) if e.raw == *v => {}
                (_, Some(v)) => {
                    decoded += 1;
                    *slot = Some(Entry {
                        raw: v.to_vec(),
                        decoded: decode_heartbeat(v),
                    });
                }
            }
        }
        self.decoded_last = decoded;
    }

    /// The decoded heartbeat of planned worker `i`, if it has one this cycle.
    pub fn get(&self, i: usize) -> Option<&Result<Heartbeat, HeartbeatError>> {
        self.entries.get(i)?.as_ref().map(|e| &e.decoded)
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

    fn state(c: &HeartbeatCache, i: usize) -> Option<String> {
        c.get(i)
            .map(|r| r.as_ref().map_or("error".into(), |h| h.state.to_string()))
    }

    #[test]
    fn unchanged_bytes_are_not_decoded_again() {
        let mut c = HeartbeatCache::default();
        let raw = vec![Some(beat("a", "idle")), Some(beat("b", "busy")), None];
        c.update(&refs(&raw));
        assert_eq!(c.decoded_last, 2);
        c.update(&refs(&raw));
        assert_eq!(c.decoded_last, 0, "same bytes, nothing decoded");
        assert_eq!(state(&c, 0).as_deref(), Some("idle"));
        assert_eq!(state(&c, 1).as_deref(), Some("busy"));
        assert_eq!(state(&c, 2), None);
    }

    #[test]
    fn a_changed_byte_is_never_missed() {
        let mut c = HeartbeatCache::default();
        let mut raw = vec![Some(beat("a", "idle"))];
        c.update(&refs(&raw));
        // Same length, one byte different: the state word `idle` → `idlf` is invalid.
        let v = raw[0].as_mut().unwrap();
        let at = v.windows(4).position(|w| w == b"idle").unwrap();
        v[at + 3] = b'f';
        c.update(&refs(&raw));
        assert_eq!(c.decoded_last, 1);
        assert_eq!(state(&c, 0).as_deref(), Some("error"));
        raw[0] = Some(beat("a", "busy"));
        c.update(&refs(&raw));
        assert_eq!(state(&c, 0).as_deref(), Some("busy"));
    }

    #[test]
    fn a_key_that_disappears_is_gone_in_the_same_cycle() {
        let mut c = HeartbeatCache::default();
        c.update(&refs(&[Some(beat("a", "idle")), Some(beat("b", "idle"))]));
        c.update(&refs(&[None, Some(beat("b", "idle"))]));
        assert_eq!(state(&c, 0), None);
        assert_eq!(state(&c, 1).as_deref(), Some("idle"));
        // It comes back: decoded again, not served from a stale slot.
        c.update(&refs(&[Some(beat("a", "busy")), Some(beat("b", "idle"))]));
        assert_eq!(c.decoded_last, 1);
        assert_eq!(state(&c, 0).as_deref(), Some("busy"));
    }

    #[test]
    fn a_smaller_plan_drops_the_slots_past_its_end() {
        let mut c = HeartbeatCache::default();
        c.update(&refs(&[Some(beat("a", "idle")), Some(beat("b", "idle"))]));
        c.update(&refs(&[Some(beat("a", "idle"))]));
        assert_eq!(c.get(1), None);
        c.clear();
        c.update(&refs(&[Some(beat("a", "idle"))]));
        assert_eq!(c.decoded_last, 1, "cleared: decoded again");
    }
}
