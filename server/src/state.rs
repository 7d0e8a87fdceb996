//! The state every handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use tokio_util::sync::CancellationToken;

use crate::alerts::AlertsRx;
use crate::collector::SnapshotRx;
use crate::control::Control;
use crate::jobs::Jobs;
use crate::metrics::Metrics;
use crate::schedules::Schedules;
use crate::trends::Trends;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub nodes: SnapshotRx,
    pub alerts: AlertsRx,
    pub metrics: Arc<Metrics>,
    pub control: Control,
    pub jobs: Jobs,
    pub schedules: Schedules,
    pub trends: Trends,
    /// Cancelled when the server starts shutting down, so long-lived responses (the push
    /// stream) end and the graceful shutdown does not wait for them.
    pub closing: CancellationToken,
    /// One permit per open push stream (`MAX_STREAMS`).
    pub streams: Arc<tokio::sync::Semaphore>,
}
