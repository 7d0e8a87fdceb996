//! The command form: a type, its pipeline or config, a target (one agent or a label
//! selector), a preview of whom it reaches (the server's dry run, with the reason for every
//! agent left out), then send.

use leptos::prelude::*;
use shared::control::{CommandBody, CommandType};

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

#[component]
pub fn CommandForm(agent_ids: Signal<Vec<String>>) -> impl IntoView {
    let ui = use_operator();
    let kind = RwSignal::new("pause_pipeline".to_string());
    let pipeline = RwSignal::new(String::new());
    let config = RwSignal::new(String::new());
    let by_selector = RwSignal::new(false);
    let agent = RwSignal::new(String::new());
    let selector = RwSignal::new(r#"{"matchLabels": {}}"#.to_string());
    let build = move || {
        command_body(
            &kind.get_untracked(),
            &pipeline.get_untracked(),
            &config.get_untracked(),
            by_selector.get_untracked(),
            &agent.get_untracked(),
            &selector.get_untracked(),
        )
    };
    let what = move || {
        let target = if by_selector.get_untracked() {
            "selector".to_string()
        } else {
            agent.get_untracked()
        };
        format!("{} to {target}", kind.get_untracked())
    };
    let send = move |dry: bool| match build() {
        Ok(body) => {
            if !dry {
                ui.preview.set(None);
            }
            dispatch(
                ui,
                Call {
                    method: "POST",
                    url: if dry {
                        "/api/commands?dry_run=true".into()
                    } else {
                        "/api/commands".into()
                    },
                    body: Some(body.to_json()),
                    what: if dry {
                        format!("preview of {}", what())
                    } else {
                        what()
                    },
                    kind: if dry {
                        CallKind::DryRun
                    } else {
                        CallKind::Command
                    },
                },
            )
        }
        Err(why) => ui.flash.set(Some((false, format!("✗ {why}")))),
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
    let preview = move || {
        ui.preview.get().map(|p| {
            let excluded = p
                .excluded
                .iter()
                .map(|e| view! { <li data-agent=e.agent_id.clone()><strong>{e.agent_id.clone()}</strong> " — " {e.reason.clone()}</li> })
                .collect_view();
            let matched = if p.matched.is_empty() {
                "nobody — sending would be refused".to_string()
            } else {
                p.matched.join(", ")
            };
            view! {
                <div class="preview">
                    <p class="matched">"Reaches: " {matched}</p>
                    <ul class="excluded">{excluded}</ul>
                </div>
            }
        })
    };
    view! {
        <section class="command-form" hidden=move || !ui.hydrated.get()>
            <h2>"Send a command"</h2>
            <form on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); send(false); }>
                <label>"type "
                    <select name="type" on:change=move |ev| kind.set(event_target_value(&ev)) prop:value=move || kind.get()>{kinds}</select>
                </label>
                <label>"pipeline "
                    <input name="pipeline_id" placeholder="image" prop:value=move || pipeline.get() on:input=move |ev| pipeline.set(event_target_value(&ev))/>
                </label>
                <label>"config (JSON, update_config) "
                    <input name="config" placeholder=r#"{"concurrency": 2}"# prop:value=move || config.get() on:input=move |ev| config.set(event_target_value(&ev))/>
                </label>
                <fieldset>
                    <legend>"target"</legend>
                    <label><input type="radio" name="target" value="agent" prop:checked=move || !by_selector.get() on:change=move |_| by_selector.set(false)/>" one agent "</label>
                    <select name="agent_id" on:change=move |ev| agent.set(event_target_value(&ev)) prop:value=move || agent.get()>
                        <option value="">"—"</option>
                        {options}
                    </select>
                    <label><input type="radio" name="target" value="selector" prop:checked=move || by_selector.get() on:change=move |_| by_selector.set(true)/>" label selector "</label>
                    <textarea name="selector" rows="2" prop:value=move || selector.get() on:input=move |ev| selector.set(event_target_value(&ev))></textarea>
                </fieldset>
                <button type="button" class="preview-button" on:click=move |_| send(true)>"Preview"</button>
                <button type="submit" class="send-button">"Send"</button>
            </form>
            {preview}
        </section>
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
