//! The data behind `/infra`: the first snapshot and alerts (from memory during SSR, from the
//! API in the browser), then polling in the browser.

use leptos::prelude::*;
use shared::alerts::AlertsView;
use shared::fleet::{NodesQuery, Order, GROUP_ABOVE};
use shared::series::SparksReply;
use shared::NodesSnapshot;

use crate::error::LoadError;
use crate::nodes::{load_alerts, load_nodes};
use crate::trends::load_sparks;

/// How often the browser asks for a new snapshot.
#[cfg(browser)]
const REFRESH_MS: u32 = 3_000;
/// The sparklines change a minute at a time: read them every this many snapshots (and when
/// the window changes).
#[cfg(browser)]
const SPARKS_EVERY: u32 = 5;

/// Cards per page: a fleet the 3D view draws worker by worker (up to [`GROUP_ABOVE`]) always
/// fits on one page, with room for the workers discovery still remembers.
pub const PAGE: usize = 500;
const _: () = assert!(PAGE >= GROUP_ABOVE);

/// What the page asks for: a name prefix, a group opened from the 3D view, and a page. Read
/// from and written to the URL (`?q=&group=&page=`), so a search works without JavaScript
/// too (the toolbar is a GET form) and a link shows the same window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub q: String,
    pub group: Option<String>,
    /// 0-based.
    pub page: usize,
}

impl Window {
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            q: get("q").unwrap_or_default(),
            group: get("group").filter(|g| !g.is_empty()),
            page: get("page")
                .and_then(|p| p.parse::<usize>().ok())
                .map_or(0, |p| p.saturating_sub(1)),
        }
    }

    /// The API query: problems first, one page.
    pub fn query(&self) -> NodesQuery {
        NodesQuery {
            q: Some(self.q.clone()).filter(|q| !q.is_empty()),
            group: self.group.clone(),
            order: Order::Problems,
            limit: Some(PAGE),
            offset: self.page * PAGE,
            ..NodesQuery::default()
        }
    }
}

/// What the page shows, kept fresh.
#[derive(Clone, Copy)]
pub struct InfraData {
    /// The window of the fleet asked for; polling follows it.
    pub window: RwSignal<Window>,
    /// The server's snapshot at render time (awaited by the page's `Suspense`).
    pub first: Resource<Result<NodesSnapshot, LoadError>>,
    pub first_alerts: Resource<Result<AlertsView, LoadError>>,
    /// The cards' sparklines at render time.
    pub first_sparks: Resource<Result<SparksReply, LoadError>>,
    /// The newest data from polling, and whether the last poll failed.
    pub live: RwSignal<Option<NodesSnapshot>>,
    pub live_alerts: RwSignal<Option<AlertsView>>,
    pub live_sparks: RwSignal<Option<SparksReply>>,
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

    /// The newest sparklines there are.
    pub fn sparks(self) -> Signal<Option<SparksReply>> {
        Signal::derive(move || {
            self.live_sparks
                .get()
                .or_else(|| self.first_sparks.get().and_then(Result::ok))
        })
    }
}

/// Loads the first data and, in the browser, starts polling until the page goes.
pub fn use_infra_data() -> InfraData {
    let params = leptos_router::hooks::use_query_map();
    let window = RwSignal::new(params.with_untracked(|p| Window::from_params(|k| p.get(k))));
    let first_query = window.get_untracked().query();
    let sparks_query = first_query.clone();
    let data = InfraData {
        window,
        first: Resource::new(|| (), move |_| load_nodes(first_query.clone())),
        first_alerts: Resource::new(|| (), |_| load_alerts()),
        first_sparks: Resource::new(|| (), move |_| load_sparks(sparks_query.clone())),
        live: RwSignal::new(None),
        live_alerts: RwSignal::new(None),
        live_sparks: RwSignal::new(None),
        poll_failed: RwSignal::new(false),
    };
    // Browser only: a workspace-wide native build turns both features on, and the server must
    // never start the polling loop.
    #[cfg(browser)]
    Effect::new(move |_| poll(data));
    data
}

/// Polls the nodes API every few seconds, one request after the other, until unmounted; a
/// request in flight then is aborted. The server's push stream (`/nodes/stream`) wakes the loop
/// early when something visible changed; while the stream is down (a proxy that drops it, the
/// server restarting) the timer alone keeps the page fresh.
#[cfg(browser)]
fn poll(data: InfraData) {
    use futures::{FutureExt, StreamExt};

    let InfraData {
        window,
        live,
        live_alerts,
        live_sparks,
        poll_failed: failed,
        ..
    } = data;
    use crate::nodes::browser;

    let Ok(abort) = web_sys::AbortController::new() else {
        failed.set(true);
        return;
    };
    // Aborted on cleanup: cancels the request in flight and tells the loop to end.
    let signal = abort.signal();
    let (push, mut changes) = futures::channel::mpsc::unbounded::<()>();
    // A new search, page or group is fetched at once, not at the next tick.
    let asked = push.clone();
    Effect::new(move |first: Option<()>| {
        window.track();
        if first.is_some() {
            let _ = asked.unbounded_send(());
        }
    });
    let stream = browser::ChangeStream::open(push);
    // JS objects are not Send; cleanup runs on the same browser thread.
    let held = send_wrapper::SendWrapper::new((abort, stream));
    on_cleanup(move || {
        let (abort, stream) = held.take();
        abort.abort();
        drop(stream);
    });
    leptos::task::spawn_local(async move {
        let mut polls = 0u32;
        let mut sparks_of = window.get_untracked();
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
            let query = window.get_untracked().query();
            match browser::nodes(&signal, &query).await {
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
            polls += 1;
            let asked = window.get_untracked();
            if polls.is_multiple_of(SPARKS_EVERY) || asked != sparks_of {
                let url = crate::trends::sparks_url(&asked.query());
                if let Ok(sparks) = crate::nodes::fetch_json(&url, Some(&signal)).await {
                    live_sparks.try_set(Some(sparks));
                    sparks_of = asked;
                }
            }
        }
    });
}
