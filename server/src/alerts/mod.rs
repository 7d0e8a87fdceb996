//! Alerts (SPEC §6): the rules run every `ALERT_INTERVAL` on the collector's snapshot in the one
//! replica that holds a lease in Redis; what they decide goes into a durable outbox in Redis
//! together with the rule memory, and a sender task delivers it to Telegram and/or a webhook.
//! Nothing here runs on the collector's path.

mod channel;
mod evaluator;
mod rules;
mod sender;
mod settings;
pub mod store;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use channel::{classify, split_message, Channel, Delivery, DeliveryError, TELEGRAM_MAX_CHARS};
pub use rules::{evaluate, Memory, Rules, WorkerMemory};
pub use settings::{AlertArgs, AlertConfig};
pub use shared::alerts::{Alert, AlertKind, AlertsView, BatchRecord};

use crate::collector::SnapshotRx;
use crate::metrics::Metrics;
use store::Store;

/// Alerts decided while Redis was unreachable wait here (they cannot reach the outbox). Capped.
const BLIND_QUEUE_CAP: usize = 100;
/// Longest wait between two tries of a transient failure.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The sender looks at the outbox at least this often even when not woken.
const POLL_OUTBOX: Duration = Duration::from_secs(2);
/// Wait between tries to settle a delivery while Redis is away.
const RETRY_SETTLE: Duration = Duration::from_millis(500);
/// At shutdown, how long the lease waits for a send in flight (above the HTTP timeout).
const SETTLE_BEFORE_RELEASE: Duration = Duration::from_secs(12);

pub type AlertsRx = watch::Receiver<Arc<AlertsView>>;

/// A view for a server with alerts off.
pub fn disabled() -> AlertsRx {
    watch::channel(Arc::new(AlertsView::default())).1
}

#[derive(Clone)]
struct Shared {
    settings: Arc<AlertConfig>,
    redis_timeout: Duration,
    redis: crate::redis_target::Target,
    metrics: Arc<Metrics>,
    me: Arc<str>,
    leader: Arc<AtomicBool>,
    blind: Arc<Mutex<VecDeque<Delivery>>>,
    /// Held by the sender from taking a delivery until it is settled in Redis, so a shutdown
    /// gives the lease up only once no send is in flight (a new leader would send it again).
    sending: Arc<tokio::sync::Mutex<()>>,
    /// Wakes the sender when the outbox (or the blind queue) got something.
    outbox_ready: Arc<tokio::sync::Notify>,
    /// Whether the last Redis call of these tasks went through (see [`Shared::redis_failed`]).
    redis_ok: Arc<AtomicBool>,
}

impl Shared {
    fn alerts(&self) -> &AlertConfig {
        &self.settings
    }

    /// A failed Redis call of the alert tasks: counted
    /// (`agent_office_redis_errors_total{task="alerts"}`) and logged with its cause — as a
    /// warning when Redis answered until now, then quietly until it answers again, so an
    /// outage is one line, not one per retry.
    fn redis_failed(&self, what: &str, e: &dyn std::fmt::Display) {
        self.metrics.redis_error("alerts");
        if self.redis_ok.swap(false, Ordering::SeqCst) {
            tracing::warn!(error = %e, "alerts: {what} failed; retrying while Redis is away");
        } else {
            tracing::debug!(error = %e, "alerts: {what} failed");
        }
    }

    /// The store, connecting first when there is none; a failed connect is
    /// [`Self::redis_failed`] and gives `None`.
    async fn store<'s>(&self, slot: &'s mut Option<Store>) -> Option<&'s mut Store> {
        if slot.is_none() {
            // On a Redis Cluster: the primary of the `{alerts}` slot.
            match self
                .redis
                .connect_for(store::LEADER, self.redis_timeout)
                .await
            {
                Ok(conn) => {
                    let mut fresh = Store {
                        conn,
                        timeout: self.redis_timeout,
                        outbox_cap: store::OUTBOX_CAP,
                    };
                    // The earlier versions never ran on a Cluster, where the old and new
                    // names would not share a slot: nothing to move there.
                    let earlier = !matches!(self.redis, crate::redis_target::Target::Cluster(_));
                    let moved = if earlier {
                        fresh.move_old_keys().await
                    } else {
                        Ok(0)
                    };
                    match moved {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(
                            keys = n,
                            "alerts: state of an earlier version moved to its names now"
                        ),
                        Err(e) => {
                            self.redis_failed("moving an earlier version's alert state", &e);
                            return None;
                        }
                    }
                    *slot = Some(fresh);
                }
                Err(e) => {
                    self.redis_failed("connecting to Redis", &e);
                    return None;
                }
            }
        }
        if !self.redis_ok.swap(true, Ordering::SeqCst) {
            tracing::info!("alerts: Redis answers again");
        }
        slot.as_mut()
    }
}

/// Starts the evaluator and the sender on `tasks`; returns the view the API serves.
pub fn spawn(
    tasks: &tokio_util::task::TaskTracker,
    settings: AlertConfig,
    redis_timeout: Duration,
    redis: crate::redis_target::Target,
    nodes: SnapshotRx,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> AlertsRx {
    let names: Vec<String> = settings
        .channels
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let (view_tx, view_rx) = watch::channel(Arc::new(AlertsView {
        enabled: true,
        channels: names.clone(),
        recent: Vec::new(),
    }));
    let shared = Shared {
        me: format!("{}-{:016x}", std::process::id(), rand::random::<u64>()).into(),
        settings: Arc::new(settings),
        redis_timeout,
        redis,
        metrics,
        leader: Arc::new(AtomicBool::new(false)),
        blind: Arc::new(Mutex::new(VecDeque::new())),
        sending: Arc::new(tokio::sync::Mutex::new(())),
        outbox_ready: Arc::new(tokio::sync::Notify::new()),
        redis_ok: Arc::new(AtomicBool::new(true)),
    };
    tracing::info!(channels = ?names, instance = %shared.me, "alerts on");
    tasks.spawn(evaluator::run(shared.clone(), nodes, view_tx, stop.clone()));
    tasks.spawn(sender::run(shared, stop));
    view_rx
}
