//! Schedules (SPEC §11, Contract 5): the bodies and answers of `/api/schedules`. The cron
//! arithmetic lives in the server (it needs the time-zone database); these are the shapes the
//! server, the page and other programs share.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest `job` accepted (its JSON text).
pub const MAX_JOB_BYTES: usize = 64 * 1024;
/// Most schedules one installation keeps.
pub const MAX_SCHEDULES: usize = 1_000;

/// What `POST /api/schedules` and `PUT /api/schedules/{name}` take.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// Required on POST; on PUT, when given, it must be the path's.
    #[serde(default)]
    pub name: Option<String>,
    /// 5 fields, or 6 with seconds first.
    pub cron: String,
    /// An IANA time zone (`Asia/Seoul`); UTC when left out.
    #[serde(default)]
    pub timezone: Option<String>,
    pub queue: String,
    /// The item to push: a string (it becomes the payload) or an envelope without `id`.
    pub job: Value,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A schedule as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub queue: String,
    pub job: Value,
    pub enabled: bool,
    /// Due times before this are never pushed (a new schedule does not catch up on its past).
    pub created_at: String,
}

/// A schedule as `GET /api/schedules` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleView {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub queue: String,
    pub job: Value,
    pub enabled: bool,
    pub next_run_at: Option<String>,
    /// The next three due times (the page's preview).
    pub next_runs: Vec<String>,
    pub last_run_at: Option<String>,
    pub last_job_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedulesReply {
    pub schedules: Vec<ScheduleView>,
}

/// `GET /api/schedules/preview?cron=&timezone=`: the next due times of an expression.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PreviewReply {
    pub next_runs: Vec<String>,
}

/// The id of the job a schedule pushes for one due time: `sched:<name>:<due, RFC 3339 UTC>`.
pub fn job_id(name: &str, due: &str) -> String {
    format!("sched:{name}:{due}")
}

/// The item pushed for one due time: the schedule's `job` as an envelope with that id (a
/// string job becomes its payload).
pub fn item(job: &Value, id: &str) -> String {
    let mut envelope = match job {
        Value::Object(m) => m.clone(),
        other => {
            let mut m = serde_json::Map::new();
            m.insert("payload".into(), other.clone());
            m
        }
    };
    envelope.insert("id".into(), Value::String(id.to_string()));
    Value::Object(envelope).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_due_time_becomes_one_envelope_with_its_id() {
        let id = job_id("nightly", "2026-12-07T03:00:00Z");
        assert_eq!(id, "sched:nightly:2026-12-07T03:00:00Z");
        assert!(crate::jobs::is_valid_id(&id));
        let plain = item(&json!("thumbnails"), &id);
        let read = crate::jobs::read_item(plain.as_bytes());
        assert_eq!(read.id, id);
        assert_eq!(read.payload.as_ref(), b"thumbnails");
        let env = item(
            &json!({"payload": {"frame": 1}, "deadline": "2099-01-01T00:00:00Z"}),
            &id,
        );
        let read = crate::jobs::read_item(env.as_bytes());
        assert_eq!(read.id, id);
        assert_eq!(read.payload.as_ref(), br#"{"frame":1}"#);
        assert!(read.deadline.is_some());
    }
}
