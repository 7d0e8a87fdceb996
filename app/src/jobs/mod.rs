//! `/jobs`: the job history (SPEC §10) — filters by queue and status, the search box, problems
//! first; and `/jobs/{id}`: one job with its attempts, outputs and, while it runs, its output
//! as it is written. Server-rendered and readable without JavaScript (the filters are a plain
//! GET form); hydrated, the list refreshes every few seconds and a running job's output follows
//! live.

mod data;
mod detail;
#[cfg(browser)]
mod live;
mod table;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use shared::fleet::encode;
use shared::jobs::JobStatus;
use shared::Word;

use crate::i18n::{use_lang, LangSwitch};
use crate::nav::PagesNav;
use data::load_jobs;
#[cfg(feature = "ssr")]
pub use data::JobsSource;
pub use detail::JobPage;
use table::JobsTable;

/// The list's refresh period once hydrated.
#[cfg(browser)]
const REFRESH_MS: u32 = 3_000;
/// The statuses an operator looks at first.
const PROBLEMS: &str = "dead,expired,retrying";
/// Problems shown above the list.
const PROBLEMS_SHOWN: usize = 20;

/// What the page was asked for (its query string).
#[derive(Clone, Debug, Default, PartialEq)]
struct Asked {
    queue: String,
    status: String,
    q: String,
    cursor: String,
}

impl Asked {
    fn read() -> Memo<Self> {
        let query = use_query_map();
        Memo::new(move |_| {
            query.with(|m| {
                let get = |k: &str| m.get(k).unwrap_or_default();
                Self {
                    queue: get("queue"),
                    status: get("status"),
                    q: get("q"),
                    cursor: get("cursor"),
                }
            })
        })
    }

    /// The `/api/jobs` query string for the main list.
    fn list_query(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("queue", &self.queue),
            ("status", &self.status),
            ("q", &self.q),
            ("cursor", &self.cursor),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        parts.join("&")
    }

    /// The problems block shows on the first page of an unfiltered (or queue-only) list.
    fn problems_query(&self) -> Option<String> {
        (self.status.is_empty() && self.q.is_empty() && self.cursor.is_empty()).then(|| {
            let mut q = format!("status={PROBLEMS}&limit={PROBLEMS_SHOWN}");
            if !self.queue.is_empty() {
                q.push_str(&format!("&queue={}", encode(&self.queue)));
            }
            q
        })
    }

    /// This page's link with another cursor.
    fn with_cursor(&self, cursor: &str) -> String {
        let next = Self {
            cursor: cursor.to_string(),
            ..self.clone()
        };
        format!("/jobs?{}", next.list_query())
    }
}

#[component]
pub fn JobsPage() -> impl IntoView {
    let lang = use_lang();
    let asked = Asked::read();
    let tick = RwSignal::new(0u64);
    #[cfg(browser)]
    refresh_every(tick, REFRESH_MS);
    let list = Resource::new(
        move || (asked.get().list_query(), tick.get()),
        |(q, _)| load_jobs(q),
    );
    let problems = Resource::new(
        move || (asked.get().problems_query(), tick.get()),
        |(q, _)| async move {
            match q {
                Some(q) => load_jobs(q).await.map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <Title text=lang.t(Word::JobsTitle)/>
        <header class="top">
            <h1>"🧾 " {lang.t(Word::JobsTitle)}</h1>
            <PagesNav current="/jobs"/>
            <LangSwitch path="/jobs"/>
        </header>
        <Filters asked/>
        <Transition fallback=|| ()>
            {move || problems.get().map(|r| match r {
                Ok(Some(p)) if !p.jobs.is_empty() => view! {
                    <section class="jobs-problems">
                        <h2>{lang.t(Word::ProblemJobs)}</h2>
                        <JobsTable rows=p.jobs/>
                    </section>
                }.into_any(),
                Ok(_) => ().into_any(),
                Err(e) => view! { <p class="error">{e.text(lang)}</p> }.into_any(),
            })}
        </Transition>
        <section class="jobs-list">
            <h2>{lang.t(Word::RecentJobs)}</h2>
            <Transition fallback=move || view! { <p class="loading">{lang.t(Word::Loading)}</p> }>
                {move || list.get().map(|r| match r {
                    Ok(page) => {
                        let a = asked.get();
                        let older = page.next_cursor.map(|c| view! {
                            <a class="older" href=a.with_cursor(&c)>{lang.t(Word::OlderJobs)}</a>
                        });
                        let newest = (!a.cursor.is_empty()).then(|| view! {
                            <a class="newest" href=a.with_cursor("")>{lang.t(Word::NewestJobs)}</a>
                        });
                        view! {
                            <JobsTable rows=page.jobs/>
                            <nav class="pager">{newest} " " {older}</nav>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="error">{e.text(lang)}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// The filters: a plain GET form, so they work without JavaScript.
#[component]
fn Filters(asked: Memo<Asked>) -> impl IntoView {
    let lang = use_lang();
    let a = asked.get_untracked();
    let mut choices = vec![
        (String::new(), lang.t(Word::AnyStatus).to_string()),
        (PROBLEMS.to_string(), lang.t(Word::ProblemsOnly).to_string()),
    ];
    choices.extend(
        JobStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), lang.job_status(s))),
    );
    let options = choices
        .into_iter()
        .map(|(value, text)| {
            let selected = value == a.status;
            view! { <option value=value selected=selected>{text}</option> }
        })
        .collect_view();
    view! {
        <form class="job-filters" method="get" action="/jobs" role="search">
            <label>
                {lang.t(Word::FieldQueue)}
                <input name="queue" value=a.queue.clone() placeholder=lang.t(Word::AnyQueue)/>
            </label>
            <label>{lang.t(Word::FieldStatus)}<select name="status">{options}</select></label>
            <input type="search" name="q" value=a.q.clone() placeholder=lang.t(Word::JobsSearchHint)
                aria-label=lang.t(Word::JobsSearch)/>
            <button type="submit">{lang.t(Word::JobsSearch)}</button>
        </form>
    }
}

/// Moves `tick` every `ms` while the page lives (browser only).
#[cfg(browser)]
pub(crate) fn refresh_every(tick: RwSignal<u64>, ms: u32) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    Effect::new(move |_| {
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        on_cleanup(move || flag.store(false, Ordering::Relaxed));
        leptos::task::spawn_local(async move {
            while running.load(Ordering::Relaxed) {
                gloo_timers::future::TimeoutFuture::new(ms).await;
                if tick.try_update(|t| *t += 1).is_none() {
                    return;
                }
            }
        });
    });
}
