//! The agent's local REST API (SPEC §8): `/health`, `/status`, `/pipelines`,
//! `/pipelines/{id}`, `/pipelines/{id}/jobs` (its recent jobs), `/metrics`. Read-only; bound to loopback unless `api.listen` says
//! otherwise.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::agent::Agent;
use crate::pipeline::{Pipeline, Status};

pub fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/pipelines", get(pipelines))
        .route("/pipelines/{id}", get(pipeline))
        .route("/pipelines/{id}/jobs", get(pipeline_jobs))
        .route("/metrics", get(metrics))
        .with_state(agent)
}

async fn health(State(a): State<Arc<Agent>>) -> Response {
    let body = serde_json::json!({
        "status": if a.stop.is_cancelled() { "stopping" } else { "ok" },
        "redis_healthy": a.is_redis_healthy(),
    });
    let code = if a.stop.is_cancelled() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

#[derive(Serialize)]
struct StatusReply {
    agent_id: String,
    hostname: String,
    status: &'static str,
    communication_mode: &'static str,
    redis_healthy: bool,
    pipelines_running: usize,
    /// Since start, as the plan writes it: `24h12m30s`.
    uptime: String,
    uptime_s: u64,
    version: &'static str,
}

async fn status(State(a): State<Arc<Agent>>) -> Json<StatusReply> {
    Json(StatusReply {
        agent_id: a.id.clone(),
        hostname: a.hostname.clone(),
        status: if a.stop.is_cancelled() {
            "stopping"
        } else {
            "online"
        },
        communication_mode: a.mode.borrow().as_str(),
        redis_healthy: a.is_redis_healthy(),
        pipelines_running: a.running_count(),
        uptime: duration_text(a.started.elapsed().as_secs()),
        uptime_s: a.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Serialize)]
struct PipelineView {
    id: String,
    name: String,
    status: &'static str,
    started_at: String,
    processed_count: u64,
    error_count: u64,
    dead_lettered_count: u64,
    in_flight: u32,
    restarts: u32,
    last_job_at: Option<String>,
    last_error: Option<String>,
    queue: String,
    concurrency: u32,
}

fn view(p: &Pipeline) -> PipelineView {
    let s = &p.stats;
    PipelineView {
        id: p.config.id.clone(),
        name: p.config.name().to_string(),
        status: p.status().as_str(),
        started_at: shared::time::format_ts(p.started_at),
        processed_count: s.processed.load(Relaxed),
        error_count: s.errors.load(Relaxed),
        dead_lettered_count: s.dead_lettered.load(Relaxed),
        in_flight: s.in_flight.load(Relaxed),
        restarts: s.restarts.load(Relaxed),
        last_job_at: s.last_job_at(),
        last_error: s.last_error(),
        queue: p.config.queue.clone(),
        concurrency: p.config.concurrency,
    }
}

async fn pipelines(State(a): State<Arc<Agent>>) -> Json<serde_json::Value> {
    let list: Vec<PipelineView> = a.all_pipelines().iter().map(|p| view(p)).collect();
    Json(serde_json::json!({ "pipelines": list }))
}

async fn pipeline(State(a): State<Arc<Agent>>, Path(id): Path<String>) -> Response {
    match a.pipeline(&id) {
        Some(p) => {
            let mut v = serde_json::to_value(view(&p)).unwrap_or_default();
            v["config"] = serde_json::to_value(&p.config).unwrap_or_default();
            Json(v).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": format!("no pipeline {id:?}"), "field": "id"})),
        )
            .into_response(),
    }
}

/// The pipeline's recent jobs, newest first, as this agent last changed them (its own memory;
/// the whole history is the server's `GET /api/jobs?queue=`).
async fn pipeline_jobs(State(a): State<Arc<Agent>>, Path(id): Path<String>) -> Response {
    match a.pipeline(&id) {
        Some(p) => {
            let jobs: Vec<_> = crate::pipeline::lock(&p.stats.recent)
                .iter()
                .cloned()
                .collect();
            Json(serde_json::json!({ "jobs": jobs })).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": format!("no pipeline {id:?}"), "field": "id"})),
        )
            .into_response(),
    }
}

async fn metrics(State(a): State<Arc<Agent>>) -> Response {
    a.metrics.uptime.set(a.started.elapsed().as_secs_f64());
    let all = a.all_pipelines();
    for s in [Status::Running, Status::Paused, Status::Stopped] {
        let n = all.iter().filter(|p| p.status() == s).count();
        a.metrics
            .pipelines
            .get_or_create(&crate::metrics::StatusLabel { status: s.as_str() })
            .set(n as i64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        a.metrics.encode(),
    )
        .into_response()
}
/// `24h12m30s`, `5m3s`, `42s`: the plan's uptime.
fn duration_text(s: u64) -> String {
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_as_the_plan_writes_it() {
        assert_eq!(duration_text(87_150), "24h12m30s");
        assert_eq!(duration_text(303), "5m3s");
        assert_eq!(duration_text(42), "42s");
    }
}
