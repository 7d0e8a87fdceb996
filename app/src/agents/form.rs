//! The command form: a type, its pipeline or config, a target (one agent or a label
//! selector), a preview of whom it reaches (the server's dry run, with the reason for every
//! agent left out), then send.

use leptos::prelude::*;
use shared::control::{CommandBody, CommandType};
use shared::{Lang, Word};

use crate::operator_ui::{dispatch, use_operator, Call, CallKind};

/// What is wrong with the form before anything is sent.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum FormError {
    #[error("unknown command type {0:?}")]
    UnknownType(String),
    #[error("{field} is not JSON: {reason}")]
    NotJson { field: &'static str, reason: String },
    #[error("name the agent, or choose a selector")]
    NoTarget,
}

/// Builds the `POST /api/commands` body from the form's fields, or says what is wrong.
pub fn command_body(
    kind: &str,
    pipeline: &str,
    config: &str,
    by_selector: bool,
    agent: &str,
    selector: &str,
) -> Result<CommandBody, FormError> {
    let json = |field, text: &str| {
        serde_json::from_str(text).map_err(|e| FormError::NotJson {
            field,
            reason: e.to_string(),
        })
    };
    let kind = CommandType::parse(kind).ok_or_else(|| FormError::UnknownType(kind.into()))?;
    let mut body = CommandBody::new(kind);
    if !pipeline.trim().is_empty() {
        body.pipeline_id = Some(pipeline.trim().to_string());
    }
    if !config.trim().is_empty() {
        body.config = Some(json("config", config)?);
    }
    if by_selector {
        let text = if selector.trim().is_empty() {
            "{}"
        } else {
            selector
        };
        body.selector = Some(json("selector", text)?);
    } else {
        if agent.trim().is_empty() {
            return Err(FormError::NoTarget);
        }
        body.agent_id = Some(agent.trim().to_string());
    }
    Ok(body)
}

impl FormError {
    /// What the page says, in `lang`.
    pub fn text(&self, lang: Lang) -> String {
        match self {
            Self::NoTarget => lang.t(Word::NoTarget).to_string(),
            Self::NotJson { field, reason } => lang.not_json(field, reason),
            Self::UnknownType(_) => self.to_string(),
        }
    }
}

/// The form's fields, as signals.
#[derive(Clone, Copy)]
struct Fields {
    kind: RwSignal<String>,
    pipeline: RwSignal<String>,
    config: RwSignal<String>,
    by_selector: RwSignal<bool>,
    agent: RwSignal<String>,
    selector: RwSignal<String>,
}

impl Fields {
    fn new() -> Self {
        Self {
            kind: RwSignal::new("pause_pipeline".to_string()),
            pipeline: RwSignal::new(String::new()),
            config: RwSignal::new(String::new()),
            by_selector: RwSignal::new(false),
            agent: RwSignal::new(String::new()),
            selector: RwSignal::new(r#"{"matchLabels": {}}"#.to_string()),
        }
    }

    fn body(self) -> Result<CommandBody, FormError> {
        command_body(
            &self.kind.get_untracked(),
            &self.pipeline.get_untracked(),
            &self.config.get_untracked(),
            self.by_selector.get_untracked(),
            &self.agent.get_untracked(),
            &self.selector.get_untracked(),
        )
    }

    /// The call that sends the form (`dry`: its preview), or what is wrong with it.
    fn call(self, dry: bool, lang: Lang) -> Result<Call, FormError> {
        let body = self.body()?;
        let target = if self.by_selector.get_untracked() {
            "selector".to_string()
        } else {
            self.agent.get_untracked()
        };
        let what = lang.command_to(&self.kind.get_untracked(), &target);
        Ok(if dry {
            Call {
                method: "POST",
                url: "/api/commands?dry_run=true".into(),
                body: Some(body.to_json()),
                what: lang.preview_of(&what),
                kind: CallKind::DryRun,
            }
        } else {
            Call {
                method: "POST",
                url: "/api/commands".into(),
                body: Some(body.to_json()),
                what,
                kind: CallKind::Command,
            }
        })
    }
}

#[component]
pub fn CommandForm(agent_ids: Signal<Vec<String>>) -> impl IntoView {
    let ui = use_operator();
    let lang = ui.lang;
    let f = Fields::new();
    let send = move |dry: bool| match f.call(dry, lang) {
        Ok(call) => {
            if !dry {
                ui.preview.set(None);
            }
            dispatch(ui, call);
        }
        Err(why) => ui.flash.set(Some((false, format!("✗ {}", why.text(lang))))),
    };
    let kinds = CommandType::ALL
        .iter()
        .map(|k| view! { <option value=k.as_str()>{k.as_str()}</option> })
        .collect_view();
    let options = move || {
        agent_ids
            .get()
            .into_iter()
            .map(|a| view! { <option value=a.clone()>{a.clone()}</option> })
            .collect_view()
    };
    view! {
        <section class="command-form" hidden=move || !ui.hydrated.get()>
            <h2>{lang.t(Word::SendCommand)}</h2>
            <form on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); send(false); }>
                <label>{lang.t(Word::FieldType)}
                    <select name="type" on:change=move |ev| f.kind.set(event_target_value(&ev)) prop:value=move || f.kind.get()>{kinds}</select>
                </label>
                <label>{lang.t(Word::FieldPipeline)}
                    <input name="pipeline_id" placeholder="image" prop:value=move || f.pipeline.get() on:input=move |ev| f.pipeline.set(event_target_value(&ev))/>
                </label>
                <label>{lang.t(Word::FieldConfig)}
                    <input name="config" placeholder=r#"{"concurrency": 2}"# prop:value=move || f.config.get() on:input=move |ev| f.config.set(event_target_value(&ev))/>
                </label>
                <fieldset>
                    <legend>{lang.t(Word::FieldTarget)}</legend>
                    <label><input type="radio" name="target" value="agent" prop:checked=move || !f.by_selector.get() on:change=move |_| f.by_selector.set(false)/>{lang.t(Word::OneAgent)}</label>
                    <select name="agent_id" on:change=move |ev| f.agent.set(event_target_value(&ev)) prop:value=move || f.agent.get()>
                        <option value="">"—"</option>
                        {options}
                    </select>
                    <label><input type="radio" name="target" value="selector" prop:checked=move || f.by_selector.get() on:change=move |_| f.by_selector.set(true)/>{lang.t(Word::LabelSelector)}</label>
                    <textarea name="selector" rows="2" prop:value=move || f.selector.get() on:input=move |ev| f.selector.set(event_target_value(&ev))></textarea>
                </fieldset>
                <button type="button" class="preview-button" on:click=move |_| send(true)>{lang.t(Word::Preview)}</button>
                <button type="submit" class="send-button">{lang.t(Word::Send)}</button>
            </form>
            <Preview/>
        </section>
    }
}

/// Whom the previewed command reaches, and why each other agent is left out.
#[component]
fn Preview() -> impl IntoView {
    let ui = use_operator();
    let lang = ui.lang;
    move || {
        ui.preview.get().map(|p| {
            let excluded = p
                .excluded
                .iter()
                .map(|e| view! { <li data-agent=e.agent_id.clone()><strong>{e.agent_id.clone()}</strong> " — " {e.reason.clone()}</li> })
                .collect_view();
            let matched = if p.matched.is_empty() {
                lang.t(Word::Nobody).to_string()
            } else {
                p.matched.join(", ")
            };
            view! {
                <div class="preview">
                    <p class="matched">{lang.t(Word::Reaches)} {matched}</p>
                    <ul class="excluded">{excluded}</ul>
                </div>
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(b: CommandBody) -> serde_json::Value {
        serde_json::to_value(b).unwrap()
    }

    #[test]
    fn the_form_builds_the_contract_body() {
        let b = json(command_body("pause_pipeline", " image ", "", false, "a1", "").unwrap());
        assert_eq!(
            b,
            serde_json::json!({"type": "pause_pipeline", "pipeline_id": "image", "agent_id": "a1"})
        );
        let b = json(
            command_body(
                "shutdown",
                "",
                "",
                true,
                "",
                r#"{"matchLabels":{"env":"prod"}}"#,
            )
            .unwrap(),
        );
        assert_eq!(b["selector"]["matchLabels"]["env"], "prod");
        assert!(b.get("agent_id").is_none());
        let b = json(
            command_body("update_config", "", r#"{"concurrency":2}"#, false, "a1", "").unwrap(),
        );
        assert_eq!(b["config"]["concurrency"], 2);
        assert_eq!(
            command_body("shutdown", "", "", false, " ", ""),
            Err(FormError::NoTarget)
        );
        assert!(command_body("shutdown", "", "{", false, "a1", "")
            .unwrap_err()
            .to_string()
            .starts_with("config is not JSON"));
        assert!(command_body("shutdown", "", "", true, "", "{nope")
            .unwrap_err()
            .to_string()
            .starts_with("selector is not JSON"));
        assert_eq!(
            command_body("reboot", "", "", false, "a1", ""),
            Err(FormError::UnknownType("reboot".into()))
        );
    }
}
