//! `/jobs/{id}`: one job — its facts, why it ended (with the retry and dead-letter actions
//! next to it), its payload, every kept attempt with exit code and output, and while it runs
//! its output as it is written (hydrated pages; without JavaScript the page says to reload).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use shared::fleet::encode;
use shared::jobs::{Attempt, JobDetail};
use shared::{Lang, Word};

use super::data::load_job;
use crate::i18n::{use_lang, LangSwitch};
use crate::nav::PagesNav;
use crate::operator_ui::{dispatch, Call, CallKind, Flash, OperatorUi, TokenPrompt};

/// The page's refresh period while the job has not ended (hydrated).
#[cfg(browser)]
const REFRESH_MS: u32 = 2_000;

#[component]
pub fn JobPage() -> impl IntoView {
    let ui = OperatorUi::provide();
    let lang = use_lang();
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").unwrap_or_default()));
    let tick = RwSignal::new(0u64);
    #[cfg(browser)]
    super::refresh_every(tick, REFRESH_MS);
    let job = Resource::new(
        move || (id.get(), tick.get(), ui.changed.get()),
        |(id, _, _)| load_job(id),
    );
    let running = Memo::new(move |_| {
        job.get()
            .and_then(Result::ok)
            .flatten()
            .is_some_and(|d| !d.status.is_final())
    });
    view! {
        <Title text=move || format!("{} — {}", id.get(), lang.t(Word::NavJobs))/>
        <header class="top">
            <h1>"🧾 " {move || id.get()}</h1>
            <PagesNav current="/jobs"/>
            <LangSwitch path="/jobs"/>
        </header>
        <p><a href="/jobs">{lang.t(Word::BackToJobs)}</a></p>
        <TokenPrompt/>
        <Flash/>
        // Outside the refreshed part, so the live output keeps its stream while the job runs.
        <LiveOutput id running/>
        <Transition fallback=move || view! { <p class="loading">{lang.t(Word::Loading)}</p> }>
            {move || job.get().map(|r| match r {
                Ok(Some(d)) => view! { <JobView d/> }.into_any(),
                Ok(None) => view! { <p class="error not-found">{lang.t(Word::JobNotFound)}</p> }.into_any(),
                Err(e) => view! { <p class="error">{e.text(lang)}</p> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn JobView(d: JobDetail) -> impl IntoView {
    let lang = use_lang();
    let status = d.status.as_str().to_string();
    let fact = |word: Word, value: Option<String>| {
        value.map(|v| view! { <div><dt>{lang.t(word)}</dt><dd>{v}</dd></div> })
    };
    let queue_link = format!("/jobs?queue={}", encode(&d.queue));
    let deps = (!d.depends_on.is_empty()).then(|| {
        let links = d
            .depends_on
            .iter()
            .map(|dep| view! { <a href=format!("/jobs/{}", encode(dep))>{dep.clone()}</a> " " })
            .collect_view();
        view! { <div><dt>{lang.t(Word::JobDependsOn)}</dt><dd class="depends-on">{links}</dd></div> }
    });
    let why = d.status.is_failure().then(|| why_it_ended(&d, lang));
    let payload = d.payload.clone().map(|p| {
        let cut = d.payload_cut.then(|| lang.t(Word::PayloadCut));
        view! {
            <section class="job-payload">
                <h2>{lang.t(Word::JobPayload)} " " <span class="muted">{cut}</span></h2>
                <pre>{p}</pre>
            </section>
        }
    });
    let attempts = d
        .attempts
        .iter()
        .rev()
        .map(|a| view! { <AttemptView a=a.clone()/> })
        .collect_view();
    view! {
        <article class=format!("job {status}") data-job=d.id.clone() data-status=status.clone()>
            <dl class="job-facts">
                <div><dt>{lang.t(Word::ColStatus)}</dt><dd class=format!("job-status {status}")>{lang.job_status(&d.status)}</dd></div>
                <div><dt>{lang.t(Word::FieldQueue)}</dt><dd><a href=queue_link>{d.queue.clone()}</a></dd></div>
                {fact(Word::ColAttempts, Some(d.attempts.last().map_or(0, |a| a.n).to_string()))}
                {fact(Word::ColAgent, d.agent_id.clone())}
                {fact(Word::ColStarted, d.started_at.clone())}
                {fact(Word::ColTook, d.duration_ms.map(|ms| lang.took(ms)))}
                {fact(Word::ColExit, d.exit_code.map(|c| c.to_string()))}
                {fact(Word::JobDeadline, d.deadline.clone())}
                {deps}
            </dl>
            {why}
            {(!d.status.is_final()).then(|| view! { <NoJsNote/> })}
            {(!d.status.is_failure()).then(|| d.reason.clone().map(|r| view! { <p class="job-reason">{r}</p> }))}
            {payload}
            <section class="job-attempts">
                <h2>{lang.t(Word::JobAttempts)}</h2>
                {attempts}
            </section>
        </article>
    }
}

/// A dead or expired job: why, and what an operator can do about it (hydrated pages).
fn why_it_ended(d: &JobDetail, lang: Lang) -> impl IntoView {
    let ui = crate::operator_ui::use_operator();
    let call = |url: String, what: String| Call {
        method: "POST",
        url,
        body: None,
        what,
        kind: CallKind::Other,
    };
    let retry = call(
        format!("/api/jobs/{}/retry", encode(&d.id)),
        format!("{} {}", lang.t(Word::JobRetry), d.id),
    );
    let purge = call(
        format!("/api/queues/{}/dead-letter/purge", encode(&d.queue)),
        lang.dead_letters_of(Word::Purge, &d.queue),
    );
    view! {
        <section class="job-why" role="note">
            <h2>{lang.t(Word::JobWhy)}</h2>
            <p class="job-reason">{d.reason.clone().unwrap_or_default()}</p>
            <div class="job-actions" hidden=move || !ui.hydrated.get()>
                <button type="button" data-action="retry-job" on:click=move |_| dispatch(ui, retry.clone())>
                    {lang.t(Word::JobRetry)}
                </button>
                <button type="button" data-action="purge" on:click=move |_| dispatch(ui, purge.clone())>
                    {lang.dead_letters_of(Word::Purge, &d.queue)}
                </button>
            </div>
        </section>
    }
}

/// Said while the job runs, until the page is hydrated (then the live output shows instead).
#[component]
fn NoJsNote() -> impl IntoView {
    let lang = use_lang();
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! { <p class="muted live-nojs" hidden=move || hydrated.get()>{lang.t(Word::JobLiveNoJs)}</p> }
}

#[component]
fn AttemptView(a: Attempt) -> impl IntoView {
    let lang = use_lang();
    let out = |word: Word, text: String| {
        let empty = text.is_empty();
        view! {
            <div class=format!("tail {}", if word == Word::JobStdout { "stdout" } else { "stderr" })>
                <h4>{lang.t(word)}</h4>
                <pre>{if empty { lang.t(Word::NoOutput).to_string() } else { text }}</pre>
            </div>
        }
    };
    let outcome = serde_json::to_value(a.outcome)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    view! {
        <section class="attempt" data-attempt=a.n data-outcome=outcome.clone()>
            <h3>
                {lang.attempt_of(a.n, &a.agent_id)} " · " <span class="outcome">{outcome.clone()}</span>
                {a.exit_code.map(|c| format!(" · exit {c}"))}
            </h3>
            <p class="muted">{a.started_at.clone()} " → " {a.finished_at.clone().unwrap_or_default()}</p>
            {out(Word::JobStdout, a.stdout_tail)}
            {out(Word::JobStderr, a.stderr_tail)}
        </section>
    }
}

/// The running job's output as it is written, followed from the moment the page (hydrated)
/// sees the job running; without JavaScript the job's facts say to reload.
#[component]
fn LiveOutput(id: Memo<String>, running: Memo<bool>) -> impl IntoView {
    let lang = use_lang();
    let text = RwSignal::new(String::new());
    #[cfg(browser)]
    {
        // The browser has one thread; the stored value's Send bound is met by the wrapper.
        let follow = StoredValue::new(None::<send_wrapper::SendWrapper<super::live::Follow>>);
        Effect::new(move |_| {
            if running.get() && follow.with_value(Option::is_none) {
                let f = super::live::Follow::open(&id.get_untracked(), text);
                follow.set_value(Some(send_wrapper::SendWrapper::new(f)));
            }
        });
    }
    #[cfg(not(browser))]
    let _ = id;
    view! {
        <section class="job-live" hidden=move || !running.get()>
            <h2>{lang.t(Word::JobLive)}</h2>
            <pre class="live-log" aria-live="polite">{move || text.get()}</pre>
        </section>
    }
}
