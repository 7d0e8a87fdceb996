//! `GET /api/agent-office/alerts`: recent alert batches with their delivery state, from the
//! alert task's last read (no Redis call per request).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::alerts::{AlertsRx, AlertsView};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/agent-office/alerts", get(alerts))
}

async fn alerts(State(rx): State<AlertsRx>) -> Json<AlertsView> {
    Json((**rx.borrow()).clone())
}
