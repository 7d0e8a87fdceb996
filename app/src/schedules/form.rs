//! The schedule form: a new schedule, or the one being edited; a preview of its next runs
//! (the server reads the expression in its time zone) before it is saved.

use leptos::prelude::*;
use shared::fleet::encode;
use shared::schedules::{ScheduleBody, ScheduleView};
use shared::Word;

use super::SCHEDULES_URL;
use crate::operator_ui::{dispatch, use_operator, Call, CallKind};

/// The form's fields, as signals.
#[derive(Clone, Copy)]
struct Fields {
    name: RwSignal<String>,
    cron: RwSignal<String>,
    timezone: RwSignal<String>,
    queue: RwSignal<String>,
    job: RwSignal<String>,
    enabled: RwSignal<bool>,
}

impl Fields {
    fn new() -> Self {
        Self {
            name: RwSignal::new(String::new()),
            cron: RwSignal::new("*/30 * * * * *".into()),
            timezone: RwSignal::new("UTC".into()),
            queue: RwSignal::new(String::new()),
            job: RwSignal::new(String::new()),
            enabled: RwSignal::new(true),
        }
    }

    fn fill(self, s: Option<&ScheduleView>) {
        let job = s
            .map(|s| match &s.job {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        self.name.set(s.map(|s| s.name.clone()).unwrap_or_default());
        self.cron
            .set(s.map_or("*/30 * * * * *".into(), |s| s.cron.clone()));
        self.timezone
            .set(s.map_or("UTC".into(), |s| s.timezone.clone()));
        self.queue
            .set(s.map(|s| s.queue.clone()).unwrap_or_default());
        self.job.set(job);
        self.enabled.set(s.is_none_or(|s| s.enabled));
    }

    /// The body to send; a job that starts with `{` must be JSON (an envelope), any other text
    /// is a string job.
    fn body(self) -> Result<ScheduleBody, String> {
        let text = self.job.get_untracked();
        let job = if text.trim_start().starts_with('{') {
            serde_json::from_str(&text).map_err(|e| format!("job: {e}"))?
        } else {
            serde_json::Value::String(text)
        };
        let tz = self.timezone.get_untracked();
        Ok(ScheduleBody {
            name: Some(self.name.get_untracked().trim().to_string()),
            cron: self.cron.get_untracked(),
            timezone: (!tz.trim().is_empty()).then_some(tz),
            queue: self.queue.get_untracked().trim().to_string(),
            job,
            enabled: self.enabled.get_untracked(),
        })
    }
}

#[component]
pub fn ScheduleForm(editing: RwSignal<Option<ScheduleView>>) -> impl IntoView {
    let ui = use_operator();
    let lang = ui.lang;
    let f = Fields::new();
    let preview = RwSignal::new(None::<Result<Vec<String>, String>>);
    Effect::new(move |_| {
        editing.with(|e| f.fill(e.as_ref()));
        preview.set(None);
    });
    // A saved schedule clears the form.
    Effect::new(move |prev: Option<u64>| {
        let now = ui.changed.get();
        if prev.is_some_and(|p| p != now) {
            editing.set(None);
        }
        now
    });
    let ask_preview = move |_| {
        let (cron, tz) = (f.cron.get_untracked(), f.timezone.get_untracked());
        let url = format!(
            "{SCHEDULES_URL}/preview?cron={}&timezone={}",
            encode(&cron),
            encode(&tz)
        );
        #[cfg(browser)]
        leptos::task::spawn_local(async move {
            preview.set(Some(fetch_preview(&url).await));
        });
        #[cfg(not(browser))]
        let _ = url;
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match f.body() {
            Err(e) => ui.flash.set(Some((false, format!("✗ {e}")))),
            Ok(body) => {
                let name = body.name.clone().unwrap_or_default();
                let editing_name = editing.get_untracked().map(|s| s.name);
                let (method, url) = match &editing_name {
                    Some(n) => ("PUT", format!("{SCHEDULES_URL}/{}", encode(n))),
                    None => ("POST", SCHEDULES_URL.to_string()),
                };
                let verb = if editing_name.is_some() {
                    Word::EditSchedule
                } else {
                    Word::SaveSchedule
                };
                dispatch(
                    ui,
                    Call {
                        method,
                        url,
                        body: serde_json::to_string(&body).ok(),
                        what: lang.schedule_call(verb, &name),
                        kind: CallKind::Other,
                    },
                );
            }
        }
    };
    let input = move |word: Word, name: &'static str, sig: RwSignal<String>| {
        view! {
            <label>
                {lang.t(word)}
                <input name=name prop:value=move || sig.get() on:input=move |ev| sig.set(event_target_value(&ev))/>
            </label>
        }
    };
    view! {
        <section class="schedule-form" hidden=move || !ui.hydrated.get()>
            <h2>{move || lang.t(if editing.get().is_some() { Word::EditingSchedule } else { Word::NewSchedule })}</h2>
            <form on:submit=save>
                {input(Word::FieldName, "name", f.name)}
                {input(Word::FieldCron, "cron", f.cron)}
                {input(Word::FieldTimezone, "timezone", f.timezone)}
                {input(Word::FieldQueue, "queue", f.queue)}
                <label>
                    {lang.t(Word::FieldJob)}
                    <textarea name="job" rows="2" prop:value=move || f.job.get() on:input=move |ev| f.job.set(event_target_value(&ev))></textarea>
                </label>
                <label>
                    <input type="checkbox" name="enabled" prop:checked=move || f.enabled.get()
                        on:change=move |ev| f.enabled.set(event_target_checked(&ev))/>
                    {lang.t(Word::FieldEnabled)}
                </label>
                <button type="button" data-action="preview" on:click=ask_preview>{lang.t(Word::PreviewRuns)}</button>
                <button type="submit" data-action="save">{lang.t(Word::SaveSchedule)}</button>
            </form>
            {move || preview.get().map(|p| match p {
                Ok(runs) => view! { <p class="preview next-runs-preview">{lang.t(Word::NextRuns)} {runs.join(" · ")}</p> }.into_any(),
                Err(e) => view! { <p class="flash err">"✗ " {e}</p> }.into_any(),
            })}
        </section>
    }
}

/// The server's preview of an expression, or its error as the server words it.
#[cfg(browser)]
async fn fetch_preview(url: &str) -> Result<Vec<String>, String> {
    let r = gloo_net::http::Request::get(url)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if !r.ok() {
        return Err(crate::operator::error_text(status, &text));
    }
    serde_json::from_str::<shared::schedules::PreviewReply>(&text)
        .map(|p| p.next_runs)
        .map_err(|e| e.to_string())
}
