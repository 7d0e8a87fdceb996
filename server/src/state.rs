//! The state every handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::alerts::AlertsRx;
use crate::collector::SnapshotRx;
use crate::metrics::Metrics;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub nodes: SnapshotRx,
    pub alerts: AlertsRx,
    pub metrics: Arc<Metrics>,
}
