//! The Agents page's tables: agents with their pipelines (and buttons), the command ledger,
//! and the audit log.

use leptos::prelude::*;
use shared::control::{
    AgentView, AuditEntry, CommandBody, CommandType, CommandView, PipelineStat, TargetView,
};

use shared::{Lang, Word};

use crate::i18n::use_lang;
use crate::operator_ui::{dispatch, use_operator, Call, CallKind};

fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}%")).unwrap_or_else(|| "—".into())
}

fn command_call(kind: CommandType, pipeline: &str, agent: &str, lang: Lang) -> Call {
    Call {
        method: "POST",
        url: "/api/commands".into(),
        body: Some(CommandBody::for_pipeline(kind, pipeline, agent).to_json()),
        what: lang.command_on(kind.as_str(), pipeline, agent),
        kind: CallKind::Command,
    }
}

#[component]
fn Pipeline(agent: String, p: PipelineStat) -> impl IntoView {
    let ui = use_operator();
    let lang = use_lang();
    let buttons = CommandType::for_pipeline(&p.status)
        .iter()
        .map(|kind| {
            let call = command_call(*kind, &p.id, &agent, lang);
            view! {
                <button type="button" data-action=kind.verb() on:click=move |_| dispatch(ui, call.clone())>
                    {kind.button(lang)}
                </button>
            }
        })
        .collect_view();
    let jobs = p.queue.clone().map(|q| {
        view! {
            " · "
            <a class="jobs-link" href=format!("/jobs?queue={}", shared::fleet::encode(&q))>{lang.t(Word::JobsOfQueue)}</a>
        }
    });
    view! {
        <li class="agent-pipeline" data-pipeline=p.id.clone() data-status=p.status.as_str().to_string()>
            <span class="pid">{p.id.clone()}</span>
            " "
            <span class="pstatus">{p.status.as_str().to_string()}</span>
            " · "
            <span class="counts">{lang.done_errors(p.processed, p.errors)}</span>
            {jobs}
            <span class="actions" hidden=move || !ui.hydrated.get()>{buttons}</span>
        </li>
    }
}

#[component]
pub fn AgentsTable(agents: Vec<AgentView>) -> impl IntoView {
    let lang = use_lang();
    if agents.is_empty() {
        return view! { <p class="muted empty-agents">{lang.t(Word::NoAgentsYet)}</p> }.into_any();
    }
    let rows = agents
        .into_iter()
        .map(|a| {
            let labels = a
                .labels
                .iter()
                .map(|(k, v)| view! { <span class="label">{format!("{k}={v}")}</span> })
                .collect_view();
            let pipelines = a
                .pipelines
                .clone()
                .into_iter()
                .map(|p| view! { <Pipeline agent=a.agent_id.clone() p/> }.into_any())
                .collect_view();
            let (state, word) = if a.online {
                ("online", lang.t(Word::Online))
            } else {
                ("offline", lang.t(Word::Offline))
            };
            let mode = a.communication_mode.map(|m| m.as_str()).unwrap_or("—");
            view! {
                <tr data-agent=a.agent_id.clone() data-online=a.online.to_string()>
                    <td><strong>{a.agent_id.clone()}</strong><br/><span class="muted">{a.hostname.clone()}</span></td>
                    <td class=format!("online {state}")>{word}<br/><span class="muted">{lang.last_beat(a.last_beat_age_s)}</span></td>
                    <td class="mode">{mode}</td>
                    <td class="labels">{labels}</td>
                    <td>{percent(a.cpu_usage)} " cpu"<br/>{percent(a.memory_usage)} " mem"</td>
                    <td><ul class="agent-pipelines">{pipelines}</ul></td>
                </tr>
            }
            .into_any()
        })
        .collect_view();
    view! {
        <table class="agents">
            <thead>
                <tr>
                    <th>{lang.t(Word::ColAgent)}</th><th>{lang.t(Word::ColState)}</th><th>{lang.t(Word::ColMode)}</th>
                    <th>{lang.t(Word::ColLabels)}</th><th>{lang.t(Word::ColLoad)}</th><th>{lang.t(Word::ColPipelines)}</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

fn target_text(t: &TargetView, lang: Lang) -> String {
    let via = t
        .via
        .map(|v| {
            let word = if v == shared::control::Via::Pubsub {
                Word::ViaPubsub
            } else {
                Word::ViaPoll
            };
            format!(" via {}", lang.t(word))
        })
        .unwrap_or_default();
    let msg = t
        .message
        .as_ref()
        .map(|m| format!(" — {m}"))
        .unwrap_or_default();
    format!("{}: {}{via}{msg}", t.agent_id, t.state.as_str())
}

#[component]
pub fn Ledger(commands: Vec<CommandView>) -> impl IntoView {
    let lang = use_lang();
    if commands.is_empty() {
        return view! { <p class="muted">{lang.t(Word::NoCommandsYet)}</p> }.into_any();
    }
    let rows = commands
        .into_iter()
        .map(|c| {
            let target = match (&c.agent_id, &c.selector) {
                (Some(a), _) => a.clone(),
                (None, Some(s)) => serde_json::to_string(s).unwrap_or_default(),
                (None, None) => "—".into(),
            };
            let targets = c
                .targets
                .iter()
                .map(|t| {
                    view! {
                        <li class=format!("target {}", t.state.as_str()) data-agent=t.agent_id.clone() data-state=t.state.as_str()>
                            {target_text(t, lang)}
                        </li>
                    }
                })
                .collect_view();
            view! {
                <tr data-command=c.command_id.clone()>
                    <td><code>{c.command_id.clone()}</code><br/><span class="muted">{c.created_at.clone()}</span></td>
                    <td>{c.kind.as_str()} " " {c.pipeline_id.clone().unwrap_or_default()}</td>
                    <td class="target-spec">{target}<br/><span class="muted">{lang.t(Word::SentBy)}{c.sent_by.clone()}</span></td>
                    <td><ul class="targets">{targets}</ul></td>
                </tr>
            }
            .into_any()
        })
        .collect_view();
    view! {
        <table class="ledger">
            <thead><tr>
                <th>{lang.t(Word::ColCommand)}</th><th>{lang.t(Word::ColWhat)}</th>
                <th>{lang.t(Word::ColTarget)}</th><th>{lang.t(Word::ColPerAgent)}</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
pub fn Audit(entries: Vec<AuditEntry>) -> impl IntoView {
    let lang = use_lang();
    if entries.is_empty() {
        return view! { <p class="muted">{lang.t(Word::NothingAudited)}</p> }.into_any();
    }
    let rows = entries
        .into_iter()
        .map(|e| {
            let role = serde_json::to_value(e.role)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let ok = e.outcome == "ok";
            view! {
                <tr class=if ok { "ok" } else { "refused" }>
                    <td>{e.time}</td><td>{role}</td><td>{e.remote}</td>
                    <td>{e.action}</td><td>{e.target}</td><td class="outcome">{e.outcome}</td>
                </tr>
            }
            .into_any()
        })
        .collect_view();
    view! {
        <table class="audit">
            <thead><tr>
                <th>{lang.t(Word::ColTime)}</th><th>{lang.t(Word::ColRole)}</th><th>{lang.t(Word::ColFrom)}</th>
                <th>{lang.t(Word::ColAction)}</th><th>{lang.t(Word::ColTarget)}</th><th>{lang.t(Word::ColOutcome)}</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_button_sends_the_contract_body() {
        let c = command_call(CommandType::PausePipeline, "image", "a1", Lang::En);
        let body: serde_json::Value = serde_json::from_str(c.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"type": "pause_pipeline", "pipeline_id": "image", "agent_id": "a1"})
        );
        assert_eq!(c.url, "/api/commands");
    }
}
