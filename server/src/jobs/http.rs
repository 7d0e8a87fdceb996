//! Contract 4's endpoints: `GET /api/jobs` (list and search, from the index), `GET
//! /api/jobs/{id}` (one record, one Redis call), `POST /api/jobs/{id}/retry` (operator,
//! audited), plus the live log and events streams.

use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::jobs::{JobDetail, JobStatus, JobsReply};

use super::index::Filter;
use super::{events, log, retry, Jobs};
use crate::control::call::{action, Call};
use crate::control::Control;
use crate::error::ApiError;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Rows per page unless asked, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
/// Longest search text.
const MAX_Q: usize = 200;

pub fn router<S>() -> Router<S>
where
    Jobs: FromRef<S>,
    Control: FromRef<S>,
    CancellationToken: FromRef<S>,
    Arc<Semaphore>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/jobs", get(list))
        .route("/api/jobs/{id}", get(one))
        .route("/api/jobs/{id}/log", get(log::follow))
        .route("/api/jobs/{id}/retry", post(retry_job))
        .route("/api/events", get(events::stream))
}

action!(RetryJob, "job.retry", Operator, Always);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub queue: Option<String>,
    /// One status or several, comma-separated (`dead,expired`).
    pub status: Option<String>,
    pub q: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The filter this query asks for, or the field at fault.
    pub fn filter(&self) -> Result<(Filter, usize), ApiError> {
        let statuses = match self.status.as_deref().filter(|s| !s.is_empty()) {
            None => Vec::new(),
            Some(s) => s
                .split(',')
                .map(|w| match JobStatus::parse(w.trim()) {
                    JobStatus::Other(o) => Err(ApiError::field(
                        "status",
                        format!("{o:?} is not a status (waiting, running, retrying, succeeded, dead, expired)"),
                    )),
                    known => Ok(known),
                })
                .collect::<Result<_, _>>()?,
        };
        let q = self.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
        if q.is_some_and(|q| q.len() > MAX_Q) {
            return Err(ApiError::field("q", format!("at most {MAX_Q} bytes")));
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::field("limit", format!("must be 1..={MAX_LIMIT}")));
        }
        let queue = self.queue.clone().filter(|q| !q.is_empty());
        Ok((
            Filter {
                queue,
                statuses,
                q: q.map(str::to_lowercase),
            },
            limit,
        ))
    }
}

/// Newest first; filtering and searching run over the index off the async threads.
async fn list(
    State(jobs): State<Jobs>,
    Query(query): Query<ListQuery>,
) -> Result<Json<JobsReply>, ApiError> {
    let (filter, limit) = query.filter()?;
    let cursor = query.cursor.clone();
    let page = tokio::task::spawn_blocking(move || jobs.page(&filter, limit, cursor.as_deref()))
        .await
        .map_err(|e| ApiError::Internal(format!("listing jobs: {e}")))?;
    Ok(Json(JobsReply {
        jobs: page.rows,
        next_cursor: page.next_cursor,
    }))
}

async fn one(
    State(jobs): State<Jobs>,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>, ApiError> {
    Ok(Json(jobs.lookup(&id).await?))
}

async fn retry_job(
    call: Call<RetryJob>,
    State(jobs): State<Jobs>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let result = async {
        super::check_id(&id)?;
        let moved = retry::retry(&jobs.store, &id).await?;
        tracing::info!(job = %id, "job retried by an operator");
        Ok(Json(json!({ "moved": moved })))
    }
    .await;
    call.record(result).await
}
