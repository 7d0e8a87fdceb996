//! The state every handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::collector::SnapshotRx;
use crate::metrics::Metrics;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub nodes: SnapshotRx,
    pub metrics: Arc<Metrics>,
}
