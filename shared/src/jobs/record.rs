//! A job's history record as the agent writes it to Redis and the server reads it back
//! (Contract 4's rows and detail), with every cap in one place.
//!
//! The record is a hash `agent-office:{jobs}:job:<id>` (see [`super::keys`]) with the fields
//! named in [`field`]; attempt `n` adds `a:<n>` (its facts as JSON) and `o:<n>` / `e:<n>` (the
//! tails of its stdout and stderr). Reading a record never fails: a field that is missing or
//! garbled reads as absent.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::JobStatus;

/// Bytes of stdout and of stderr kept per attempt (the tail: a longer output is cut at its
/// start, never stored whole).
pub const TAIL_CAP: usize = 16 * 1024;
/// Bytes of the raw item kept in the record (the retry action puts it back from there).
pub const ITEM_CAP: usize = 16 * 1024;
/// Bytes of the payload the API shows.
pub const PAYLOAD_SHOWN: usize = 4 * 1024;
/// Attempts kept per record: older ones are dropped when a job is tried more often.
pub const ATTEMPTS_KEPT: u32 = 10;
/// Longest reason kept.
pub const REASON_CAP: usize = 1024;

/// The record's field names.
pub mod field {
    pub const ID: &str = "id";
    pub const QUEUE: &str = "queue";
    pub const STATUS: &str = "status";
    pub const REASON: &str = "reason";
    pub const ATTEMPTS: &str = "attempts";
    pub const AGENT: &str = "agent_id";
    pub const STARTED: &str = "started_at";
    pub const FINISHED: &str = "finished_at";
    pub const DURATION: &str = "duration_ms";
    pub const EXIT: &str = "exit_code";
    pub const ITEM: &str = "item";
    /// `1` when the item was longer than [`super::ITEM_CAP`] and `item` holds its start.
    pub const ITEM_CUT: &str = "item_cut";
    pub const DEADLINE: &str = "deadline";
    /// JSON array of ids.
    pub const DEPENDS: &str = "depends_on";

    pub fn attempt(n: u32) -> String {
        format!("a:{n}")
    }
    pub fn stdout(n: u32) -> String {
        format!("o:{n}")
    }
    pub fn stderr(n: u32) -> String {
        format!("e:{n}")
    }
}

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Running,
    Succeeded,
    /// Exited non-zero or by a signal.
    Failed,
    TimedOut,
    /// The agent stopped before it finished: the job went back to its queue.
    GivenBack,
}

/// One attempt's facts (`a:<n>`); the tails live beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptFacts {
    pub n: u32,
    pub agent_id: String,
    pub started_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    pub outcome: Outcome,
}

/// A row of `GET /api/jobs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    pub id: String,
    pub queue: String,
    pub status: JobStatus,
    pub reason: Option<String>,
    pub attempts: u32,
    pub agent_id: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i32>,
}

/// `GET /api/jobs`: newest first, and where the next page starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobsReply {
    pub jobs: Vec<JobRow>,
    pub next_cursor: Option<String>,
}

/// An attempt as `GET /api/jobs/{id}` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub n: u32,
    pub agent_id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub exit_code: Option<i32>,
    pub outcome: Outcome,
    pub stdout_tail: String,
    pub stderr_tail: String,
}

/// `GET /api/jobs/{id}`: the row, the payload (capped), and every kept attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobDetail {
    pub id: String,
    pub queue: String,
    pub status: JobStatus,
    pub reason: Option<String>,
    pub agent_id: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub payload: Option<String>,
    /// The payload shown is the start of a longer one.
    pub payload_cut: bool,
    pub deadline: Option<String>,
    pub depends_on: Vec<String>,
    pub attempts: Vec<Attempt>,
}

/// A record's fields as Redis returned them (`HGETALL`).
pub type Fields = HashMap<String, Vec<u8>>;

fn text(f: &Fields, name: &str) -> Option<String> {
    f.get(name)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn number<T: std::str::FromStr>(f: &Fields, name: &str) -> Option<T> {
    std::str::from_utf8(f.get(name)?).ok()?.trim().parse().ok()
}

/// The row of a record; `None` when it has no status (not a record this version wrote).
pub fn row(id: &str, f: &Fields) -> Option<JobRow> {
    Some(JobRow {
        id: id.to_string(),
        queue: text(f, field::QUEUE).unwrap_or_default(),
        status: JobStatus::parse(&text(f, field::STATUS)?),
        reason: text(f, field::REASON),
        attempts: number(f, field::ATTEMPTS).unwrap_or(0),
        agent_id: text(f, field::AGENT),
        started_at: text(f, field::STARTED),
        finished_at: text(f, field::FINISHED),
        duration_ms: number(f, field::DURATION),
        exit_code: number(f, field::EXIT),
    })
}

/// The detail of a record, attempts oldest first.
pub fn detail(id: &str, f: &Fields) -> Option<JobDetail> {
    let r = row(id, f)?;
    let item = f.get(field::ITEM).map(Vec::as_slice).unwrap_or_default();
    let read = super::read_item(item);
    let payload_cut =
        f.get(field::ITEM_CUT).is_some_and(|v| v == b"1") || read.payload.len() > PAYLOAD_SHOWN;
    let payload = (!item.is_empty()).then(|| cut_start(&read.payload, PAYLOAD_SHOWN));
    let depends_on = f
        .get(field::DEPENDS)
        .and_then(|v| serde_json::from_slice::<Vec<String>>(v).ok())
        .unwrap_or_default();
    let mut attempts: Vec<Attempt> = f
        .iter()
        .filter(|(k, _)| k.starts_with("a:"))
        .filter_map(|(_, v)| serde_json::from_slice::<AttemptFacts>(v).ok())
        .map(|a| Attempt {
            stdout_tail: text(f, &field::stdout(a.n)).unwrap_or_default(),
            stderr_tail: text(f, &field::stderr(a.n)).unwrap_or_default(),
            n: a.n,
            agent_id: a.agent_id,
            started_at: a.started_at,
            finished_at: a.finished_at,
            exit_code: a.exit_code,
            outcome: a.outcome,
        })
        .collect();
    attempts.sort_by_key(|a| a.n);
    Some(JobDetail {
        id: r.id,
        queue: r.queue,
        status: r.status,
        reason: r.reason,
        agent_id: r.agent_id,
        started_at: r.started_at,
        finished_at: r.finished_at,
        duration_ms: r.duration_ms,
        exit_code: r.exit_code,
        payload,
        payload_cut,
        deadline: text(f, field::DEADLINE),
        depends_on,
        attempts,
    })
}

/// The first `cap` bytes as text (never cutting a character in two).
pub fn cut_start(bytes: &[u8], cap: usize) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(cap)]);
    s.trim_end_matches('\u{FFFD}').to_string()
}

/// The last `cap` bytes, starting at a character boundary when the bytes are UTF-8.
pub fn tail(bytes: &[u8], cap: usize) -> &[u8] {
    let mut start = bytes.len().saturating_sub(cap);
    // skip UTF-8 continuation bytes so the tail starts on a character
    while start < bytes.len() && start > 0 && (bytes[start] & 0xC0) == 0x80 {
        start += 1;
    }
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_record_reads_back_as_its_row_and_detail() {
        let a1 = r#"{"n":1,"agent_id":"a","started_at":"2026-12-07T01:00:00Z","finished_at":"2026-12-07T01:00:01Z","exit_code":1,"outcome":"failed"}"#;
        let a2 =
            r#"{"n":2,"agent_id":"b","started_at":"2026-12-07T01:00:02Z","outcome":"running"}"#;
        let f = fields(&[
            ("queue", "image-render"),
            ("status", "running"),
            ("attempts", "2"),
            ("agent_id", "b"),
            (
                "item",
                r#"{"id":"j1","payload":"frame 7","depends_on":["j0"]}"#,
            ),
            ("depends_on", r#"["j0"]"#),
            ("a:2", a2),
            ("a:1", a1),
            ("e:1", "boom"),
            ("o:2", "half way"),
            ("exit_code", "garbage"),
        ]);
        let r = row("j1", &f).unwrap();
        assert_eq!(r.status, JobStatus::Running);
        assert_eq!(r.attempts, 2);
        assert_eq!(r.exit_code, None, "a garbled number reads as absent");
        let d = detail("j1", &f).unwrap();
        assert_eq!(d.payload.as_deref(), Some("frame 7"));
        assert_eq!(d.depends_on, ["j0"]);
        assert_eq!(d.attempts.len(), 2);
        assert_eq!(d.attempts[0].stderr_tail, "boom");
        assert_eq!(d.attempts[0].outcome, Outcome::Failed);
        assert_eq!(d.attempts[1].stdout_tail, "half way");
        assert!(row("x", &fields(&[("queue", "q")])).is_none());
    }

    #[test]
    fn tails_and_starts_never_split_a_character() {
        let s = "ab한글".as_bytes();
        assert_eq!(tail(s, 4), "글".as_bytes());
        assert_eq!(tail(s, 100), s);
        assert_eq!(cut_start(s, 4), "ab");
        assert_eq!(tail(&[0x80, 0x80], 1), b"");
    }
}
