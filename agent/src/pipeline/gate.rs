//! Whether a job taken from the queue may run now (SPEC §10): a malformed envelope or a
//! passed deadline ends it at once, and a job whose dependencies have not all succeeded waits.
//! The decision is a pure function of the item, the time and the dependencies' statuses; the
//! statuses are read in one pipelined round trip.

use crate::redis_target::Conn;
use chrono::{DateTime, Utc};
use shared::jobs::{keys, Item, JobStatus};
use shared::time::format_ts;

/// What to do with a job taken from the queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    Run,
    /// Its dependencies are not all done: park it until they are (the first one not done).
    Wait(String),
    /// End it without running: `dead` (bad envelope, a dependency failed) or `expired`.
    End(JobStatus, String),
}

/// The gate before any Redis read: a problem or a passed deadline ends the job.
pub fn before_reading(item: &Item<'_>, now: DateTime<Utc>) -> Option<Gate> {
    if let Some(problem) = &item.problem {
        return Some(Gate::End(JobStatus::Dead, problem.clone()));
    }
    if let Some(d) = item.deadline {
        if d <= now {
            return Some(Gate::End(
                JobStatus::Expired,
                format!("deadline {} passed before it ran", format_ts(d)),
            ));
        }
    }
    None
}

/// The gate once the dependencies' statuses are known (in `depends_on` order; `None`: no
/// record of that job yet).
pub fn by_dependencies(depends_on: &[String], statuses: &[Option<JobStatus>]) -> Gate {
    for (id, s) in depends_on.iter().zip(statuses) {
        if s.as_ref().is_some_and(JobStatus::is_failure) {
            return Gate::End(JobStatus::Dead, format!("dependency failed: {id}"));
        }
    }
    for (id, s) in depends_on.iter().zip(statuses) {
        if s.as_ref() != Some(&JobStatus::Succeeded) {
            return Gate::Wait(id.clone());
        }
    }
    Gate::Run
}

/// The whole gate for a job: pure checks first, then the dependencies read from Redis.
pub async fn check(conn: &mut Conn, item: &Item<'_>) -> redis::RedisResult<Gate> {
    if let Some(g) = before_reading(item, Utc::now()) {
        return Ok(g);
    }
    if item.depends_on.is_empty() {
        return Ok(Gate::Run);
    }
    let statuses = statuses(conn, &item.depends_on).await?;
    Ok(by_dependencies(&item.depends_on, &statuses))
}

/// The statuses of some jobs, one round trip.
pub async fn statuses(
    conn: &mut Conn,
    ids: &[String],
) -> redis::RedisResult<Vec<Option<JobStatus>>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = redis::pipe();
    for id in ids {
        p.cmd("HGET").arg(keys::record(id)).arg("status");
    }
    let found: Vec<Option<String>> = p.query_async(conn).await?;
    Ok(found
        .into_iter()
        .map(|s| s.map(|s| JobStatus::parse(&s)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::jobs::read_item;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn deadlines_and_bad_envelopes_end_a_job_before_it_runs() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let late = read_item(br#"{"id":"a","deadline":"2026-12-07T09:59:59Z"}"#);
        assert_eq!(
            before_reading(&late, now),
            Some(Gate::End(
                JobStatus::Expired,
                "deadline 2026-12-07T09:59:59Z passed before it ran".into()
            ))
        );
        let on_time = read_item(br#"{"id":"a","deadline":"2026-12-07T10:00:01Z"}"#);
        assert_eq!(before_reading(&on_time, now), None);
        let bad = read_item(br#"{"id":"a","depends_on":"b"}"#);
        assert!(matches!(
            before_reading(&bad, now),
            Some(Gate::End(JobStatus::Dead, _))
        ));
    }

    #[test]
    fn a_job_waits_for_every_dependency_and_dies_with_the_first_failed_one() {
        use JobStatus::*;
        let deps = ids(&["a", "b"]);
        assert_eq!(
            by_dependencies(&deps, &[Some(Succeeded), Some(Succeeded)]),
            Gate::Run
        );
        assert_eq!(
            by_dependencies(&deps, &[Some(Succeeded), None]),
            Gate::Wait("b".into())
        );
        assert_eq!(
            by_dependencies(&deps, &[Some(Running), Some(Retrying)]),
            Gate::Wait("a".into())
        );
        assert_eq!(
            by_dependencies(&deps, &[None, Some(Expired)]),
            Gate::End(Dead, "dependency failed: b".into())
        );
        assert_eq!(
            by_dependencies(&deps, &[Some(Dead), None]),
            Gate::End(Dead, "dependency failed: a".into())
        );
    }
}
