//! `/infra`: a card per worker and the recent alerts, server-rendered from the snapshot and
//! refreshed in the browser.

use leptos::prelude::*;
use shared::status::StateLabel;
use shared::{NodesSnapshot, WorkerView};

use shared::alerts::AlertsView;

use crate::nodes::{load_alerts, load_nodes};
use crate::pipeline::PipelineView;
use crate::view_mode::View;

/// How often the browser asks for a new snapshot.
#[cfg(all(feature = "hydrate", not(feature = "ssr"), target_arch = "wasm32"))]
const REFRESH_MS: u32 = 3_000;

#[component]
pub fn InfraPage() -> impl IntoView {
    let first = Resource::new(|| (), |_| load_nodes());
    let first_alerts = Resource::new(|| (), |_| load_alerts());
    // The newest data from polling, and whether the last poll failed.
    let live = RwSignal::new(None::<NodesSnapshot>);
    let live_alerts = RwSignal::new(None::<AlertsView>);
    let poll_failed = RwSignal::new(false);
    // Browser only: a workspace-wide native build turns both features on, and the server must
    // never start the polling loop.
    #[cfg(all(feature = "hydrate", not(feature = "ssr"), target_arch = "wasm32"))]
    Effect::new(move |_| poll(live, live_alerts, poll_failed));

    // Both sides start on the cards (so hydration matches the server's HTML); the browser then
    // picks the view from `?view=`, the remembered toggle, and whether WebGL2 starts.
    let view = RwSignal::new(View::Cards);
    let gl_failed = RwSignal::new(None::<String>);
    let hydrated = RwSignal::new(false);
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    {
        let query = leptos_router::hooks::use_query_map();
        Effect::new(move |_| {
            let asked = query.with_untracked(|q| q.get("view"));
            let remembered = crate::view_mode::remembered();
            let phone = crate::view_mode::phone();
            view.set(View::choose(asked.as_deref(), remembered.as_deref(), phone));
            hydrated.set(true);
        });
        Effect::new(move |_| {
            if gl_failed.get().is_some() {
                view.set(View::Cards);
            }
        });
    }
    let choose = move |v: View| {
        view.set(v);
        #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
        crate::view_mode::remember(v);
    };
    let current = Signal::derive(move || live.get().or_else(|| first.get().and_then(Result::ok)));
    let show_3d = move || view.get() == View::Pipeline && gl_failed.get().is_none();

    view! {
        <header class="top">
            <h1>"🛰️ Infra — NODE PIPELINE"</h1>
            <p class="sub">"Live status of the NAS ↔ Windows worker pipeline"</p>
            <div class="view-toggle" role="group" aria-label="View" hidden=move || !hydrated.get()>
                <button
                    type="button"
                    data-view="3d"
                    aria-pressed=move || (view.get() == View::Pipeline).to_string()
                    disabled=move || gl_failed.get().is_some()
                    on:click=move |_| choose(View::Pipeline)
                >
                    "3D pipeline"
                </button>
                <button
                    type="button"
                    data-view="2d"
                    aria-pressed=move || (view.get() == View::Cards).to_string()
                    on:click=move |_| choose(View::Cards)
                >
                    "2D cards"
                </button>
            </div>
        </header>
        {move || {
            gl_failed
                .get()
                .map(|why| {
                    view! {
                        <p class="banner stale fallback-note">
                            "3D view unavailable (" {why} ") — showing the cards."
                        </p>
                    }
                })
        }}
        <Show when=show_3d>
            <PipelineView snap=current failed=gl_failed/>
        </Show>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let first = first.get();
                let cards_hidden = Signal::derive(show_3d);
                match live.get().or_else(|| first.clone().and_then(Result::ok)) {
                    Some(snap) => view! { <Nodes snap poll_failed cards_hidden/> }.into_any(),
                    None => {
                        let why = first.and_then(Result::err).unwrap_or_default();
                        view! { <p class="error">"No data yet. " {why}</p> }.into_any()
                    }
                }
            }}
        </Suspense>
        <Suspense fallback=|| ()>
            {move || {
                let first = first_alerts.get().and_then(Result::ok);
                live_alerts.get().or(first).map(|view| view! { <RecentAlerts view/> })
            }}
        </Suspense>
    }
}

/// How many alert batches the panel shows.
const ALERTS_SHOWN: usize = 8;

#[component]
fn RecentAlerts(view: AlertsView) -> impl IntoView {
    let body = if !view.enabled {
        view! {
            <p class="muted">
                "Alerts are off — set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID, or ALERT_WEBHOOK_URL."
            </p>
        }
        .into_any()
    } else if view.recent.is_empty() {
        view! { <p class="muted">"No alerts yet."</p> }.into_any()
    } else {
        let items = view
            .recent
            .into_iter()
            .take(ALERTS_SHOWN)
            .map(|batch| {
                let delivery = batch
                    .delivery
                    .iter()
                    .map(|(channel, state)| format!("{channel}: {state}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let texts = batch
                    .alerts
                    .into_iter()
                    .map(|a| view! { <div class="alert-text">{a.text}</div> })
                    .collect_view();
                view! {
                    <li class="alert-batch">
                        <time>{batch.created_at}</time>
                        {texts}
                        <div class="delivery">{delivery}</div>
                    </li>
                }
            })
            .collect_view();
        view! { <ul class="alerts">{items}</ul> }.into_any()
    };
    view! {
        <section class="recent-alerts">
            <h2>"Recent alerts"</h2>
            {body}
        </section>
    }
}

#[component]
fn Nodes(
    snap: NodesSnapshot,
    poll_failed: RwSignal<bool>,
    /// The 3D view is showing the workers instead.
    cards_hidden: Signal<bool>,
) -> impl IntoView {
    let redis_down = (!snap.redis_ok).then(|| {
        let since = snap
            .stale_since
            .clone()
            .map(|s| format!(" — data stale since {s}"))
            .unwrap_or_default();
        view! { <div class="banner down" role="alert">"aggregator / Redis disconnected" {since}</div> }
    });
    let paused = snap.paused.then(|| {
        let reason = snap
            .paused_reason
            .clone()
            .unwrap_or_else(|| "trading".into());
        view! { <div class="banner paused">"⏸ queues paused (" {reason} ")"</div> }
    });
    let cards = snap
        .workers
        .into_iter()
        .map(|w| view! { <Card w/> })
        .collect_view();
    view! {
        {redis_down}
        {paused}
        <Show when=move || poll_failed.get()>
            <div class="banner stale">"⚠ refresh failed — showing the last good data"</div>
        </Show>
        <section class="cards" aria-label="Workers" hidden=move || cards_hidden.get()>
            {cards}
        </section>
        <p class="generated">"Snapshot " {snap.generated_at}</p>
    }
}

/// How long ago the worker last beat; "no heartbeat" when this server never saw one.
fn beat_age(w: &WorkerView) -> String {
    match (w.alive, w.last_beat_age_s) {
        (_, Some(s)) => format!("last beat {s}s ago"),
        (true, None) => "last beat —".to_string(),
        (false, None) => "no heartbeat".to_string(),
    }
}

/// One worker: coloured by its link status, with the status also as icon and word.
#[component]
fn Card(w: WorkerView) -> impl IntoView {
    let status = w.status();
    let label = StateLabel::of(&w).text();
    let age = beat_age(&w);
    let registered = (!w.registered).then(|| view! { <span class="tag">"discovered"</span> });
    let error = w
        .error
        .clone()
        .map(|e| view! { <p class="hb-error">"⚠ " {e}</p> });
    view! {
        <article
            class=format!("card {}", status.as_str())
            data-worker=w.name.clone()
            data-status=status.as_str()
            style=format!("--status:{}", status.colour())
        >
            <header>
                <h3 class="name">{w.name.clone()}</h3>
                <span class="status" title=status.as_str()>
                    {status.icon()} " " {status.as_str()}
                </span>
            </header>
            <p class="state">{label}</p>
            <dl class="numbers">
                <div><dt>"queue"</dt><dd class="queue">{w.queue_depth}</dd></div>
                <div><dt>"dead letters"</dt><dd class="dead">{w.dead_letter}</dd></div>
                <div><dt>"processing"</dt><dd class="processing">{w.processing}</dd></div>
                <div><dt>"done/failed"</dt><dd class="jobs">{w.jobs_done} " / " {w.jobs_failed}</dd></div>
            </dl>
            <p class="meta">
                <span class="kind">{w.kind.as_str()}</span>
                " · "
                <span class="age">{age}</span>
                {registered}
            </p>
            {error}
        </article>
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::WorkerKind;

    #[test]
    fn beat_age_says_when_there_never_was_a_beat() {
        let mut w = WorkerView::down("video-render", WorkerKind::Render);
        assert_eq!(beat_age(&w), "no heartbeat");
        w.last_beat_age_s = Some(82);
        assert_eq!(beat_age(&w), "last beat 82s ago", "down, but seen before");
        w.alive = true;
        w.last_beat_age_s = Some(3);
        assert_eq!(beat_age(&w), "last beat 3s ago");
    }
}
