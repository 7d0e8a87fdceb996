//! `/schedules` (SPEC §11): every schedule with its next three runs, its last run and the job
//! it pushed (linked to that job's page); once hydrated and with the operator token, pause,
//! resume, edit and delete, and a form that previews the next runs before saving.
//! Server-rendered and readable without JavaScript.

mod form;

use leptos::prelude::*;
use leptos_meta::Title;
use shared::fleet::encode;
use shared::schedules::{ScheduleBody, ScheduleView, SchedulesReply};
use shared::Word;

use crate::error::LoadError;
use crate::i18n::{use_lang, LangSwitch};
use crate::nav::PagesNav;
use crate::operator_ui::{dispatch, Call, CallKind, Flash, OperatorUi, TokenPrompt};
use form::ScheduleForm;

pub const SCHEDULES_URL: &str = "/api/schedules";

/// The schedules as the server gives them during SSR, provided as Leptos context.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct SchedulesSource(pub crate::control_data::Loader<SchedulesReply>);

async fn load_schedules() -> Result<SchedulesReply, LoadError> {
    #[cfg(feature = "ssr")]
    if let Some(s) = use_context::<SchedulesSource>() {
        return (s.0)().await;
    }
    crate::nodes::load(None, SCHEDULES_URL.to_string()).await
}

#[component]
pub fn SchedulesPage() -> impl IntoView {
    let ui = OperatorUi::provide();
    let lang = use_lang();
    let list = Resource::new(move || ui.changed.get(), |_| load_schedules());
    // The schedule being edited (None: a new one).
    let editing = RwSignal::new(None::<ScheduleView>);
    view! {
        <Title text=lang.t(Word::SchedulesTitle)/>
        <header class="top">
            <h1>"⏰ " {lang.t(Word::SchedulesTitle)}</h1>
            <PagesNav current="/schedules"/>
            <LangSwitch path="/schedules"/>
        </header>
        <TokenPrompt/>
        <Flash/>
        <section class="schedules-section">
            <Transition fallback=move || view! { <p class="loading">{lang.t(Word::Loading)}</p> }>
                {move || list.get().map(|r| match r {
                    Ok(s) => view! { <SchedulesTable schedules=s.schedules editing/> }.into_any(),
                    Err(e) => view! { <p class="error">{e.text(lang)}</p> }.into_any(),
                })}
            </Transition>
        </section>
        <ScheduleForm editing/>
    }
}

#[component]
fn SchedulesTable(
    schedules: Vec<ScheduleView>,
    editing: RwSignal<Option<ScheduleView>>,
) -> impl IntoView {
    let lang = use_lang();
    if schedules.is_empty() {
        return view! { <p class="muted no-schedules">{lang.t(Word::NoSchedules)}</p> }.into_any();
    }
    let rows = schedules
        .into_iter()
        .map(|s| view! { <Row s editing/> })
        .collect_view();
    view! {
        <table class="schedules">
            <thead>
                <tr>
                    <th>{lang.t(Word::ColSchedule)}</th>
                    <th>{lang.t(Word::ColCron)}</th>
                    <th>{lang.t(Word::FieldQueue)}</th>
                    <th>{lang.t(Word::ColNextRuns)}</th>
                    <th>{lang.t(Word::ColLastRun)}</th>
                    <th>{lang.t(Word::ColLastJob)}</th>
                    <th></th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn Row(s: ScheduleView, editing: RwSignal<Option<ScheduleView>>) -> impl IntoView {
    let lang = use_lang();
    let ui = crate::operator_ui::use_operator();
    let state = if s.enabled {
        Word::ScheduleOn
    } else {
        Word::ScheduleOff
    };
    let next = s
        .next_runs
        .iter()
        .map(|t| view! { <li>{t.clone()}</li> })
        .collect_view();
    let last_job = s.last_job_id.clone().map(|id| {
        view! { <a class="job-id" href=format!("/jobs/{}", encode(&id))>{id.clone()}</a> }
    });
    let url = format!("{SCHEDULES_URL}/{}", encode(&s.name));
    let toggle = {
        let mut body = body_of(&s);
        body.enabled = !s.enabled;
        let verb = if s.enabled {
            Word::VerbPause
        } else {
            Word::VerbResume
        };
        Call {
            method: "PUT",
            url: url.clone(),
            body: serde_json::to_string(&body).ok(),
            what: lang.schedule_call(verb, &s.name),
            kind: CallKind::Other,
        }
    };
    let toggle_word = if s.enabled {
        Word::VerbPause
    } else {
        Word::VerbResume
    };
    let delete = Call {
        method: "DELETE",
        url,
        body: None,
        what: lang.schedule_call(Word::DeleteSchedule, &s.name),
        kind: CallKind::Other,
    };
    let edit = s.clone();
    view! {
        <tr data-schedule=s.name.clone() data-enabled=s.enabled.to_string()>
            <td><strong>{s.name.clone()}</strong><br/><span class=format!("muted schedule-state {}", if s.enabled { "on" } else { "off" })>{lang.t(state)}</span></td>
            <td><code>{s.cron.clone()}</code><br/><span class="muted">{s.timezone.clone()}</span></td>
            <td><a href=format!("/jobs?queue={}", encode(&s.queue))>{s.queue.clone()}</a></td>
            <td><ul class="next-runs">{next}</ul></td>
            <td class="muted">{s.last_run_at.clone().unwrap_or_default()}</td>
            <td>{last_job}</td>
            <td class="actions" hidden=move || !ui.hydrated.get()>
                <button type="button" data-action="toggle" on:click=move |_| dispatch(ui, toggle.clone())>{lang.t(toggle_word)}</button>
                <button type="button" data-action="edit" on:click=move |_| editing.set(Some(edit.clone()))>{lang.t(Word::EditSchedule)}</button>
                <button type="button" data-action="delete" on:click=move |_| dispatch(ui, delete.clone())>{lang.t(Word::DeleteSchedule)}</button>
            </td>
        </tr>
    }
}

/// The body that writes a schedule back as it is.
fn body_of(s: &ScheduleView) -> ScheduleBody {
    ScheduleBody {
        name: Some(s.name.clone()),
        cron: s.cron.clone(),
        timezone: Some(s.timezone.clone()),
        queue: s.queue.clone(),
        job: s.job.clone(),
        enabled: s.enabled,
    }
}
