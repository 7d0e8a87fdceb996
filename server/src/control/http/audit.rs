//! `GET /api/audit`: the newest entries of the audit log.

use axum::extract::{FromRef, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use shared::control::AuditReply;

use crate::control::{audit, Control};
use crate::error::ApiError;

pub fn router<S>() -> Router<S>
where
    Control: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/api/audit", get(list_audit))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn list_audit(
    State(ctl): State<Control>,
    Query(q): Query<Limit>,
) -> Result<Json<AuditReply>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(AuditReply {
        entries: audit::recent(&ctl.store, limit).await?,
    }))
}
