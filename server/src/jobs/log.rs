//! `GET /api/jobs/{id}/log`: a job's output as a `text/event-stream` — `out` and `err` events
//! carrying text, then one `end` event with the job's status. For a running job they follow
//! its live log (`agent-office:{jobs}:log:<id>`, written by the agent every 250 ms while the
//! handler writes), read every [`POLL`]; for a job that has ended, the stored tails of its
//! last attempt. Holds one of the MAX_STREAMS permits while open.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shared::jobs::record::field;
use shared::jobs::{keys, JobDetail, JobStatus};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::Jobs;
use crate::control::store::{stream_entries, StreamEntry};
use crate::error::ApiError;

/// How often a running job's live log is read.
const POLL: Duration = Duration::from_millis(250);
/// The record is looked at every this many polls, to notice an end with no live log.
const STATUS_EVERY: u32 = 4;
/// Entries read per poll.
const CHUNKS: usize = 64;

pub async fn follow(
    State(jobs): State<Jobs>,
    State(closing): State<CancellationToken>,
    State(streams): State<Arc<Semaphore>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = jobs.lookup(&id).await?;
    let slot = streams
        .try_acquire_owned()
        .map_err(|_| ApiError::Busy("too many open streams (MAX_STREAMS)".into()))?;
    let mut state = Follow {
        jobs,
        id,
        after: "0".into(),
        pending: VecDeque::new(),
        live_seen: false,
        polls: 0,
        done: false,
        _slot: slot,
    };
    if job.status.is_final() {
        state.finish(&job);
    }
    let events = futures::stream::unfold(state, move |mut s| {
        let closing = closing.clone();
        async move {
            loop {
                if let Some(e) = s.pending.pop_front() {
                    return Some((Ok::<_, Infallible>(e), s));
                }
                if s.done {
                    return None;
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = closing.cancelled() => return None,
                }
                s.poll().await;
            }
        }
    });
    Ok((
        [(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        )],
        Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))),
    )
        .into_response())
}

struct Follow {
    jobs: Jobs,
    id: String,
    /// The last live-log entry sent.
    after: String,
    pending: VecDeque<Event>,
    live_seen: bool,
    polls: u32,
    done: bool,
    _slot: OwnedSemaphorePermit,
}

impl Follow {
    /// The stored tails of the last attempt, then the end.
    fn finish(&mut self, job: &JobDetail) {
        if let Some(a) = job.attempts.last() {
            if !a.stdout_tail.is_empty() {
                self.pending
                    .push_back(Event::default().event("out").data(&a.stdout_tail));
            }
            if !a.stderr_tail.is_empty() {
                self.pending
                    .push_back(Event::default().event("err").data(&a.stderr_tail));
            }
        }
        self.end(&job.status);
    }

    fn end(&mut self, status: &JobStatus) {
        let data = json!({"status": status}).to_string();
        self.pending
            .push_back(Event::default().event("end").data(data));
        self.done = true;
    }

    /// Reads what the live log gained; every few polls, whether the job ended without one.
    async fn poll(&mut self) {
        self.polls += 1;
        let key = keys::live_log(&self.id);
        let from = format!("({}", self.after);
        let read = self
            .jobs
            .store
            .run(|mut c| async move {
                redis::cmd("XRANGE")
                    .arg(key)
                    .arg(from)
                    .arg("+")
                    .arg("COUNT")
                    .arg(CHUNKS)
                    .query_async::<redis::Value>(&mut c)
                    .await
            })
            .await;
        match read {
            Ok(v) => {
                for entry in stream_entries(v) {
                    self.take(entry);
                }
            }
            // Redis away for a moment: the next poll tries again.
            Err(e) => tracing::debug!(job = %self.id, "live log: {e}"),
        }
        if self.done || !self.polls.is_multiple_of(STATUS_EVERY) {
            return;
        }
        // Only the status each second (one HGET); the whole record once, when it has ended.
        let key = keys::record(&self.id);
        let status = self
            .jobs
            .store
            .run(|mut c| async move {
                redis::cmd("HGET")
                    .arg(key)
                    .arg(field::STATUS)
                    .query_async::<Option<String>>(&mut c)
                    .await
            })
            .await;
        let Ok(Some(status)) = status.map(|s| s.map(|s| JobStatus::parse(&s))) else {
            return;
        };
        if !status.is_final() {
            return;
        }
        if self.live_seen {
            // Its end entry is due on the live log; give it one more look, then stop.
            if self.polls.is_multiple_of(STATUS_EVERY * 2) {
                self.end(&status);
            }
        } else if let Ok(job) = self.jobs.lookup(&self.id).await {
            self.finish(&job);
        }
    }

    fn take(&mut self, (entry_id, fields): StreamEntry) {
        self.after = entry_id;
        for (name, value) in fields {
            match name.as_str() {
                "out" | "err" => {
                    self.live_seen = true;
                    let text = String::from_utf8_lossy(&value);
                    self.pending
                        .push_back(Event::default().event(name).data(text));
                }
                "end" => {
                    let status = JobStatus::parse(&String::from_utf8_lossy(&value));
                    self.end(&status);
                    return;
                }
                _ => {}
            }
        }
    }
}
