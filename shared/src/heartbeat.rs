//! Contract 1: the heartbeat a worker writes to `worker:<name>:heartbeat` (SPEC §1).
//!
//! Readers must survive anything in that key. [`read_beat`] reads it the way the plan's own
//! readers do — any JSON object is a beat, what it lacks is a warning — and never panics;
//! [`parse_heartbeat`] is the strict reading of the whole contract.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::worker::HEARTBEAT_TTL_S;
pub use crate::worker::{WorkerKind, WorkerState};

/// Values larger than this are rejected before any JSON parsing: a real heartbeat is ~200 bytes.
pub const MAX_HEARTBEAT_BYTES: usize = 8 * 1024;

/// How far a writer's clock may be off ours before the worker's card says so (a warning: a
/// worker is never called down for its clock).
pub const MAX_CLOCK_SKEW_S: i64 = 60;
/// A beat whose value has not changed for this long on the *server's* clock is stale (a writer
/// beats every 15 s with a new `ts`, and its key expires 45 s after the last beat; a value that
/// stands still longer sits in a key without a TTL).
pub const ALIVE_WINDOW_S: i64 = HEARTBEAT_TTL_S as i64;
/// A beat whose `ts` is this much older than the server's clock is stale at once, far past any
/// plausible clock skew: a key left without a TTL long ago (no waiting 45 s after a restart).
pub const STALE_TS_S: i64 = 10 * 60;

/// Longest reason text kept from a parser error, so a huge value cannot bloat the snapshot.
const MAX_REASON_CHARS: usize = 160;

/// A valid Contract-1 heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub name: String,
    pub kind: WorkerKind,
    pub state: WorkerState,
    pub ts: DateTime<Utc>,
    pub last_job_at: Option<String>,
    pub jobs_done: u64,
    pub jobs_failed: u64,
    pub mode: Option<String>,
}

impl Heartbeat {
    /// Whole seconds since `ts`; a small clock skew reads as 0, never negative.
    pub fn age_s(&self, now: DateTime<Utc>) -> i64 {
        (now - self.ts).num_seconds().max(0)
    }

    /// The JSON bytes a writer stores under the heartbeat key.
    pub fn to_json(&self) -> String {
        let wire = WireOut {
            name: &self.name,
            kind: self.kind.as_str(),
            state: self.state.as_str(),
            ts: crate::time::format_ts(self.ts),
            last_job_at: self.last_job_at.as_deref(),
            jobs_done: self.jobs_done,
            jobs_failed: self.jobs_failed,
            mode: self.mode.as_deref(),
        };
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    name: &'a str,
    kind: &'a str,
    state: &'a str,
    ts: String,
    last_job_at: Option<&'a str>,
    jobs_done: u64,
    jobs_failed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'a str>,
}

/// Why a value is not a heartbeat at all (anything else in a key is read as one, see
/// [`read_beat`]). The text is meant for operators.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    /// `len` is what was read: readers stop one byte past the limit.
    #[error("heartbeat is over the {MAX_HEARTBEAT_BYTES}-byte limit (too large)")]
    TooLarge { len: usize },
    #[error("heartbeat is not UTF-8")]
    NotUtf8,
    #[error("heartbeat is not JSON: {0}")]
    InvalidJson(String),
    #[error("heartbeat is not a JSON object")]
    NotAnObject,
    /// The strict reading only ([`parse_heartbeat`]): a beat that is not the whole contract.
    #[error("heartbeat is not the whole contract: {0}")]
    Incomplete(BeatWarning),
    #[error("ts is {ahead_s} s in the future")]
    FutureTimestamp { ahead_s: i64 },
}

/// Something a beat says that the contract does not, read leniently anyway (as the plan's
/// readers do): a warning in the worker's `error`, never a verdict.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BeatWarning {
    #[error("heartbeat has no {0:?}")]
    Missing(&'static str),
    #[error("heartbeat field {0:?} has the wrong type")]
    WrongType(&'static str),
    #[error("unknown kind {0:?}")]
    UnknownKind(String),
    #[error("unknown state {state:?} for kind {kind}")]
    UnknownState { kind: &'static str, state: String },
    #[error("ts {0:?} is not an ISO-8601 UTC time")]
    BadTimestamp(String),
}

/// A heartbeat as read from a key: every field the value has, the first thing it says that
/// the contract does not (`warning`), and defaults for what it lacks (counters 0, kind
/// unknown, no state, no `ts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Beat {
    pub name: Option<String>,
    pub kind: WorkerKind,
    pub state: Option<WorkerState>,
    pub ts: Option<DateTime<Utc>>,
    pub last_job_at: Option<String>,
    pub jobs_done: u64,
    pub jobs_failed: u64,
    pub mode: Option<String>,
    pub warning: Option<BeatWarning>,
}

impl Beat {
    /// Whole seconds since `ts` on `now`'s clock, never negative; `None` without a `ts`.
    pub fn age_s(&self, now: DateTime<Utc>) -> Option<i64> {
        self.ts.map(|ts| (now - ts).num_seconds().max(0))
    }
}

/// Reads the bytes stored in a heartbeat key the way the plan's readers do: anything that is a
/// JSON object is a beat, what it lacks or gets wrong is a warning. Never panics; the same bytes
/// always read the same way (no clock involved), so a reader may keep the result while the
/// bytes stay the same.
pub fn read_beat(bytes: &[u8]) -> Result<Beat, HeartbeatError> {
    if bytes.len() > MAX_HEARTBEAT_BYTES {
        return Err(HeartbeatError::TooLarge { len: bytes.len() });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| HeartbeatError::NotUtf8)?;
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| HeartbeatError::InvalidJson(truncate(&e.to_string())))?;
    let obj = value.as_object().ok_or(HeartbeatError::NotAnObject)?;
    let mut warning = None;
    let mut warn = |w: BeatWarning| {
        warning.get_or_insert(w);
    };
    let mut text_field = |name: &'static str, required: bool| match obj.get(name) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        None | Some(serde_json::Value::Null) => {
            if required {
                warn(BeatWarning::Missing(name));
            }
            None
        }
        Some(_) => {
            warn(BeatWarning::WrongType(name));
            None
        }
    };
    let name = text_field("name", true);
    let kind_text = text_field("kind", true);
    let state_text = text_field("state", true);
    let ts_text = text_field("ts", true);
    let last_job_at = text_field("last_job_at", false);
    let mode = text_field("mode", false);
    let mut count = |name: &'static str| match obj.get(name) {
        Some(v) => v.as_u64().unwrap_or_else(|| {
            warn(BeatWarning::WrongType(name));
            0
        }),
        None => {
            warn(BeatWarning::Missing(name));
            0
        }
    };
    let jobs_done = count("jobs_done");
    let jobs_failed = count("jobs_failed");
    let kind = match kind_text.as_deref().map(|k| (k, WorkerKind::parse(k))) {
        Some((_, Some(kind))) => kind,
        Some((k, None)) => {
            warn(BeatWarning::UnknownKind(truncate(k)));
            WorkerKind::Unknown
        }
        None => WorkerKind::Unknown,
    };
    let state = state_text.map(|s| WorkerState::parse(&truncate(&s)));
    if let Some(state) = &state {
        if kind != WorkerKind::Unknown && !kind.allows(state) {
            warn(BeatWarning::UnknownState {
                kind: kind.as_str(),
                state: state.as_str().to_string(),
            });
        }
    }
    let ts = ts_text.and_then(|t| match DateTime::parse_from_rfc3339(&t) {
        Ok(ts) => Some(ts.with_timezone(&Utc)),
        Err(_) => {
            warn(BeatWarning::BadTimestamp(truncate(&t)));
            None
        }
    });
    Ok(Beat {
        name: name.map(|n| truncate(&n)),
        kind,
        state,
        ts,
        last_job_at: last_job_at.map(|t| truncate(&t)),
        jobs_done,
        jobs_failed,
        mode: mode.map(|m| truncate(&m)),
        warning,
    })
}

/// The strict reading: a beat with every field of the contract right, and a `ts` at most
/// [`MAX_CLOCK_SKEW_S`] ahead of `now` (writers and the agent's own checks use it).
pub fn parse_heartbeat(bytes: &[u8], now: DateTime<Utc>) -> Result<Heartbeat, HeartbeatError> {
    let beat = read_beat(bytes)?;
    if let Some(w) = beat.warning {
        return Err(HeartbeatError::Incomplete(w));
    }
    let (Some(name), Some(state), Some(ts)) = (beat.name, beat.state, beat.ts) else {
        return Err(HeartbeatError::Incomplete(BeatWarning::Missing("name")));
    };
    let ahead = ts - now;
    if ahead > TimeDelta::seconds(MAX_CLOCK_SKEW_S) {
        return Err(HeartbeatError::FutureTimestamp {
            ahead_s: ahead.num_seconds(),
        });
    }
    Ok(Heartbeat {
        name,
        kind: beat.kind,
        state,
        ts,
        last_job_at: beat.last_job_at,
        jobs_done: beat.jobs_done,
        jobs_failed: beat.jobs_failed,
        mode: beat.mode,
    })
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn beat(kind: &str, state: &str, ts: &str) -> String {
        format!(
            r#"{{"name":"w","kind":"{kind}","state":"{state}","ts":"{ts}","last_job_at":null,"jobs_done":4,"jobs_failed":1}}"#
        )
    }

    #[test]
    fn accepts_every_contract_state() {
        for (i, kind) in WorkerKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i, "ALL is in declaration order");
            if kind == WorkerKind::Unknown {
                continue; // never accepted from a heartbeat
            }
            for state in kind.states() {
                let bytes = beat(kind.as_str(), state.as_str(), "2026-11-23T11:59:57Z");
                let b = read_beat(bytes.as_bytes()).unwrap();
                assert_eq!((b.kind, b.state.as_ref()), (kind, Some(state)));
                assert_eq!(b.warning, None);
                assert_eq!(b.age_s(now()), Some(3));
                let hb = parse_heartbeat(bytes.as_bytes(), now()).unwrap();
                assert_eq!((hb.jobs_done, hb.jobs_failed), (4, 1));
            }
        }
    }

    #[test]
    fn reads_optional_fields() {
        let json = r#"{"name":"task-watcher","kind":"watcher","state":"trading","ts":"2026-11-23T11:59:59.250Z","last_job_at":"2026-11-23T11:00:00Z","jobs_done":0,"jobs_failed":0,"mode":"trading"}"#;
        let hb = parse_heartbeat(json.as_bytes(), now()).unwrap();
        assert_eq!(hb.mode.as_deref(), Some("trading"));
        assert_eq!(hb.last_job_at.as_deref(), Some("2026-11-23T11:00:00Z"));
        assert_eq!(hb.age_s(now()), 0);
    }

    #[test]
    fn round_trips_through_the_writer_format() {
        let hb = parse_heartbeat(
            beat("render", "busy", "2026-11-23T11:59:00Z").as_bytes(),
            now(),
        )
        .unwrap();
        let again = parse_heartbeat(hb.to_json().as_bytes(), now()).unwrap();
        assert_eq!(hb, again);
        assert!(hb.to_json().contains(r#""ts":"2026-11-23T11:59:00Z""#));
    }

    #[test]
    fn only_what_is_not_a_json_object_is_not_a_beat() {
        type Check = fn(&HeartbeatError) -> bool;
        let cases: Vec<(Vec<u8>, Check)> = vec![
            (b"not json".to_vec(), |e| {
                matches!(e, HeartbeatError::InvalidJson(_))
            }),
            (b"".to_vec(), |e| {
                matches!(e, HeartbeatError::InvalidJson(_))
            }),
            (vec![0xff, 0xfe], |e| matches!(e, HeartbeatError::NotUtf8)),
            (b"[1,2]".to_vec(), |e| {
                matches!(e, HeartbeatError::NotAnObject)
            }),
            (b"\"idle\"".to_vec(), |e| {
                matches!(e, HeartbeatError::NotAnObject)
            }),
            (vec![b' '; MAX_HEARTBEAT_BYTES + 1], |e| {
                matches!(e, HeartbeatError::TooLarge { .. })
            }),
        ];
        for (bytes, expected) in cases {
            let err = read_beat(&bytes).unwrap_err();
            assert!(
                expected(&err),
                "{:?} gave {err:?}",
                String::from_utf8_lossy(&bytes)
            );
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn the_plans_lenient_reading_names_each_problem() {
        // The plan reads these as live beats: missing counters are 0, the state is as written.
        let b = read_beat(
            br#"{"name":"w","kind":"render","state":"starting","ts":"2026-11-23T11:59:57Z"}"#,
        )
        .unwrap();
        assert_eq!(b.state.as_ref().map(WorkerState::as_str), Some("starting"));
        assert_eq!((b.jobs_done, b.jobs_failed), (0, 0));
        assert_eq!(b.warning, Some(BeatWarning::Missing("jobs_done")));
        let b = read_beat(beat("render", "trading", "2026-11-23T11:59:57Z").as_bytes()).unwrap();
        assert!(matches!(
            b.warning,
            Some(BeatWarning::UnknownState { kind: "render", .. })
        ));
        let b = read_beat(beat("render", "idle", "yesterday").as_bytes()).unwrap();
        assert_eq!((b.ts, b.age_s(now())), (None, None));
        assert!(matches!(b.warning, Some(BeatWarning::BadTimestamp(_))));
        let b = read_beat(beat("painter", "idle", "2026-11-23T11:59:57Z").as_bytes()).unwrap();
        assert_eq!(b.kind, WorkerKind::Unknown);
        assert!(matches!(b.warning, Some(BeatWarning::UnknownKind(k)) if k == "painter"));
        let b = read_beat(br#"{"name":"w","jobs_done":"four"}"#).unwrap();
        assert_eq!(b.jobs_done, 0);
        assert!(b.warning.is_some());
        // The strict reading refuses each of them.
        for bytes in [
            beat("render", "trading", "2026-11-23T11:59:57Z"),
            beat("render", "idle", "yesterday"),
            r#"{"name":"w","kind":"render","state":"idle","ts":"2026-11-23T11:59:57Z"}"#.into(),
        ] {
            assert!(matches!(
                parse_heartbeat(bytes.as_bytes(), now()),
                Err(HeartbeatError::Incomplete(_))
            ));
        }
        assert!(matches!(
            parse_heartbeat(
                beat("render", "idle", "2026-11-23T13:00:00Z").as_bytes(),
                now()
            ),
            Err(HeartbeatError::FutureTimestamp { ahead_s: 3600 })
        ));
    }

    #[test]
    fn the_plans_own_fixture_reads_as_a_beat() {
        // The plan's test fixture: a fixed date, asserted alive by the plan's reader.
        let fixture = r#"{"name": "image-render", "kind": "render", "state": "idle", "ts": "2026-06-29T00:00:00Z", "last_job_at": null, "jobs_done": 0, "jobs_failed": 0}"#;
        let b = read_beat(fixture.as_bytes()).unwrap();
        assert_eq!(b.warning, None);
        assert_eq!(b.state, Some(WorkerState::Idle));
    }

    #[test]
    fn reasons_stay_short_for_huge_strings() {
        let state = "x".repeat(5000);
        let b = read_beat(beat("render", &state, "2026-11-23T11:59:57Z").as_bytes()).unwrap();
        let w = b.warning.unwrap().to_string();
        assert!(w.chars().count() < 250, "{w}");
        assert!(b.state.unwrap().as_str().chars().count() <= 161);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_beat(&bytes);
            let _ = parse_heartbeat(&bytes, now());
        }

        #[test]
        fn arbitrary_json_objects_never_panic(
            kind in "[a-z_]{0,12}", state in "[a-z_]{0,14}", ts in "\\PC{0,30}",
            done in any::<i64>(), extra in "\\PC{0,20}",
        ) {
            let json = serde_json::json!({
                "name": extra, "kind": kind, "state": state, "ts": ts,
                "jobs_done": done, "jobs_failed": 0,
            });
            let _ = read_beat(json.to_string().as_bytes());
            let _ = parse_heartbeat(json.to_string().as_bytes(), now());
        }
    }
}
