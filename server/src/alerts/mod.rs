//! Alerts (SPEC §6): the rules run every `ALERT_INTERVAL` on the collector's snapshot in the one
//! replica that holds a lease in Redis; what they decide goes into a durable outbox in Redis
//! together with the rule memory, and a sender task delivers it to Telegram and/or a webhook.
//! Nothing here runs on the collector's path.

mod channel;
mod rules;
mod settings;
pub mod store;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use shared::nodes::format_ts;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use channel::{classify, split_message, Channel, Delivery, DeliveryError, TELEGRAM_MAX_CHARS};
pub use rules::{evaluate, Memory, Rules, WorkerMemory};
pub use settings::{AlertArgs, AlertConfig};
pub use shared::alerts::{Alert, AlertKind, AlertsView, BatchRecord};

use crate::collector::SnapshotRx;
use crate::metrics::Metrics;
use crate::redis_conn::connect;
use store::{Committed, Store};

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
    client: redis::Client,
    metrics: Arc<Metrics>,
    me: Arc<str>,
    leader: Arc<AtomicBool>,
    blind: Arc<Mutex<VecDeque<Delivery>>>,
    /// Held by the sender from taking a delivery until it is settled in Redis, so a shutdown
    /// gives the lease up only once no send is in flight (a new leader would send it again).
    sending: Arc<tokio::sync::Mutex<()>>,
    /// Wakes the sender when the outbox (or the blind queue) got something.
    outbox_ready: Arc<tokio::sync::Notify>,
}

impl Shared {
    fn alerts(&self) -> &AlertConfig {
        &self.settings
    }

    /// The store, connecting first when there is none; a failed connect is logged and
    /// counted (`agent_office_redis_errors_total{task="alerts"}`) and gives `None`.
    async fn store<'s>(&self, slot: &'s mut Option<Store>) -> Option<&'s mut Store> {
        if slot.is_none() {
            match connect(&self.client, self.redis_timeout).await {
                Ok(conn) => {
                    *slot = Some(Store {
                        conn,
                        timeout: self.redis_timeout,
                        outbox_cap: store::OUTBOX_CAP,
                    })
                }
                Err(e) => {
                    tracing::debug!(error = %e, "alerts: cannot reach Redis");
                    self.metrics.redis_error("alerts");
                    return None;
                }
            }
        }
        slot.as_mut()
    }
}

/// Starts the evaluator and the sender on `tasks`; returns the view the API serves.
pub fn spawn(
    tasks: &tokio_util::task::TaskTracker,
    settings: AlertConfig,
    redis_timeout: Duration,
    client: redis::Client,
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
        client,
        metrics,
        leader: Arc::new(AtomicBool::new(false)),
        blind: Arc::new(Mutex::new(VecDeque::new())),
        sending: Arc::new(tokio::sync::Mutex::new(())),
        outbox_ready: Arc::new(tokio::sync::Notify::new()),
    };
    tracing::info!(channels = ?names, instance = %shared.me, "alerts on");
    tasks.spawn(evaluator(shared.clone(), nodes, view_tx, stop.clone()));
    tasks.spawn(sender(shared, stop));
    view_rx
}

/// The evaluator task: holds the lease, runs the rules, records their outcome, and refreshes
/// the recent list — each on its own tick, each step a method of [`Evaluator`].
async fn evaluator(
    shared: Shared,
    mut nodes: SnapshotRx,
    view: watch::Sender<Arc<AlertsView>>,
    stop: CancellationToken,
) {
    // Judge nothing before the collector's first real cycle.
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = nodes.changed() => {}
    }
    let cfg = shared.alerts().clone();
    let mut lease_tick = tokio::time::interval(cfg.lease / 3);
    let mut eval_tick = tokio::time::interval(cfg.interval);
    let mut view_tick = tokio::time::interval(Duration::from_secs(2));
    for t in [&mut lease_tick, &mut eval_tick, &mut view_tick] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    let mut ev = Evaluator {
        rules: Rules {
            dead_letter_threshold: cfg.dead_letter_threshold,
        },
        lease: cfg.lease,
        shared,
        store: None,
        memory: None,
        reload: false,
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = lease_tick.tick() => {
                if ev.hold_lease().await {
                    // Evaluate at once rather than a whole interval later.
                    eval_tick.reset_immediately();
                }
            }
            _ = eval_tick.tick() => {
                let snap = nodes.borrow().snapshot.clone();
                ev.evaluate(&snap).await;
            }
            _ = view_tick.tick() => ev.refresh_view(&view).await,
        }
    }
    ev.release().await;
}

/// The evaluator's state between ticks.
struct Evaluator {
    shared: Shared,
    rules: Rules,
    lease: Duration,
    store: Option<Store>,
    /// The rule memory and the generation it was stored at (leader only).
    memory: Option<(Memory, u64)>,
    /// The last commit's outcome is unknown (or the memory moved): read it before judging.
    reload: bool,
}

impl Evaluator {
    fn is_leader(&self) -> bool {
        self.shared.leader.load(Ordering::SeqCst)
    }

    fn set_leader(&mut self, leader: bool) {
        self.shared.leader.store(leader, Ordering::SeqCst);
        self.shared.metrics.alerts_leader.set(i64::from(leader));
        if !leader {
            self.memory = None;
        }
    }

    /// Takes, renews or loses the lease. True when this replica has just become the leader.
    async fn hold_lease(&mut self) -> bool {
        let me = self.shared.me.clone();
        let Some(s) = self.shared.store(&mut self.store).await else {
            return false;
        };
        match s.hold_lease(&me, self.lease).await {
            Ok(true) if !self.shared.leader.load(Ordering::SeqCst) => {
                // Our own sender may still be finishing a send from before; let it settle
                // before its entry is re-queued.
                let sending = self.shared.sending.clone();
                let taken = {
                    let _sending = sending.lock().await;
                    take_over(s).await
                };
                match taken {
                    Ok(loaded) => {
                        self.memory = Some(loaded);
                        self.reload = false;
                        self.set_leader(true);
                        self.shared.outbox_ready.notify_one();
                        true
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not load alert state");
                        self.store = None;
                        false
                    }
                }
            }
            Ok(true) => false,
            Ok(false) => {
                if self.is_leader() {
                    tracing::info!("another replica now sends alerts");
                }
                self.set_leader(false);
                false
            }
            // Unreachable: keep the role we had, so exactly one replica tells of the loss.
            Err(_) => {
                self.store = None;
                false
            }
        }
    }

    /// After a commit whose outcome is unknown, what Redis holds is the truth. Unreadable now
    /// (Redis away): go on from what we had, which the blind path needs; the next commit's
    /// generation check catches one that landed.
    async fn reload_memory(&mut self) {
        let Some(s) = self.shared.store(&mut self.store).await else {
            return;
        };
        match s.load_memory().await {
            Ok((m, generation)) => {
                let mut m = m.unwrap_or_default();
                // Whether Redis was reachable is this leader's own view, told while blind and
                // never recorded: keep it.
                if let Some((had, _)) = &self.memory {
                    m.redis_ok = had.redis_ok;
                }
                self.memory = Some((m, generation));
                self.reload = false;
            }
            Err(_) => self.store = None,
        }
    }

    /// Runs the rules on `snap` and records what they decided (leader only).
    async fn evaluate(&mut self, snap: &shared::NodesSnapshot) {
        if !self.is_leader() {
            return;
        }
        if self.reload {
            self.reload_memory().await;
        }
        let Some((prev, generation)) = self.memory.clone() else {
            return;
        };
        let (next, alerts) = evaluate(&prev, snap, self.rules);
        if !snap.redis_ok {
            // Nothing can be recorded in Redis now: deliver straight from memory.
            if !alerts.is_empty() {
                let (_, deliveries) = batch(&self.shared, &alerts);
                let mut blind = self.shared.blind.lock().unwrap_or_else(|p| p.into_inner());
                for d in deliveries {
                    if blind.len() < BLIND_QUEUE_CAP {
                        blind.push_back(d);
                    }
                }
                self.shared.outbox_ready.notify_one();
            }
            self.memory = Some((next, generation));
            return;
        }
        self.commit(generation, next, &alerts).await;
    }

    async fn commit(&mut self, generation: u64, next: Memory, alerts: &[Alert]) {
        let me = self.shared.me.clone();
        let made = (!alerts.is_empty()).then(|| batch(&self.shared, alerts));
        let Some(s) = self.shared.store(&mut self.store).await else {
            return;
        };
        let batch = made.as_ref().map(|(r, d)| (r, d.as_slice()));
        match s.commit(&me, generation, &next, batch).await {
            Ok(Committed::Done {
                generation,
                dropped,
            }) => {
                if !alerts.is_empty() {
                    tracing::info!(alerts = alerts.len(), "alerts queued");
                    self.shared.outbox_ready.notify_one();
                }
                if dropped > 0 {
                    tracing::warn!(
                        dropped,
                        "alert outbox full: the oldest undelivered messages were dropped"
                    );
                    let labels = crate::metrics::ChannelLabels {
                        channel: "outbox".into(),
                    };
                    self.shared
                        .metrics
                        .alerts_failed
                        .get_or_create(&labels)
                        .inc_by(dropped as u64);
                }
                self.memory = Some((next, generation));
            }
            Ok(Committed::NotLeader) => self.set_leader(false),
            Ok(Committed::Moved) => {
                tracing::info!(
                    "alert memory moved since it was read (an earlier commit did land); reading it again"
                );
                self.reload = true;
            }
            // Unknown whether it was recorded (a reply lost): read the memory again before
            // the next evaluation, so a commit that did land is not repeated.
            Err(e) => {
                tracing::warn!(error = %e, "could not record alerts; reading the memory again next interval");
                self.store = None;
                self.reload = true;
            }
        }
    }

    async fn refresh_view(&mut self, view: &watch::Sender<Arc<AlertsView>>) {
        let Some(s) = self.shared.store(&mut self.store).await else {
            return;
        };
        match s.recent().await {
            Ok(recent) => view.send_modify(|v| {
                *v = Arc::new(AlertsView {
                    recent,
                    ..(**v).clone()
                })
            }),
            Err(_) => self.store = None,
        }
    }

    /// At shutdown: a send in flight settles first (bounded by the HTTP timeout) — released
    /// earlier, the next leader would re-queue and send it again.
    async fn release(&mut self) {
        if !self.is_leader() {
            return;
        }
        let settled = tokio::time::timeout(SETTLE_BEFORE_RELEASE, self.shared.sending.lock()).await;
        if settled.is_err() {
            tracing::warn!("a send was still in flight at shutdown; the lease is left to expire");
            return;
        }
        let me = self.shared.me.clone();
        if let Some(s) = self.store.as_mut() {
            let _ = s.release_lease(&me).await;
        }
    }
}

/// On becoming the leader: the stored memory, and deliveries a previous leader left half-done.
async fn take_over(s: &mut Store) -> Result<(Memory, u64), crate::redis_conn::RedisCallError> {
    let (memory, generation) = s.load_memory().await?;
    let requeued = s.requeue_unfinished().await?;
    tracing::info!(
        requeued,
        fresh = memory.is_none(),
        "this replica now sends alerts"
    );
    Ok((memory.unwrap_or_default(), generation))
}

/// One cycle's alerts as a batch record and its deliveries: one message per channel, split
/// under Telegram's length limit.
fn batch(shared: &Shared, alerts: &[Alert]) -> (BatchRecord, Vec<Delivery>) {
    let now = Utc::now();
    let id = format!("{}-{:08x}", now.timestamp_millis(), rand::random::<u32>());
    let text = alerts
        .iter()
        .map(|a| a.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let mut record = BatchRecord {
        id: id.clone(),
        created_at: format_ts(now),
        alerts: alerts.to_vec(),
        delivery: Default::default(),
    };
    let mut deliveries = Vec::new();
    for ch in &shared.alerts().channels {
        record
            .delivery
            .insert(ch.name().to_string(), "pending".into());
        for part in split_message(&text, TELEGRAM_MAX_CHARS) {
            deliveries.push(Delivery {
                batch: id.clone(),
                channel: ch.name().to_string(),
                text: part,
                created_at: record.created_at.clone(),
            });
        }
    }
    (record, deliveries)
}

/// Delivers the outbox (leader only) and anything decided while Redis was away.
async fn sender(shared: Shared, stop: CancellationToken) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; alerts will not be sent");
            return;
        }
    };
    let mut store: Option<Store> = None;
    // A delivery sent but not yet settled in Redis (its `finish` failed): settled before
    // anything else is taken, so it neither sticks in flight nor goes out twice.
    let mut unsettled: Option<(Vec<u8>, Delivery, String)> = None;
    while !stop.is_cancelled() {
        if let Some((raw, d, state)) = unsettled.take() {
            let done = {
                let _sending = shared.sending.lock().await;
                match shared.store(&mut store).await {
                    Some(s) => {
                        s.finish(&raw).await.is_ok()
                            && s.set_delivery(&d.batch, &d.channel, &state).await.is_ok()
                    }
                    None => false,
                }
            };
            if !done {
                store = None;
                unsettled = Some((raw, d, state));
                sleep_or_stop(RETRY_SETTLE, &stop).await;
            }
            continue;
        }
        let blind = shared
            .blind
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        if let Some(d) = blind {
            let _ = deliver(&shared, &http, &d, &stop).await;
            continue;
        }
        if !shared.leader.load(Ordering::SeqCst) {
            wait_for_work(&shared, &stop).await;
            continue;
        }
        match send_next(&shared, &http, &mut store, &stop).await {
            Sent::Settled => {}
            Sent::Empty => wait_for_work(&shared, &stop).await,
            Sent::Unsettled(left) => unsettled = Some(left),
            Sent::NoRedis => {
                store = None;
                sleep_or_stop(RETRY_SETTLE, &stop).await;
            }
        }
    }
}

enum Sent {
    Settled,
    Empty,
    /// Delivered (or refused for good) but not recorded in Redis yet.
    Unsettled((Vec<u8>, Delivery, String)),
    NoRedis,
}

/// Takes the next outbox entry, delivers it and settles it, holding `sending` throughout.
async fn send_next(
    shared: &Shared,
    http: &reqwest::Client,
    store: &mut Option<Store>,
    stop: &CancellationToken,
) -> Sent {
    let _sending = shared.sending.lock().await;
    let Some(s) = shared.store(store).await else {
        return Sent::NoRedis;
    };
    let raw = match s.take().await {
        Ok(Some(raw)) => raw,
        Ok(None) => return Sent::Empty,
        Err(_) => return Sent::NoRedis,
    };
    let d = match serde_json::from_slice::<Delivery>(&raw) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "dropping an unreadable outbox entry");
            let _ = s.finish(&raw).await;
            return Sent::Settled;
        }
    };
    // None: stopped or lost the lease mid-retry (not delivered); the entry stays in flight
    // for the next leader, which re-queues it.
    let Some(state) = deliver(shared, http, &d, stop).await else {
        return Sent::Settled;
    };
    if s.finish(&raw).await.is_err() || s.set_delivery(&d.batch, &d.channel, &state).await.is_err()
    {
        return Sent::Unsettled((raw, d, state));
    }
    Sent::Settled
}

/// Sleeps until the evaluator says the outbox got something, or [`POLL_OUTBOX`] at most
/// (entries another replica left behind), or stop.
async fn wait_for_work(shared: &Shared, stop: &CancellationToken) {
    tokio::select! {
        _ = shared.outbox_ready.notified() => {}
        _ = tokio::time::sleep(POLL_OUTBOX) => {}
        _ = stop.cancelled() => {}
    }
}

/// Tries until delivered or permanently refused; `None` if stopped first.
async fn deliver(
    shared: &Shared,
    http: &reqwest::Client,
    d: &Delivery,
    stop: &CancellationToken,
) -> Option<String> {
    let labels = crate::metrics::ChannelLabels {
        channel: d.channel.clone(),
    };
    let Some(channel) = shared
        .alerts()
        .channels
        .iter()
        .find(|c| c.name() == d.channel)
    else {
        shared.metrics.alerts_failed.get_or_create(&labels).inc();
        return Some("failed: channel no longer configured".into());
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        match channel::send(http, channel, d).await {
            Ok(()) => {
                shared.metrics.alerts_sent.get_or_create(&labels).inc();
                return Some("sent".into());
            }
            Err(DeliveryError::Permanent(reason)) => {
                tracing::warn!(channel = %d.channel, %reason, "alert dropped: the channel refused it for good");
                shared.metrics.alerts_failed.get_or_create(&labels).inc();
                return Some(format!("failed: {reason}"));
            }
            Err(DeliveryError::Retry { after, reason }) => {
                if !shared.leader.load(Ordering::SeqCst) {
                    // The lease is gone: the new leader re-queues this and sends it.
                    return None;
                }
                shared.metrics.alerts_retried.get_or_create(&labels).inc();
                let wait = after.unwrap_or(backoff);
                tracing::info!(channel = %d.channel, %reason, ?wait, "alert delivery will be retried");
                if !sleep_or_stop(wait, stop).await {
                    return None;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Sleeps; false if asked to stop first.
async fn sleep_or_stop(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}
