//! Contract 1: the heartbeat a worker writes to `worker:<name>:heartbeat` (SPEC §1).
//!
//! Readers must survive anything in that key, so [`parse_heartbeat`] never panics and says
//! exactly why a value is not a valid heartbeat.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::worker::HEARTBEAT_TTL_S;
pub use crate::worker::{WorkerKind, WorkerState};

/// Values larger than this are rejected before any JSON parsing: a real heartbeat is ~200 bytes.
pub const MAX_HEARTBEAT_BYTES: usize = 8 * 1024;

/// How far a heartbeat's `ts` may lie in the future (writer clock ahead of ours) and still count.
pub const MAX_CLOCK_SKEW_S: i64 = 60;
/// A heartbeat older than this is not alive, whatever its key's TTL (SPEC §1: `EX 45`), so a
/// key a writer left without a TTL does not keep a dead worker alive.
pub const ALIVE_WINDOW_S: i64 = HEARTBEAT_TTL_S as i64;

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

#[derive(Deserialize)]
struct WireIn {
    name: String,
    kind: String,
    state: String,
    ts: String,
    #[serde(default)]
    last_job_at: Option<String>,
    jobs_done: u64,
    jobs_failed: u64,
    #[serde(default)]
    mode: Option<String>,
}

/// Why a value is not a valid heartbeat. The text is meant for operators.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    /// `len` is what was read: readers stop one byte past the limit.
    #[error("heartbeat is over the {MAX_HEARTBEAT_BYTES}-byte limit (too large)")]
    TooLarge { len: usize },
    #[error("heartbeat is not UTF-8")]
    NotUtf8,
    #[error("heartbeat is not JSON: {0}")]
    InvalidJson(String),
    #[error("heartbeat has the wrong shape: {0}")]
    WrongShape(String),
    #[error("unknown kind {0:?}")]
    UnknownKind(String),
    #[error("unknown state {state:?} for kind {kind}")]
    UnknownState { kind: &'static str, state: String },
    #[error("ts {0:?} is not an ISO-8601 UTC time")]
    BadTimestamp(String),
    #[error("ts is {ahead_s} s in the future")]
    FutureTimestamp { ahead_s: i64 },
}

/// Parses and validates the bytes stored in a heartbeat key.
pub fn parse_heartbeat(bytes: &[u8], now: DateTime<Utc>) -> Result<Heartbeat, HeartbeatError> {
    match parse_heartbeat_skewed(bytes, now)? {
        (_, Some(ahead_s)) => Err(HeartbeatError::FutureTimestamp { ahead_s }),
        (hb, None) => Ok(hb),
    }
}

/// Like [`parse_heartbeat`], but a `ts` more than [`MAX_CLOCK_SKEW_S`] ahead of `now` is
/// returned with how far ahead it is instead of as an error: the collector shows such a
/// worker alive while its key lives, with a warning, rather than raising a down alert for
/// every worker of a host whose clock runs fast.
pub fn parse_heartbeat_skewed(
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<(Heartbeat, Option<i64>), HeartbeatError> {
    let hb = decode_heartbeat(bytes)?;
    let ahead = skew_s(&hb, now);
    Ok((hb, ahead))
}

/// How far `hb.ts` is ahead of `now`, in seconds, when that is beyond [`MAX_CLOCK_SKEW_S`].
pub fn skew_s(hb: &Heartbeat, now: DateTime<Utc>) -> Option<i64> {
    let ahead = hb.ts - now;
    (ahead > TimeDelta::seconds(MAX_CLOCK_SKEW_S)).then(|| ahead.num_seconds())
}

/// Everything [`parse_heartbeat`] checks that does not depend on the clock: the same bytes
/// always decode the same way, so a reader may keep the result while the bytes stay the same.
pub fn decode_heartbeat(bytes: &[u8]) -> Result<Heartbeat, HeartbeatError> {
    if bytes.len() > MAX_HEARTBEAT_BYTES {
        return Err(HeartbeatError::TooLarge { len: bytes.len() });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| HeartbeatError::NotUtf8)?;
    let wire: WireIn = serde_json::from_str(text).map_err(|e| {
        let reason = truncate(&e.to_string());
        if e.is_data() {
            HeartbeatError::WrongShape(reason)
        } else {
            HeartbeatError::InvalidJson(reason)
        }
    })?;
    let kind = WorkerKind::parse(&wire.kind)
        .ok_or_else(|| HeartbeatError::UnknownKind(truncate(&wire.kind)))?;
    let state = WorkerState::parse(&wire.state);
    if !kind.allows(&state) {
        return Err(HeartbeatError::UnknownState {
            kind: kind.as_str(),
            state: truncate(&wire.state),
        });
    }
    let ts = DateTime::parse_from_rfc3339(&wire.ts)
        .map_err(|_| HeartbeatError::BadTimestamp(truncate(&wire.ts)))?
        .with_timezone(&Utc);
    Ok(Heartbeat {
        name: wire.name,
        kind,
        state,
        ts,
        last_job_at: wire.last_job_at,
        jobs_done: wire.jobs_done,
        jobs_failed: wire.jobs_failed,
        mode: wire.mode,
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
                let hb = parse_heartbeat(
                    beat(kind.as_str(), state.as_str(), "2026-11-23T11:59:57Z").as_bytes(),
                    now(),
                )
                .unwrap();
                assert_eq!(hb.kind, kind);
                assert_eq!(hb.state, *state);
                assert_eq!(hb.age_s(now()), 3);
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
    fn names_each_kind_of_garbage() {
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
                matches!(e, HeartbeatError::WrongShape(_))
            }),
            (br#"{"name":"w"}"#.to_vec(), |e| {
                matches!(e, HeartbeatError::WrongShape(_))
            }),
            (
                beat("render", "idle", "2026-11-23T11:59:57Z")
                    .replace("4", "\"four\"")
                    .into_bytes(),
                |e| matches!(e, HeartbeatError::WrongShape(_)),
            ),
            (
                beat("painter", "idle", "2026-11-23T11:59:57Z").into_bytes(),
                |e| matches!(e, HeartbeatError::UnknownKind(k) if k == "painter"),
            ),
            (
                beat("render", "trading", "2026-11-23T11:59:57Z").into_bytes(),
                |e| matches!(e, HeartbeatError::UnknownState { kind: "render", .. }),
            ),
            (beat("render", "idle", "yesterday").into_bytes(), |e| {
                matches!(e, HeartbeatError::BadTimestamp(_))
            }),
            (
                beat("render", "idle", "2026-11-23T13:00:00Z").into_bytes(),
                |e| matches!(e, HeartbeatError::FutureTimestamp { ahead_s: 3600 }),
            ),
            (vec![b' '; MAX_HEARTBEAT_BYTES + 1], |e| {
                matches!(e, HeartbeatError::TooLarge { .. })
            }),
        ];
        for (bytes, expected) in cases {
            let err = parse_heartbeat(&bytes, now()).unwrap_err();
            assert!(
                expected(&err),
                "{:?} gave {err:?}",
                String::from_utf8_lossy(&bytes)
            );
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn small_clock_skew_is_tolerated_as_age_zero() {
        let hb = parse_heartbeat(
            beat("trader", "market_open", "2026-11-23T12:00:30Z").as_bytes(),
            now(),
        )
        .unwrap();
        assert_eq!(hb.age_s(now()), 0);
    }

    #[test]
    fn reasons_stay_short_for_huge_strings() {
        let state = "x".repeat(5000);
        let err = parse_heartbeat(
            beat("render", &state, "2026-11-23T11:59:57Z").as_bytes(),
            now(),
        )
        .unwrap_err();
        assert!(err.to_string().chars().count() < 250, "{err}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
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
            let _ = parse_heartbeat(json.to_string().as_bytes(), now());
        }
    }
}
