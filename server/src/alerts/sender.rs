//! The sender task: delivers the outbox (leader only) and what was decided while Redis was
//! away, one delivery at a time, each settled in Redis before the next is taken.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shared::alerts::DeliveryState;
use tokio_util::sync::CancellationToken;

use super::channel::{self, Channel, Delivery, DeliveryError};
use super::store::Store;
use super::{Shared, MAX_BACKOFF, POLL_OUTBOX, RETRY_SETTLE};
use crate::metrics::Metrics;

/// Delivers the outbox (leader only) and anything decided while Redis was away.
pub(super) async fn run(shared: Shared, stop: CancellationToken) {
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
    let mut unsettled: Option<(Vec<u8>, Delivery, DeliveryState)> = None;
    while !stop.is_cancelled() {
        if let Some((raw, d, state)) = unsettled.take() {
            let done = {
                let _sending = shared.sending.lock().await;
                match shared.store(&mut store).await {
                    Some(s) => settle(&shared, s, &raw, &d, &state).await,
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
            // Told while Redis was away: there is no batch record to settle. A refusal is
            // logged and counted by `deliver`; a stop leaves it unsent with the process.
            deliver(&shared, &http, &d, &stop).await;
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
    Unsettled((Vec<u8>, Delivery, DeliveryState)),
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
        Err(e) => {
            shared.redis_failed("taking from the outbox", &e);
            return Sent::NoRedis;
        }
    };
    let d = match serde_json::from_slice::<Delivery>(&raw) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "dropping an unreadable outbox entry");
            if let Err(e) = s.finish(&raw).await {
                // It stays in flight; the next leader's take-over re-queues it and it is
                // dropped again then.
                shared.redis_failed("dropping an unreadable outbox entry", &e);
            }
            return Sent::Settled;
        }
    };
    // None: stopped or lost the lease mid-retry (not delivered); the entry stays in flight
    // for the next leader, which re-queues it.
    let Some(state) = deliver(shared, http, &d, stop).await else {
        return Sent::Settled;
    };
    if !settle(shared, s, &raw, &d, &state).await {
        return Sent::Unsettled((raw, d, state));
    }
    Sent::Settled
}

/// Records a delivered (or refused) entry in Redis: out of the in-flight list, its state on
/// the batch. False when Redis failed (logged and counted); the caller tries again.
async fn settle(
    shared: &Shared,
    s: &mut Store,
    raw: &[u8],
    d: &Delivery,
    state: &DeliveryState,
) -> bool {
    let done = match s.finish(raw).await {
        Ok(()) => s.set_delivery(&d.batch, &d.channel, state).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => true,
        Err(e) => {
            shared.redis_failed("settling a delivery", &e);
            false
        }
    }
}

/// Sleeps until the evaluator says the outbox got something, or [`POLL_OUTBOX`] at most
/// (entries another replica left behind), or stop.
async fn wait_for_work(shared: &Shared, stop: &CancellationToken) {
    wait_for_work_on(&shared.outbox_ready, stop).await
}

async fn wait_for_work_on(ready: &tokio::sync::Notify, stop: &CancellationToken) {
    tokio::select! {
        _ = ready.notified() => {}
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
) -> Option<DeliveryState> {
    let ctx = Retrying {
        channels: &shared.alerts().channels,
        metrics: &shared.metrics,
        leader: &shared.leader,
        stop,
    };
    ctx.deliver(d, |channel, d| channel::send(http, channel, d))
        .await
}

/// What the retry loop of one delivery reads, apart from the transport.
struct Retrying<'a> {
    channels: &'a [Channel],
    metrics: &'a Metrics,
    leader: &'a AtomicBool,
    stop: &'a CancellationToken,
}

impl<'a> Retrying<'a> {
    /// Sends `d` with `send` until it is delivered or refused for good: waits what a 429's
    /// `retry_after` asks, else backs off 1 s doubling to [`MAX_BACKOFF`]. `None` when stopped
    /// or when the lease was lost between tries (the next leader re-queues and sends it).
    async fn deliver<F, Fut>(&self, d: &'a Delivery, mut send: F) -> Option<DeliveryState>
    where
        F: FnMut(&'a Channel, &'a Delivery) -> Fut,
        Fut: std::future::Future<Output = Result<(), DeliveryError>>,
    {
        let labels = crate::metrics::ChannelLabels {
            channel: d.channel.clone(),
        };
        let Some(channel) = self.channels.iter().find(|c| c.name() == d.channel) else {
            self.metrics.alerts_failed.get_or_create(&labels).inc();
            return Some(DeliveryState::Failed("channel no longer configured".into()));
        };
        let mut backoff = Duration::from_secs(1);
        loop {
            match send(channel, d).await {
                Ok(()) => {
                    self.metrics.alerts_sent.get_or_create(&labels).inc();
                    return Some(DeliveryState::Sent);
                }
                Err(DeliveryError::Permanent(reason)) => {
                    tracing::warn!(channel = %d.channel, %reason, "alert dropped: the channel refused it for good");
                    self.metrics.alerts_failed.get_or_create(&labels).inc();
                    return Some(DeliveryState::Failed(reason));
                }
                Err(DeliveryError::Retry { after, reason }) => {
                    if !self.leader.load(Ordering::SeqCst) {
                        return None;
                    }
                    self.metrics.alerts_retried.get_or_create(&labels).inc();
                    let wait = after.unwrap_or(backoff);
                    tracing::info!(channel = %d.channel, %reason, ?wait, "alert delivery will be retried");
                    // The lease may have gone while we waited: then the send is the new leader's.
                    if !sleep_or_stop(wait, self.stop).await || !self.leader.load(Ordering::SeqCst)
                    {
                        return None;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
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

#[cfg(test)]
mod tests {
    //! The retry timing on a paused clock: a fake transport answers from a script and records
    //! when it was called, so an hour of backoff runs in microseconds and every wait is exact.
    //! Real deliveries to a local HTTP server are tested end to end in `server/tests/alerts.rs`.

    use std::sync::{Arc, Mutex};

    use tokio::time::Instant;

    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            batch: "b1".into(),
            channel: "webhook".into(),
            text: "🔴 [image-render] worker down".into(),
            created_at: "2026-12-02T12:00:00Z".into(),
        }
    }

    fn retry(after: Option<u64>) -> Result<(), DeliveryError> {
        Err(DeliveryError::Retry {
            after: after.map(Duration::from_secs),
            reason: "HTTP 429".into(),
        })
    }

    /// A transport that answers `script` in order (then succeeds) and records each call's time.
    #[derive(Clone, Default)]
    struct Fake {
        script: Arc<Mutex<Vec<Result<(), DeliveryError>>>>,
        calls: Arc<Mutex<Vec<Instant>>>,
    }

    impl Fake {
        fn new(mut script: Vec<Result<(), DeliveryError>>) -> Self {
            script.reverse();
            Self {
                script: Arc::new(Mutex::new(script)),
                calls: Arc::default(),
            }
        }

        fn send(&self) -> impl std::future::Future<Output = Result<(), DeliveryError>> {
            self.calls.lock().unwrap().push(Instant::now());
            let answer = self.script.lock().unwrap().pop().unwrap_or(Ok(()));
            async move { answer }
        }

        /// Seconds between consecutive calls.
        fn gaps(&self) -> Vec<u64> {
            let calls = self.calls.lock().unwrap();
            calls.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect()
        }
    }

    struct World {
        channels: Vec<Channel>,
        metrics: Metrics,
        leader: Arc<AtomicBool>,
        stop: CancellationToken,
    }

    impl World {
        fn new() -> Self {
            Self {
                channels: vec![Channel::Webhook {
                    url: "http://127.0.0.1:1/hook".into(),
                }],
                metrics: Metrics::new(),
                leader: Arc::new(AtomicBool::new(true)),
                stop: CancellationToken::new(),
            }
        }

        fn retrying(&self) -> Retrying<'_> {
            Retrying {
                channels: &self.channels,
                metrics: &self.metrics,
                leader: &self.leader,
                stop: &self.stop,
            }
        }

        fn counter(&self, family: &str) -> u64 {
            let labels = crate::metrics::ChannelLabels {
                channel: "webhook".into(),
            };
            let f = match family {
                "sent" => &self.metrics.alerts_sent,
                "retried" => &self.metrics.alerts_retried,
                _ => &self.metrics.alerts_failed,
            };
            f.get_or_create(&labels).get()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_waits_exactly_its_retry_after() {
        let w = World::new();
        let fake = Fake::new(vec![retry(Some(37)), retry(Some(5))]);
        let started = Instant::now();
        let got = w.retrying().deliver(&delivery(), |_, _| fake.send()).await;
        assert_eq!(got, Some(DeliveryState::Sent));
        assert_eq!(fake.gaps(), [37, 5]);
        assert_eq!(started.elapsed().as_secs(), 42);
        assert_eq!((w.counter("retried"), w.counter("sent")), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn without_retry_after_the_backoff_doubles_up_to_a_minute() {
        let w = World::new();
        let fake = Fake::new((0..9).map(|_| retry(None)).collect());
        let got = w.retrying().deliver(&delivery(), |_, _| fake.send()).await;
        assert_eq!(got, Some(DeliveryState::Sent));
        assert_eq!(fake.gaps(), [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_refusal_is_settled_as_failed_after_one_try() {
        let w = World::new();
        let fake = Fake::new(vec![Err(DeliveryError::Permanent("chat not found".into()))]);
        let got = w.retrying().deliver(&delivery(), |_, _| fake.send()).await;
        assert_eq!(got, Some(DeliveryState::Failed("chat not found".into())));
        assert_eq!(fake.calls.lock().unwrap().len(), 1);
        assert_eq!(w.counter("failed"), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_channel_no_longer_configured_is_failed_without_a_send() {
        let mut w = World::new();
        w.channels.clear();
        let fake = Fake::new(vec![]);
        let got = w.retrying().deliver(&delivery(), |_, _| fake.send()).await;
        assert_eq!(
            got,
            Some(DeliveryState::Failed("channel no longer configured".into()))
        );
        assert!(fake.calls.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_lost_during_a_send_stops_the_retries() {
        let w = World::new();
        let fake = Fake::new(vec![retry(None)]);
        let leader = w.leader.clone();
        let got = w
            .retrying()
            .deliver(&delivery(), |_, _| {
                // The lease expires while the request is in flight.
                leader.store(false, Ordering::SeqCst);
                fake.send()
            })
            .await;
        assert_eq!(got, None);
        assert_eq!(fake.calls.lock().unwrap().len(), 1);
    }

    /// Delivers in a task of its own, so the test can act while it waits.
    fn spawn_delivery(
        w: &Arc<World>,
        fake: &Fake,
    ) -> tokio::task::JoinHandle<Option<DeliveryState>> {
        let (w, fake) = (w.clone(), fake.clone());
        tokio::spawn(async move { w.retrying().deliver(&delivery(), |_, _| fake.send()).await })
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_lost_while_waiting_never_sends_again() {
        let w = Arc::new(World::new());
        let fake = Fake::new(vec![retry(Some(30))]);
        let task = spawn_delivery(&w, &fake);
        tokio::time::sleep(Duration::from_secs(10)).await;
        w.leader.store(false, Ordering::SeqCst);
        assert_eq!(task.await.unwrap(), None);
        assert_eq!(
            fake.calls.lock().unwrap().len(),
            1,
            "sent again without the lease"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stop_ends_a_long_wait_at_once() {
        let w = Arc::new(World::new());
        let fake = Fake::new(vec![retry(Some(3600))]);
        let task = spawn_delivery(&w, &fake);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(10)).await;
        w.stop.cancel();
        assert_eq!(task.await.unwrap(), None);
        assert_eq!(started.elapsed().as_secs(), 10);
        assert_eq!(fake.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_sender_wakes_on_notify_and_polls_at_most_every_two_seconds() {
        let ready = tokio::sync::Notify::new();
        let stop = CancellationToken::new();
        let started = Instant::now();
        ready.notify_one();
        wait_for_work_on(&ready, &stop).await;
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "a notification wakes it at once"
        );
        wait_for_work_on(&ready, &stop).await;
        assert_eq!(
            started.elapsed(),
            POLL_OUTBOX,
            "unwoken, it looks again after POLL_OUTBOX"
        );
    }
}
