//! The 3D pipeline view (SPEC §5): NAS → Redis bus → workers drawn with three-d on a canvas,
//! with HTML labels over it. The pure parts (layout, camera, labels, decluttering, the snapshot
//! channel, frame timings) build and test natively; the scene and its loop exist only in the
//! browser build.

pub mod declutter;
pub mod groups;
pub mod label;
pub mod latest;
pub mod layout;
pub mod orbit;
pub mod resolution;
pub mod stats;

#[cfg(browser)]
mod hud;
#[cfg(browser)]
mod render_loop;
#[cfg(browser)]
mod scene;

use leptos::prelude::*;
use shared::{NodesSnapshot, Word};

use crate::i18n::use_lang;

/// The canvas, its HUD and the "aggregator disconnected" overlay. When WebGL2 cannot start,
/// `failed` gets the reason and the page falls back to the cards.
#[component]
pub fn PipelineView(
    snap: Signal<Option<NodesSnapshot>>,
    failed: RwSignal<Option<String>>,
) -> impl IntoView {
    let lang = use_lang();
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    let hud = NodeRef::<leptos::html::Div>::new();
    #[cfg(browser)]
    run(canvas, hud, snap, failed, lang);
    #[cfg(not(browser))]
    let _ = failed;

    let disconnected = move || {
        snap.get().filter(|s| !s.redis_ok).map(|s| {
            let since = s
                .stale_since
                .map(|t| lang.last_data(&t))
                .unwrap_or_default();
            let text = lang.t(Word::AggregatorDisconnected);
            view! { <div class="overlay-down" role="alert">"⚠ " {text} {since}</div> }
        })
    };
    view! {
        <section class="pipeline" aria-label=lang.t(Word::PipelineLabel)>
            <canvas node_ref=canvas class="pipeline-canvas"></canvas>
            <div node_ref=hud class="hud" aria-live="off"></div>
            {disconnected}
            <p class="pipeline-hint">{lang.t(Word::OrbitHint)}</p>
        </section>
    }
}

/// Starts the loop once the canvas is in the page, feeds it every new snapshot through the
/// channel, and stops it when the view unmounts.
#[cfg(browser)]
fn run(
    canvas: NodeRef<leptos::html::Canvas>,
    hud: NodeRef<leptos::html::Div>,
    snap: Signal<Option<NodesSnapshot>>,
    failed: RwSignal<Option<String>>,
    lang: shared::Lang,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let (tx, rx) = latest::channel();
    Effect::new(move |_| {
        if let Some(s) = snap.get() {
            tx.send(s);
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let on_unmount = stop.clone();
    on_cleanup(move || on_unmount.store(true, Ordering::Relaxed));
    let mut pending = Some((rx, stop));
    Effect::new(move |_| {
        let (Some(c), Some(h)) = (canvas.get(), hud.get()) else {
            return;
        };
        let Some((rx, stop)) = pending.take() else {
            return;
        };
        if let Err(why) = render_loop::start(c, h.into(), rx, stop, lang) {
            leptos::logging::warn!("3D view unavailable: {why}");
            failed.set(Some(why.to_string()));
        }
    });
}
