//! The HTTP API: each area exposes a `router()`, merged here.

mod alerts;
mod health;
mod nodes;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(nodes::router())
        .merge(alerts::router())
        .merge(health::router())
        .merge(crate::control::router())
        .merge(crate::jobs::router())
        .merge(crate::schedules::router())
        .merge(crate::trends::router())
}
