//! `/infra`: a card per worker and the recent alerts, server-rendered from the snapshot and
//! refreshed in the browser.

mod alerts;
mod cards;
mod data;
mod fleet_tools;
mod trend;

use leptos::prelude::*;
use leptos_meta::Title;
use shared::Word;

use crate::i18n::{use_lang, LangSwitch};
use crate::nav::PagesNav;
use crate::operator_ui::{Flash, OperatorUi, TokenPrompt};
use crate::pipeline::PipelineView;
use crate::view_mode::View;
use alerts::RecentAlerts;
use cards::Nodes;
use data::use_infra_data;
use fleet_tools::{FleetTools, GroupList};
use trend::FleetTrend;

#[component]
pub fn InfraPage() -> impl IntoView {
    OperatorUi::provide();
    let lang = use_lang();
    let data = use_infra_data();
    let (first, first_alerts, live, live_alerts, poll_failed) = (
        data.first,
        data.first_alerts,
        data.live,
        data.live_alerts,
        data.poll_failed,
    );
    let gl_failed = RwSignal::new(None::<String>);
    let (view, hydrated) = view_choice(gl_failed);
    let current = data.current();
    let show_3d = move || view.get() == View::Pipeline && gl_failed.get().is_none();
    let window = data.window;
    // A big fleet is drawn as groups until one is opened.
    let grouped = move || {
        let open = window.with(|w| w.group.is_some());
        current.with(|s| {
            s.as_ref()
                .is_some_and(|s| crate::pipeline::groups::is_grouped(s, open))
        })
    };
    let drawn = Signal::derive(move || {
        current.get().map(|s| {
            if grouped() {
                crate::pipeline::groups::as_groups(&s)
            } else {
                crate::pipeline::groups::capped(s)
            }
        })
    });

    view! {
        <Title text=lang.t(Word::InfraTitle)/>
        <header class="top">
            <h1>"🛰️ " {lang.t(Word::InfraTitle)}</h1>
            <p class="sub">{lang.t(Word::InfraSubtitle)}</p>
            <PagesNav current="/infra"/>
            <LangSwitch path="/infra"/>
            <ViewToggle view gl_failed hydrated/>
        </header>
        <TokenPrompt/>
        <Flash/>
        <FleetTrend/>
        {move || {
            gl_failed.get().map(|why| {
                view! { <p class="banner stale fallback-note">{lang.scene_unavailable(&why)}</p> }
            })
        }}
        <Show when=show_3d>
            <PipelineView snap=drawn failed=gl_failed/>
            {move || {
                grouped()
                    .then(|| current.get())
                    .flatten()
                    .map(|snap| view! { <GroupList window snap/> }.into_any())
            }}
        </Show>
        <Suspense fallback=move || view! { <p class="loading">{lang.t(Word::Loading)}</p> }>
            {move || {
                let first = first.get();
                // Read once here (the server's HTML waits for them; the cards are made again
                // when they change), each card then takes its own.
                let sparks = data.sparks().get().unwrap_or_default();
                let cards_hidden = Signal::derive(show_3d);
                match live.get().or_else(|| first.clone().and_then(Result::ok)) {
                    Some(snap) => view! {
                        <FleetTools window snap=snap.clone()/>
                        <Nodes snap poll_failed cards_hidden sparks/>
                    }
                    .into_any(),
                    None => {
                        let why = first.and_then(Result::err).map(|e| e.text(lang)).unwrap_or_default();
                        view! { <p class="error">{lang.t(Word::NoDataYet)} " " {why}</p> }.into_any()
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

/// Which view shows, and whether the page is hydrated. Both sides start on the cards (so
/// hydration matches the server's HTML); the browser then picks the view from `?view=`, the
/// remembered toggle and whether WebGL2 starts (`gl_failed`: the cards, saying why).
fn view_choice(gl_failed: RwSignal<Option<String>>) -> (RwSignal<View>, RwSignal<bool>) {
    let view = RwSignal::new(View::Cards);
    let hydrated = RwSignal::new(false);
    #[cfg(browser)]
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
    #[cfg(not(browser))]
    let _ = gl_failed;
    (view, hydrated)
}

/// The 3D / 2D buttons (hydrated pages only); the choice is remembered.
#[component]
fn ViewToggle(
    view: RwSignal<View>,
    gl_failed: RwSignal<Option<String>>,
    hydrated: RwSignal<bool>,
) -> impl IntoView {
    let lang = use_lang();
    let choose = move |v: View| {
        view.set(v);
        #[cfg(browser)]
        crate::view_mode::remember(v);
    };
    view! {
        <div class="view-toggle" role="group" aria-label=lang.t(Word::ViewLabel) hidden=move || !hydrated.get()>
            <button
                type="button"
                data-view="3d"
                aria-pressed=move || (view.get() == View::Pipeline).to_string()
                disabled=move || gl_failed.get().is_some()
                on:click=move |_| choose(View::Pipeline)
            >
                {lang.t(Word::View3d)}
            </button>
            <button
                type="button"
                data-view="2d"
                aria-pressed=move || (view.get() == View::Cards).to_string()
                on:click=move |_| choose(View::Cards)
            >
                {lang.t(Word::View2d)}
            </button>
        </div>
    }
}
