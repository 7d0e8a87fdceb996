//! The evaluator task: holds the lease, runs the rules on the collector's snapshot, commits
//! their outcome (memory + outbox, compare-and-set on the memory's generation) and refreshes
//! the recent list the API serves.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use shared::alerts::DeliveryState;
use shared::time::format_ts;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::channel::{split_message, Delivery, TELEGRAM_MAX_CHARS};
use super::rules::{evaluate, Memory, Rules};
use super::store::{Committed, Store};
use super::{Alert, AlertsView, BatchRecord, Shared, BLIND_QUEUE_CAP, SETTLE_BEFORE_RELEASE};
use crate::collector::SnapshotRx;

/// The evaluator task: holds the lease, runs the rules, records their outcome, and refreshes
/// the recent list — each on its own tick, each step a method of [`Evaluator`].
pub(super) async fn run(
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
            language: cfg.language,
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
            Err(e) => {
                self.shared.redis_failed("holding the lease", &e);
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
            Err(e) => {
                self.shared.redis_failed("reading the alert memory", &e);
                self.store = None;
            }
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
            Err(e) => {
                self.shared.redis_failed("reading recent alerts", &e);
                self.store = None;
            }
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
            if let Err(e) = s.release_lease(&me).await {
                // Harmless: another replica takes over once the lease expires.
                self.shared.metrics.redis_error("alerts");
                tracing::warn!(error = %e, lease = ?self.lease, "could not give the alert lease up; it expires by itself");
            }
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
            .insert(ch.name().to_string(), DeliveryState::Pending);
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
