//! `/infra/worker/{name}`: one worker now (its card's numbers) and over time — done and failed,
//! queue depth and liveness over 1 h, 24 h or 30 d (`?range=`), its alerts marked on the time
//! axis and listed, so "what happened at 03:12?" has an answer. Readable without JavaScript;
//! refreshed in place once hydrated.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use shared::alerts::{AlertKind, AlertsView};
use shared::fleet::{encode, NodesQuery};
use shared::series::Range;
use shared::time::{clock, parse_ts};
use shared::{Word, WorkerView};

use super::chart::{Axis, Mark, SeriesCharts};
use super::{load_series, SeriesOf};
use crate::i18n::{use_lang, LangSwitch};
use crate::nav::PagesNav;
use crate::nodes::{load_alerts, load_nodes};

/// How often the hydrated page reads the series again.
#[cfg(browser)]
const REFRESH_MS: u32 = 15_000;

#[component]
pub fn WorkerPage() -> impl IntoView {
    let lang = use_lang();
    let params = use_params_map();
    let query = use_query_map();
    let name = Memo::new(move |_| params.with(|p| p.get("name").unwrap_or_default()));
    let range = Memo::new(move |_| {
        query.with(|q| {
            q.get("range")
                .and_then(|r| Range::parse(&r))
                .unwrap_or_default()
        })
    });
    let tick = RwSignal::new(0u64);
    #[cfg(browser)]
    crate::jobs::refresh_every(tick, REFRESH_MS);
    let series = Resource::new(
        move || (name.get(), range.get(), tick.get()),
        |(name, range, _)| load_series(SeriesOf::Worker(name), range),
    );
    let now = Resource::new(
        move || (name.get(), tick.get()),
        |(name, _)| async move {
            let query = NodesQuery {
                q: Some(name.clone()),
                limit: Some(50),
                ..NodesQuery::default()
            };
            load_nodes(query)
                .await
                .map(|s| s.workers.into_iter().find(|w| w.name == name))
        },
    );
    let alerts = Resource::new(move || tick.get(), |_| load_alerts());
    let range_links = move || {
        Range::ALL
            .into_iter()
            .map(|r| {
                let href = format!("/infra/worker/{}?range={}", encode(&name.get()), r.as_str());
                let here = (r == range.get()).then_some("page");
                view! { <a href=href aria-current=here data-range=r.as_str()>{r.as_str()}</a> " " }
            })
            .collect_view()
    };
    view! {
        <Title text=move || format!("{} — {}", name.get(), lang.t(Word::TrendsOf))/>
        <header class="top">
            <h1>"📈 " {move || name.get()}</h1>
            <PagesNav current="/infra"/>
            <LangSwitch path="/infra"/>
        </header>
        <p><a href="/infra">{lang.t(Word::BackToInfra)}</a></p>
        <Transition fallback=|| ()>
            {move || now.get().map(|r| match r {
                Ok(Some(w)) => view! { <WorkerNow w/> }.into_any(),
                Ok(None) => view! { <p class="muted gone">{lang.t(Word::WorkerGone)}</p> }.into_any(),
                Err(e) => view! { <p class="error">{e.text(lang)}</p> }.into_any(),
            })}
        </Transition>
        <nav class="ranges" aria-label=lang.t(Word::TrendsOf)>{range_links}</nav>
        <Transition fallback=move || view! { <p class="loading">{lang.t(Word::Loading)}</p> }>
            {move || {
                let marks = alerts
                    .get()
                    .and_then(Result::ok)
                    .map(|a| marks_of(&a, &name.get()))
                    .unwrap_or_default();
                series.get().map(|r| match r {
                    Ok(trend) => {
                        let axis = Axis::new(range.get(), trend.now);
                        let listed: Vec<Mark> = marks
                            .iter()
                            .filter(|m| m.t >= axis.start && m.t < axis.end())
                            .cloned()
                            .collect();
                        view! {
                            <SeriesCharts points=trend.series.points range=range.get() now=trend.now marks/>
                            <AlertsInRange marks=listed/>
                        }
                        .into_any()
                    }
                    Err(e) => view! { <p class="error">{e.text(lang)}</p> }.into_any(),
                })
            }}
        </Transition>
    }
}

/// The worker's numbers as its card shows them.
#[component]
fn WorkerNow(w: WorkerView) -> impl IntoView {
    let lang = use_lang();
    let status = w.status();
    let jobs = w.queue.clone().map(|q| {
        view! { " · " <a class="jobs-link" href=format!("/jobs?queue={}", encode(&q))>{lang.t(Word::JobsOfQueue)}</a> }
    });
    view! {
        <section class="worker-now" data-status=status.as_str() style=format!("--status:{}", status.colour())>
            <h2>{lang.t(Word::WorkerNow)}</h2>
            <p>
                <span class="status">{status.icon()} " " {status.word(lang)}</span>
                " · " {w.state_label().text(lang).to_string()}
                {jobs}
            </p>
            {crate::numbers::numbers(&w, lang)}
        </section>
    }
}

#[component]
fn AlertsInRange(marks: Vec<Mark>) -> impl IntoView {
    let lang = use_lang();
    let body = if marks.is_empty() {
        view! { <p class="muted">{lang.t(Word::NoAlertsInRange)}</p> }.into_any()
    } else {
        let items = marks
            .into_iter()
            .map(|m| view! { <li><time>{clock(m.t, true)} " UTC"</time> " " {m.text}</li> })
            .collect_view();
        view! { <ul class="alerts-in-range">{items}</ul> }.into_any()
    };
    view! {
        <section class="alerts-range">
            <h2>{lang.t(Word::AlertsInRange)}</h2>
            {body}
        </section>
    }
}

/// The alerts about `name` (and Redis going away or coming back), newest first.
pub fn marks_of(view: &AlertsView, name: &str) -> Vec<Mark> {
    view.recent
        .iter()
        .filter_map(|b| Some((parse_ts(&b.created_at)?, b)))
        .flat_map(|(t, b)| {
            b.alerts.iter().filter_map(move |a| {
                let about = a.worker.as_deref() == Some(name)
                    || matches!(a.kind, AlertKind::RedisLost | AlertKind::RedisBack);
                about.then(|| Mark {
                    t,
                    text: a.text.clone(),
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::alerts::{Alert, BatchRecord};

    #[test]
    fn a_worker_page_marks_its_own_alerts_and_redis_ones() {
        let alert = |kind, worker: Option<&str>, text: &str| Alert {
            kind,
            worker: worker.map(str::to_string),
            text: text.into(),
        };
        let view = AlertsView {
            enabled: true,
            channels: vec!["webhook".into()],
            recent: vec![BatchRecord {
                id: "1".into(),
                created_at: "2026-12-07T03:12:00Z".into(),
                alerts: vec![
                    alert(AlertKind::WorkerDown, Some("image-render"), "down"),
                    alert(AlertKind::WorkerDown, Some("video-render"), "other"),
                    alert(AlertKind::RedisLost, None, "redis"),
                ],
                delivery: Default::default(),
            }],
        };
        let marks = marks_of(&view, "image-render");
        let texts: Vec<&str> = marks.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["down", "redis"]);
        assert_eq!(clock(marks[0].t, false), "03:12");
    }
}
