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
}

impl Shared {
    fn alerts(&self) -> &AlertConfig {
        &self.settings
    }

    async fn store(&self, slot: &mut Option<Store>) -> Option<()> {
        if slot.is_none() {
            let conn = connect(&self.client, self.redis_timeout).await.ok()?;
            *slot = Some(Store {
                conn,
                timeout: self.redis_timeout,
                outbox_cap: store::OUTBOX_CAP,
            });
        }
        Some(())
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
    };
    tracing::info!(channels = ?names, instance = %shared.me, "alerts on");
    tasks.spawn(evaluator(shared.clone(), nodes, view_tx, stop.clone()));
    tasks.spawn(sender(shared, stop));
    view_rx
}

/// Holds the lease, runs the rules, records their outcome, and refreshes the recent list.
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
    let rules = Rules {
        dead_letter_threshold: cfg.dead_letter_threshold,
    };
    let mut store: Option<Store> = None;
    // The rule memory and the generation it was stored at; None: read it from Redis first.
    let mut memory: Option<(Memory, u64)> = None;
    // The last commit's outcome is unknown (or the memory moved): read it before judging.
    let mut reload = false;
    let mut lease_tick = tokio::time::interval(cfg.lease / 3);
    let mut eval_tick = tokio::time::interval(cfg.interval);
    let mut view_tick = tokio::time::interval(Duration::from_secs(2));
    for t in [&mut lease_tick, &mut eval_tick, &mut view_tick] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = lease_tick.tick() => {
                if shared.store(&mut store).await.is_none() { continue; }
                let Some(s) = store.as_mut() else { continue };
                match s.hold_lease(&shared.me, cfg.lease).await {
                    Ok(true) if !shared.leader.load(Ordering::SeqCst) => match take_over(s).await {
                        Ok(loaded) => {
                            memory = Some(loaded);
                            shared.leader.store(true, Ordering::SeqCst);
                            shared.metrics.alerts_leader.set(1);
                            // Evaluate at once rather than a whole interval later.
                            eval_tick.reset_immediately();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "could not load alert state");
                            store = None;
                        }
                    },
                    Ok(true) => {}
                    Ok(false) => {
                        if shared.leader.swap(false, Ordering::SeqCst) {
                            tracing::info!("another replica now sends alerts");
                        }
                        shared.metrics.alerts_leader.set(0);
                        memory = None;
                    }
                    // Unreachable: keep the role we had, so exactly one replica tells of the loss.
                    Err(_) => store = None,
                }
            }
            _ = eval_tick.tick() => {
                if !shared.leader.load(Ordering::SeqCst) { continue; }
                if reload && shared.store(&mut store).await.is_some() {
                    // After a commit whose outcome is unknown, what Redis holds is the truth.
                    // Unreadable now (Redis away): go on from what we had, which the blind
                    // path needs; the next commit's generation check catches a landed one.
                    if let Some(s) = store.as_mut() {
                        match s.load_memory().await {
                            Ok((m, generation)) => {
                                let mut m = m.unwrap_or_default();
                                // Whether Redis was reachable is this leader's own view, told
                                // while blind and never recorded: keep it.
                                if let Some((had, _)) = &memory {
                                    m.redis_ok = had.redis_ok;
                                }
                                memory = Some((m, generation));
                                reload = false;
                            }
                            Err(_) => store = None,
                        }
                    }
                }
                let Some((prev, generation)) = memory.clone() else { continue };
                let snap = nodes.borrow().snapshot.clone();
                let (next, alerts) = evaluate(&prev, &snap, rules);
                if !snap.redis_ok {
                    // Nothing can be recorded in Redis now: deliver straight from memory.
                    if !alerts.is_empty() {
                        let (_, deliveries) = batch(&shared, &alerts);
                        let mut blind = shared.blind.lock().unwrap_or_else(|p| p.into_inner());
                        for d in deliveries {
                            if blind.len() < BLIND_QUEUE_CAP { blind.push_back(d); }
                        }
                    }
                    memory = Some((next, generation));
                    continue;
                }
                if shared.store(&mut store).await.is_none() { continue; }
                let Some(s) = store.as_mut() else { continue };
                let made = (!alerts.is_empty()).then(|| batch(&shared, &alerts));
                let result = s.commit(&shared.me, generation, &next, made.as_ref().map(|(r, d)| (r, d.as_slice()))).await;
                match result {
                    Ok(Committed::Done { generation, dropped }) => {
                        if !alerts.is_empty() {
                            tracing::info!(alerts = alerts.len(), "alerts queued");
                        }
                        if dropped > 0 {
                            tracing::warn!(dropped, "alert outbox full: the oldest undelivered messages were dropped");
                            let labels = crate::metrics::ChannelLabels { channel: "outbox".into() };
                            shared.metrics.alerts_failed.get_or_create(&labels).inc_by(dropped as u64);
                        }
                        memory = Some((next, generation));
                    }
                    Ok(Committed::NotLeader) => {
                        shared.leader.store(false, Ordering::SeqCst);
                        shared.metrics.alerts_leader.set(0);
                        memory = None;
                    }
                    Ok(Committed::Moved) => {
                        tracing::info!("alert memory moved since it was read (an earlier commit did land); reading it again");
                        reload = true;
                    }
                    // Unknown whether it was recorded (a reply lost): read the memory again
                    // before the next evaluation, so a commit that did land is not repeated.
                    Err(e) => {
                        tracing::warn!(error = %e, "could not record alerts; reading the memory again next interval");
                        store = None;
                        reload = true;
                    }
                }
            }
            _ = view_tick.tick() => {
                if shared.store(&mut store).await.is_none() { continue; }
                let Some(s) = store.as_mut() else { continue };
                match s.recent().await {
                    Ok(recent) => view.send_modify(|v| *v = Arc::new(AlertsView { recent, ..(**v).clone() })),
                    Err(_) => store = None,
                }
            }
        }
    }
    if shared.leader.load(Ordering::SeqCst) {
        // A send in flight settles first (bounded by the HTTP timeout): released earlier, the
        // next leader would re-queue and send it again.
        let settled = tokio::time::timeout(SETTLE_BEFORE_RELEASE, shared.sending.lock()).await;
        if settled.is_err() {
            tracing::warn!("a send was still in flight at shutdown; the lease is left to expire");
        } else if let Some(s) = store.as_mut() {
            let _ = s.release_lease(&shared.me).await;
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
    let idle = Duration::from_millis(500);
    // A delivery sent but not yet settled in Redis (its `finish` failed): settled before
    // anything else is taken, so it neither sticks in flight nor goes out twice.
    let mut unsettled: Option<(Vec<u8>, Delivery, String)> = None;
    while !stop.is_cancelled() {
        if let Some((raw, d, state)) = unsettled.take() {
            let _sending = shared.sending.lock().await;
            let done = match shared.store(&mut store).await.and(store.as_mut()) {
                Some(s) => {
                    s.finish(&raw).await.is_ok()
                        && s.set_delivery(&d.batch, &d.channel, &state).await.is_ok()
                }
                None => false,
            };
            if !done {
                store = None;
                unsettled = Some((raw, d, state));
                sleep_or_stop(idle, &stop).await;
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
        if !shared.leader.load(Ordering::SeqCst) || shared.store(&mut store).await.is_none() {
            sleep_or_stop(idle, &stop).await;
            continue;
        }
        let Some(s) = store.as_mut() else { continue };
        let sending = shared.sending.lock().await;
        let raw = match s.take().await {
            Ok(Some(raw)) => raw,
            Ok(None) => {
                sleep_or_stop(idle, &stop).await;
                continue;
            }
            Err(_) => {
                store = None;
                sleep_or_stop(idle, &stop).await;
                continue;
            }
        };
        let outcome = match serde_json::from_slice::<Delivery>(&raw) {
            Ok(d) => deliver(&shared, &http, &d, &stop)
                .await
                .map(|state| (d, state)),
            Err(e) => {
                tracing::warn!(error = %e, "dropping an unreadable outbox entry");
                let _ = s.finish(&raw).await;
                continue;
            }
        };
        // None: stopped or lost the lease mid-retry (not delivered); the entry stays in
        // flight for the next leader, which re-queues it.
        if let Some((d, state)) = outcome {
            if s.finish(&raw).await.is_err()
                || s.set_delivery(&d.batch, &d.channel, &state).await.is_err()
            {
                store = None;
                unsettled = Some((raw, d, state));
            }
        }
        drop(sending);
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
