//! The Agent Office pages, shared by the server (SSR) and the browser (hydration).
// Leptos's nested view types go deeper than the default limit in the release wasm build.
#![recursion_limit = "256"]

mod agents;
mod control_data;
mod error;
pub mod i18n;
mod infra;
mod jobs;
mod nav;
mod nodes;
mod numbers;
mod schedules;
mod trends;
// Operator calls are sent only by the hydrated browser build; the server renders the controls.
#[cfg_attr(not(browser), allow(dead_code))]
mod operator;
mod operator_ui;
pub mod pipeline;
pub mod view_mode;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, Link, Meta, MetaTags};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

pub use agents::AgentsPage;
#[cfg(feature = "ssr")]
pub use control_data::{ControlSource, Loader};
pub use error::LoadError;
pub use infra::InfraPage;
#[cfg(feature = "ssr")]
pub use jobs::JobsSource;
pub use jobs::{JobPage, JobsPage};
#[cfg(feature = "ssr")]
pub use nodes::{AlertsSource, NodesSource};
pub use schedules::SchedulesPage;
#[cfg(feature = "ssr")]
pub use schedules::SchedulesSource;
#[cfg(feature = "ssr")]
pub use trends::TrendsSource;
pub use trends::{SeriesOf, WorkerPage};

/// The HTML document around the app, in the request's language.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let lang = i18n::page_lang();
    view! {
        <!DOCTYPE html>
        <html lang=lang.code()>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HashedStylesheet options=options.clone() id="leptos"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let lang = i18n::page_lang();
    provide_context(lang);
    view! {
        <Link rel="icon" href="/favicon.svg" type_="image/svg+xml"/>
        <Meta name="theme-color" content="#22d3ee"/>
        <Router>
            <main>
                // Async: the HTML is sent once the snapshot is in it, so it reads without JavaScript.
                <Routes fallback=move || view! { <p class="not-found">{lang.t(shared::Word::PageNotFound)}</p> }>
                    <Route path=path!("/infra") view=InfraPage ssr=SsrMode::Async/>
                    <Route path=path!("/infra/worker/:name") view=WorkerPage ssr=SsrMode::Async/>
                    <Route path=path!("/agents") view=AgentsPage ssr=SsrMode::Async/>
                    <Route path=path!("/jobs") view=JobsPage ssr=SsrMode::Async/>
                    <Route path=path!("/jobs/:id") view=JobPage ssr=SsrMode::Async/>
                    <Route path=path!("/schedules") view=SchedulesPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}
