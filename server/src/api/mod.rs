//! The HTTP API: each area exposes a `router()`, merged here.

mod health;
mod nodes;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().merge(nodes::router()).merge(health::router())
}
