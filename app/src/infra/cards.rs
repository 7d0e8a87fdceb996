//! The 2D view: a card per worker, with the Redis and pause banners.

use leptos::prelude::*;
use shared::series::{Spark, SparksReply};
use shared::{Lang, NodesSnapshot, Word, WorkerView};

use crate::i18n::use_lang;
use crate::trends::Sparkline;

use crate::operator_ui::{dispatch, use_operator, Call, CallKind};

#[component]
pub fn Nodes(
    snap: NodesSnapshot,
    poll_failed: RwSignal<bool>,
    /// The 3D view is showing the workers instead.
    cards_hidden: Signal<bool>,
    /// The cards' last hour.
    mut sparks: SparksReply,
) -> impl IntoView {
    let lang = use_lang();
    let redis_down = (!snap.redis_ok).then(|| {
        let since = snap
            .stale_since
            .as_deref()
            .map(|s| lang.stale_since(s))
            .unwrap_or_default();
        view! { <div class="banner down" role="alert">{lang.t(Word::RedisBanner)} {since}</div> }
    });
    let paused = snap.paused.then(|| {
        let reason = snap.paused_reason.as_deref().unwrap_or("trading");
        view! { <div class="banner paused">{lang.queues_paused(reason)}</div> }
    });
    let cards = snap
        .workers
        .into_iter()
        .map(|w| {
            let spark = sparks.workers.remove(&w.name);
            view! { <Card w spark/> }
        })
        .collect_view();
    view! {
        {redis_down}
        {paused}
        <Show when=move || poll_failed.get()>
            <div class="banner stale">{lang.t(Word::RefreshFailed)}</div>
        </Show>
        <section class="cards" aria-label=lang.t(Word::WorkersLabel) hidden=move || cards_hidden.get()>
            {cards}
        </section>
        <p class="generated">{lang.t(Word::Snapshot)} " " {snap.generated_at}</p>
    }
}

/// Retry and purge buttons for a worker whose queue holds dead letters (hydrated pages only).
fn dead_letter_actions(w: &WorkerView, lang: Lang) -> Option<impl IntoView> {
    let q = w.queue.clone().filter(|_| w.dead_letter > 0)?;
    let ui = use_operator();
    let call = |action: &str, word: Word| Call {
        method: "POST",
        url: format!("/api/queues/{q}/dead-letter/{action}"),
        body: None,
        what: lang.dead_letters_of(word, &q),
        kind: CallKind::Other,
    };
    let (retry, purge) = (
        call("retry", Word::RetryDeadLetters),
        call("purge", Word::Purge),
    );
    Some(view! {
        <div class="card-actions" hidden=move || !ui.hydrated.get()>
            <button type="button" data-action="retry" on:click=move |_| dispatch(ui, retry.clone())>{lang.t(Word::RetryDeadLetters)}</button>
            <button type="button" data-action="purge" on:click=move |_| dispatch(ui, purge.clone())>{lang.t(Word::Purge)}</button>
        </div>
    })
}

/// One worker: coloured by its link status, with the status also as icon and word.
#[component]
fn Card(w: WorkerView, spark: Option<Spark>) -> impl IntoView {
    let status = w.status();
    let lang = use_lang();
    let label = w.state_label().text(lang).to_string();
    let age = lang.last_beat(w.last_seen_age_s);
    let registered =
        (!w.registered).then(|| view! { <span class="tag">{lang.t(Word::Discovered)}</span> });
    let error = w
        .error
        .clone()
        .map(|e| view! { <p class="hb-error">"⚠ " {e}</p> });
    let actions = dead_letter_actions(&w, lang);
    let page = format!("/infra/worker/{}", shared::fleet::encode(&w.name));
    let spark = view! { <Sparkline spark/> };
    // That queue's jobs, dead letters first when it has some.
    let jobs = w.queue.clone().map(|q| {
        let q = shared::fleet::encode(&q);
        let href = if w.dead_letter > 0 {
            format!("/jobs?queue={q}&status=dead,expired")
        } else {
            format!("/jobs?queue={q}")
        };
        view! { " · " <a class="jobs-link" href=href>{lang.t(Word::JobsOfQueue)}</a> }
    });
    view! {
        <article
            class=format!("card {}", status.as_str())
            data-worker=w.name.clone()
            data-status=status.as_str()
            style=format!("--status:{}", status.colour())
        >
            <header>
                <h3 class="name"><a href=page.clone()>{w.name.clone()}</a></h3>
                <span class="status" title=status.as_str()>
                    {status.icon()} " " {status.word(lang)}
                </span>
            </header>
            <p class="state">{label}</p>
            <a class="spark-link" href=page aria-label=lang.t(Word::TrendsOf)>{spark}</a>
            {crate::numbers::numbers(&w, lang)}
            <p class="meta">
                <span class="kind">{w.kind.word(lang)}</span>
                " · "
                <span class="age">{age}</span>
                {jobs}
                {registered}
            </p>
            {error}
            {actions}
        </article>
    }
}
