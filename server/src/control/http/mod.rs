//! Contract 3's HTTP endpoints, one file per resource, each with its `router()`. Handlers of
//! state-changing calls take a [`Call`](super::call::Call) (token checked, audit made there).

mod agents;
mod audit;
mod commands;
mod queues;

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use shared::control::{valid, ControlInfo};

use super::Control;
use crate::error::ApiError;

/// Every control-plane route, for any app state the control plane can be taken from.
pub fn router<S>() -> Router<S>
where
    Control: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .merge(agents::router())
        .merge(commands::router())
        .merge(queues::router())
        .merge(audit::router())
        .route("/api/control", get(info))
}

async fn info(State(ctl): State<Control>) -> Json<ControlInfo> {
    Json(ctl.info())
}

fn now() -> String {
    shared::time::format_ts(Utc::now())
}

fn check_id(field: &str, id: &str) -> Result<(), ApiError> {
    Ok(valid::id(field, id)?)
}
