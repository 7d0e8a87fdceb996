//! Contract 5's schedule endpoints (SPEC §11): the list with each schedule's next three due
//! times and the job it last pushed, a preview of an expression's next times, and create /
//! replace / delete for the operator (audited). A bad cron expression, time zone, queue or
//! job is a 400 naming the field.

use axum::body::Body;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use shared::control::valid::{self, FieldError};
use shared::schedules::{
    item, job_id, PreviewReply, Schedule, ScheduleBody, ScheduleView, SchedulesReply,
    MAX_JOB_BYTES, MAX_SCHEDULES,
};
use shared::time::format_ts;

use super::cron::{plan, Plan};
use super::{store, Schedules};
use crate::control::call::{action, Call};
use crate::control::{read_json, Control};
use crate::error::ApiError;

/// Due times the preview lists.
const PREVIEW: usize = 5;

pub fn router<S>() -> Router<S>
where
    Schedules: FromRef<S>,
    Control: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/schedules", get(list).post(create))
        .route("/api/schedules/preview", get(preview))
        .route(
            "/api/schedules/{name}",
            axum::routing::put(replace).delete(remove),
        )
}

action!(CreateSchedule, "schedule.create", Operator, Always);
action!(ReplaceSchedule, "schedule.update", Operator, Always);
action!(DeleteSchedule, "schedule.delete", Operator, Always);

async fn list(State(s): State<Schedules>) -> Result<Json<SchedulesReply>, ApiError> {
    Ok(Json(s.reply().await?))
}

#[derive(Deserialize)]
struct PreviewQuery {
    cron: String,
    timezone: Option<String>,
}

async fn preview(Query(q): Query<PreviewQuery>) -> Result<Json<PreviewReply>, ApiError> {
    let p = plan(&q.cron, q.timezone.as_deref())?;
    Ok(Json(PreviewReply {
        next_runs: p
            .next_runs(Utc::now(), PREVIEW)
            .into_iter()
            .map(format_ts)
            .collect(),
    }))
}

async fn create(
    call: Call<CreateSchedule>,
    State(s): State<Schedules>,
    body: Body,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    let result = async {
        let body: ScheduleBody = read_json(body).await?;
        let name = body.name.clone().ok_or_else(|| ApiError::field("name", "is required"))?;
        let (schedule, p) = checked(&name, body)?;
        if store::count(&s.store).await? >= MAX_SCHEDULES {
            return Err(ApiError::Conflict(format!("at most {MAX_SCHEDULES} schedules")));
        }
        if !store::put(&s.store, &schedule, true).await? {
            return Err(ApiError::Conflict(format!("a schedule {name} exists: PUT /api/schedules/{name} replaces it")));
        }
        tracing::info!(schedule = %name, cron = %schedule.cron, queue = %schedule.queue, "schedule created");
        Ok((StatusCode::CREATED, Json(view(&schedule, &p, None))))
    }
    .await;
    call.record(result).await
}

async fn replace(
    call: Call<ReplaceSchedule>,
    State(s): State<Schedules>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<ScheduleView>, ApiError> {
    let result = async {
        let body: ScheduleBody = read_json(body).await?;
        if body.name.as_deref().is_some_and(|n| n != name) {
            return Err(ApiError::field(
                "name",
                "differs from the path; a schedule cannot be renamed",
            ));
        }
        let (mut schedule, p) = checked(&name, body)?;
        // Its past stays its past: created_at is kept, so no due time before it is pushed.
        let (old, last) = store::all(&s.store).await?;
        let Some(before) = old.into_iter().find(|o| o.name == name) else {
            return Err(ApiError::NotFound(format!("no schedule {name}")));
        };
        schedule.created_at = before.created_at;
        if !store::put(&s.store, &schedule, false).await? {
            return Err(ApiError::NotFound(format!("no schedule {name}")));
        }
        tracing::info!(schedule = %name, enabled = schedule.enabled, "schedule replaced");
        Ok(Json(view(&schedule, &p, last.get(&name).copied())))
    }
    .await;
    call.record(result).await
}

async fn remove(
    call: Call<DeleteSchedule>,
    State(s): State<Schedules>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let result = async {
        if store::delete(&s.store, &name).await? {
            tracing::info!(schedule = %name, "schedule deleted");
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(ApiError::NotFound(format!("no schedule {name}")))
        }
    }
    .await;
    call.record(result).await
}

/// A body checked field by field into the schedule it describes.
fn checked(name: &str, b: ScheduleBody) -> Result<(Schedule, Plan), ApiError> {
    valid::id("name", name)?;
    let p = plan(&b.cron, b.timezone.as_deref())?;
    if !shared::keys::is_valid_name(&b.queue) {
        return Err(FieldError::new(
            "queue",
            format!("a queue name is {}", shared::keys::NAME_RULE),
        )
        .into());
    }
    if store::claims(&b.queue).is_none() {
        return Err(FieldError::new(
            "queue",
            "braces in a queue name must make a hash tag, like {img}",
        )
        .into());
    }
    check_job(&b.job)?;
    Ok((
        Schedule {
            name: name.to_string(),
            cron: b.cron.split_whitespace().collect::<Vec<_>>().join(" "),
            timezone: p.timezone().to_string(),
            queue: b.queue,
            job: b.job,
            enabled: b.enabled,
            created_at: format_ts(Utc::now()),
        },
        p,
    ))
}

fn check_job(job: &Value) -> Result<(), FieldError> {
    match job {
        Value::String(_) => {}
        Value::Object(m) if m.contains_key("id") => {
            return Err(FieldError::new(
                "job.id",
                "is made for each due time (sched:<name>:<time>); leave it out",
            ))
        }
        Value::Object(_) => {}
        _ => {
            return Err(FieldError::new(
                "job",
                "a string, or an envelope (a JSON object) without id",
            ))
        }
    }
    if job.to_string().len() > MAX_JOB_BYTES {
        return Err(FieldError::new(
            "job",
            format!("at most {MAX_JOB_BYTES} bytes"),
        ));
    }
    let probe = item(job, &job_id("x", "2026-01-01T00:00:00Z"));
    if let Some(problem) = shared::jobs::read_item(probe.as_bytes()).problem {
        return Err(FieldError::new("job", problem));
    }
    Ok(())
}

pub fn view(s: &Schedule, p: &Plan, last: Option<chrono::DateTime<Utc>>) -> ScheduleView {
    let next_runs: Vec<String> = p
        .next_runs(Utc::now(), 3)
        .into_iter()
        .map(format_ts)
        .collect();
    let last_run_at = last.map(format_ts);
    ScheduleView {
        name: s.name.clone(),
        cron: s.cron.clone(),
        timezone: s.timezone.clone(),
        queue: s.queue.clone(),
        job: s.job.clone(),
        enabled: s.enabled,
        next_run_at: next_runs.first().cloned().filter(|_| s.enabled),
        next_runs,
        last_job_id: last_run_at.as_deref().map(|t| job_id(&s.name, t)),
        last_run_at,
    }
}

impl Schedules {
    /// `GET /api/schedules`: every schedule with its next and last runs (two reads).
    pub async fn reply(&self) -> Result<SchedulesReply, ApiError> {
        let (schedules, last) = store::all(&self.store).await?;
        Ok(SchedulesReply {
            schedules: schedules
                .iter()
                .filter_map(|s| {
                    let p = plan(&s.cron, Some(&s.timezone)).ok()?;
                    Some(view(s, &p, last.get(&s.name).copied()))
                })
                .collect(),
        })
    }
}
