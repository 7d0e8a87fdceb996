//! The Agents page's tables: agents with their pipelines (and buttons), the command ledger,
//! and the audit log.

use leptos::prelude::*;
use shared::control::{
    AgentView, AuditEntry, CommandBody, CommandType, CommandView, PipelineStat, TargetView,
};

use crate::operator_ui::{dispatch, use_operator, Call, CallKind};

fn beat(a: &AgentView) -> String {
    shared::time::last_beat(a.last_beat_age_s)
}

fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}%")).unwrap_or_else(|| "—".into())
}

fn command_call(kind: CommandType, pipeline: &str, agent: &str) -> Call {
    Call {
        method: "POST",
        url: "/api/commands".into(),
        body: Some(CommandBody::for_pipeline(kind, pipeline, agent).to_json()),
        what: format!("{} {pipeline} on {agent}", kind.as_str()),
        kind: CallKind::Command,
    }
}

#[component]
fn Pipeline(agent: String, p: PipelineStat) -> impl IntoView {
    let ui = use_operator();
    let buttons = CommandType::for_pipeline(&p.status)
        .iter()
        .map(|kind| {
            let call = command_call(*kind, &p.id, &agent);
            view! {
                <button type="button" data-action=kind.verb() on:click=move |_| dispatch(ui, call.clone())>
                    {kind.verb()}
                </button>
            }
        })
        .collect_view();
    view! {
        <li class="agent-pipeline" data-pipeline=p.id.clone() data-status=p.status.as_str().to_string()>
            <span class="pid">{p.id.clone()}</span>
            " "
            <span class="pstatus">{p.status.as_str().to_string()}</span>
            " · "
            <span class="counts">{p.processed} " done, " {p.errors} " errors"</span>
            <span class="actions" hidden=move || !ui.hydrated.get()>{buttons}</span>
        </li>
    }
}

#[component]
pub fn AgentsTable(agents: Vec<AgentView>) -> impl IntoView {
    if agents.is_empty() {
        return view! {
            <p class="muted empty-agents">
                "No agents registered yet. An agent registers with POST /api/agents/register (AGENT_TOKEN) or through Redis; see the README."
            </p>
        }
        .into_any();
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
            let (state, word) = if a.online { ("online", "● online") } else { ("offline", "○ offline") };
            let mode = a.communication_mode.map(|m| m.as_str()).unwrap_or("—");
            view! {
                <tr data-agent=a.agent_id.clone() data-online=a.online.to_string()>
                    <td><strong>{a.agent_id.clone()}</strong><br/><span class="muted">{a.hostname.clone()}</span></td>
                    <td class=format!("online {state}")>{word}<br/><span class="muted">{beat(&a)}</span></td>
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
                <tr><th>"agent"</th><th>"state"</th><th>"mode"</th><th>"labels"</th><th>"load"</th><th>"pipelines"</th></tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

fn target_text(t: &TargetView) -> String {
    let via = t
        .via
        .map(|v| {
            format!(
                " via {}",
                if v == shared::control::Via::Pubsub {
                    "pub/sub"
                } else {
                    "poll"
                }
            )
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
    if commands.is_empty() {
        return view! { <p class="muted">"No commands sent yet."</p> }.into_any();
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
                            {target_text(t)}
                        </li>
                    }
                })
                .collect_view();
            view! {
                <tr data-command=c.command_id.clone()>
                    <td><code>{c.command_id.clone()}</code><br/><span class="muted">{c.created_at.clone()}</span></td>
                    <td>{c.kind.as_str()} " " {c.pipeline_id.clone().unwrap_or_default()}</td>
                    <td class="target-spec">{target}<br/><span class="muted">{"by "}{c.sent_by.clone()}</span></td>
                    <td><ul class="targets">{targets}</ul></td>
                </tr>
            }
            .into_any()
        })
        .collect_view();
    view! {
        <table class="ledger">
            <thead><tr><th>"command"</th><th>"what"</th><th>"target"</th><th>"per agent"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
pub fn Audit(entries: Vec<AuditEntry>) -> impl IntoView {
    if entries.is_empty() {
        return view! { <p class="muted">"Nothing audited yet."</p> }.into_any();
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
            <thead><tr><th>"time"</th><th>"role"</th><th>"from"</th><th>"action"</th><th>"target"</th><th>"outcome"</th></tr></thead>
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
        let c = command_call(CommandType::PausePipeline, "image", "a1");
        let body: serde_json::Value = serde_json::from_str(c.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"type": "pause_pipeline", "pipeline_id": "image", "agent_id": "a1"})
        );
        assert_eq!(c.url, "/api/commands");
    }
}
