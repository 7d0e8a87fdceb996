//! The data behind `/infra`: the first snapshot and alerts (from memory during SSR, from the
//! API in the browser), then polling in the browser.

use leptos::prelude::*;
use shared::alerts::AlertsView;
use shared::NodesSnapshot;

use crate::nodes::{load_alerts, load_nodes};

/// How often the browser asks for a new snapshot.
#[cfg(all(feature = "hydrate", not(feature = "ssr"), target_arch = "wasm32"))]
const REFRESH_MS: u32 = 3_000;

/// What the page shows, kept fresh.
#[derive(Clone, Copy)]
pub struct InfraData {
    /// The server's snapshot at render time (awaited by the page's `Suspense`).
    pub first: Resource<Result<NodesSnapshot, String>>,
    pub first_alerts: Resource<Result<AlertsView, String>>,
    /// The newest data from polling, and whether the last poll failed.
    pub live: RwSignal<Option<NodesSnapshot>>,
    pub live_alerts: RwSignal<Option<AlertsView>>,
    pub poll_failed: RwSignal<bool>,
}

impl InfraData {
    /// The newest snapshot there is: polled, else the first.
    pub fn current(self) -> Signal<Option<NodesSnapshot>> {
        Signal::derive(move || {
            self.live
                .get()
                .or_else(|| self.first.get().and_then(Result::ok))
        })
    }
}

/// Loads the first data and, in the browser, starts polling until the page goes.
pub fn use_infra_data() -> InfraData {
    let data = InfraData {
        first: Resource::new(|| (), |_| load_nodes()),
        first_alerts: Resource::new(|| (), |_| load_alerts()),
        live: RwSignal::new(None),
        live_alerts: RwSignal::new(None),
        poll_failed: RwSignal::new(false),
    };
    // Browser only: a workspace-wide native build turns both features on, and the server must
    // never start the polling loop.
    #[cfg(all(feature = "hydrate", not(feature = "ssr"), target_arch = "wasm32"))]
    Effect::new(move |_| poll(data.live, data.live_alerts, data.poll_failed));
    data
}

/// Polls the nodes API every few seconds, one request after the other, until unmounted; a
/// request in flight then is aborted. The server's push stream (`/nodes/stream`) wakes the loop
/// early when something visible changed; while the stream is down (a proxy that drops it, the
/// server restarting) the timer alone keeps the page fresh.
#[cfg(all(feature = "hydrate", not(feature = "ssr"), target_arch = "wasm32"))]
fn poll(
    live: RwSignal<Option<NodesSnapshot>>,
    live_alerts: RwSignal<Option<AlertsView>>,
    failed: RwSignal<bool>,
) {
    use futures::{FutureExt, StreamExt};

    use crate::nodes::browser;

    let Ok(abort) = web_sys::AbortController::new() else {
        failed.set(true);
        return;
    };
    // Aborted on cleanup: cancels the request in flight and tells the loop to end.
    let signal = abort.signal();
    let (push, mut changes) = futures::channel::mpsc::unbounded::<()>();
    let stream = browser::ChangeStream::open(push);
    // JS objects are not Send; cleanup runs on the same browser thread.
    let held = send_wrapper::SendWrapper::new((abort, stream));
    on_cleanup(move || {
        let (abort, stream) = held.take();
        abort.abort();
        drop(stream);
    });
    leptos::task::spawn_local(async move {
        while !signal.aborted() {
            let mut tick = gloo_timers::future::TimeoutFuture::new(REFRESH_MS).fuse();
            futures::select! {
                _ = tick => {}
                _ = changes.next() => {}
            }
            // Several changes while a request ran need one request.
            while changes.try_recv().is_ok() {}
            if signal.aborted() {
                break;
            }
            match browser::nodes(&signal).await {
                Ok(snap) => {
                    live.try_set(Some(snap));
                    failed.try_set(false);
                }
                Err(_) if signal.aborted() => break,
                Err(_) => {
                    failed.try_set(true);
                }
            }
            if let Ok(alerts) = browser::alerts(&signal).await {
                live_alerts.try_set(Some(alerts));
            }
        }
    });
}
