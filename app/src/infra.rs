//! `/infra`: the workers table, server-rendered from the snapshot and refreshed in the browser.

use leptos::prelude::*;
use shared::status::StateLabel;
use shared::{NodesSnapshot, WorkerView};

use crate::nodes::load_nodes;

/// How often the browser asks for a new snapshot.
#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
const REFRESH_MS: u32 = 3_000;

#[component]
pub fn InfraPage() -> impl IntoView {
    let first = Resource::new(|| (), |_| load_nodes());
    // The newest snapshot from polling, and whether the last poll failed.
    let live = RwSignal::new(None::<NodesSnapshot>);
    let poll_failed = RwSignal::new(false);
    // Browser only: a workspace-wide native build turns both features on, and the server must
    // never start the polling loop.
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    Effect::new(move |_| poll(live, poll_failed));

    view! {
        <header class="top">
            <h1>"🛰️ Infra — NODE PIPELINE"</h1>
            <p class="sub">"Live status of the NAS ↔ Windows worker pipeline"</p>
        </header>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let first = first.get();
                match live.get().or_else(|| first.clone().and_then(Result::ok)) {
                    Some(snap) => view! { <Nodes snap poll_failed/> }.into_any(),
                    None => {
                        let why = first.and_then(Result::err).unwrap_or_default();
                        view! { <p class="error">"No data yet. " {why}</p> }.into_any()
                    }
                }
            }}
        </Suspense>
    }
}

#[component]
fn Nodes(snap: NodesSnapshot, poll_failed: RwSignal<bool>) -> impl IntoView {
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
    let rows = snap
        .workers
        .into_iter()
        .map(|w| view! { <Row w/> })
        .collect_view();
    view! {
        {redis_down}
        {paused}
        <Show when=move || poll_failed.get()>
            <div class="banner stale">"⚠ refresh failed — showing the last good data"</div>
        </Show>
        <table class="workers">
            <thead>
                <tr>
                    <th>"Worker"</th><th>"Kind"</th><th>"State"</th><th>"Alive"</th>
                    <th>"Queue"</th><th>"Dead letters"</th><th>"Last beat"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
        <p class="generated">"Snapshot " {snap.generated_at}</p>
    }
}

#[component]
fn Row(w: WorkerView) -> impl IntoView {
    let status = w.status();
    let label = StateLabel::of(&w).text();
    let age = w
        .last_beat_age_s
        .map(|s| format!("{s} s ago"))
        .unwrap_or_else(|| "—".into());
    let error = w.error.clone();
    view! {
        <tr class=format!("worker {}", status.as_str()) data-worker=w.name.clone() data-status=status.as_str()>
            <td class="name">
                <span class="dot" style=format!("background:{}", status.colour())></span>
                {w.name.clone()}
                {error.map(|e| view! { <span class="hb-error" title=e.clone()>" ⚠ " {e.clone()}</span> })}
            </td>
            <td class="kind">{w.kind.as_str()}</td>
            <td class="state">{label}</td>
            <td class="alive">{if w.alive { "yes" } else { "no" }}</td>
            <td class="queue">{w.queue_depth}</td>
            <td class="dead">{w.dead_letter}</td>
            <td class="age">{age}</td>
        </tr>
    }
}

/// Polls the nodes API every few seconds, one request after the other, until unmounted.
#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
fn poll(live: RwSignal<Option<NodesSnapshot>>, failed: RwSignal<bool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let running = Arc::new(AtomicBool::new(true));
    let stop = running.clone();
    on_cleanup(move || stop.store(false, Ordering::Relaxed));
    leptos::task::spawn_local(async move {
        while running.load(Ordering::Relaxed) {
            gloo_timers::future::TimeoutFuture::new(REFRESH_MS).await;
            if !running.load(Ordering::Relaxed) {
                break;
            }
            match load_nodes().await {
                Ok(snap) => {
                    live.try_set(Some(snap));
                    failed.try_set(false);
                }
                Err(_) => {
                    failed.try_set(true);
                }
            }
        }
    });
}
