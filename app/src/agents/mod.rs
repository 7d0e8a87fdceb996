//! `/agents`: the control plane's page — agents with their pipelines, the command form with
//! its preview, the command ledger changing live, and the audit log. Server-rendered and
//! readable without JavaScript; the controls work once hydrated and with the operator token.

mod data;
mod form;
mod views;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::operator_ui::{Flash, OperatorUi, TokenPrompt};
use data::use_agents_data;
use form::CommandForm;
use views::{AgentsTable, Audit, Ledger};

#[component]
pub fn AgentsPage() -> impl IntoView {
    let ui = OperatorUi::provide();
    let data = use_agents_data(ui.changed);
    let agents = data.agents();
    let commands = data.commands();
    let audit = data.audit();
    let agent_ids = Signal::derive(move || {
        agents
            .get()
            .map(|a| a.agents.into_iter().map(|a| a.agent_id).collect())
            .unwrap_or_default()
    });
    view! {
        <Title text="Agents — control plane"/>
        <header class="top">
            <h1>"🛰️ Agents — control plane"</h1>
            <nav class="pages">
                <a href="/infra">"Infra"</a>
                " · "
                <a href="/agents" aria-current="page">"Agents"</a>
            </nav>
        </header>
        <Suspense fallback=|| ()>
            {move || {
                data.info.get().and_then(Result::ok).filter(|i| i.read_only).map(|_| {
                    view! {
                        <p class="banner stale read-only" role="note">
                            "Read-only: this server has no OPERATOR_TOKEN configured, so commands, label changes and queue actions are refused. Set OPERATOR_TOKEN and restart to enable them."
                        </p>
                    }
                })
            }}
        </Suspense>
        <Show when=move || data.poll_failed.get()>
            <div class="banner stale">"⚠ refresh failed — showing the last good data"</div>
        </Show>
        <TokenPrompt/>
        <Flash/>
        <section class="agents-section">
            <h2>"Agents"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || match agents.get() {
                    Some(a) => view! { <AgentsTable agents=a.agents/> }.into_any(),
                    None => view! { <p class="error">"No agent data yet."</p> }.into_any(),
                }}
            </Suspense>
        </section>
        <CommandForm agent_ids/>
        <section class="ledger-section">
            <h2>"Commands"</h2>
            <Suspense fallback=|| ()>
                {move || commands.get().map(|c| view! { <Ledger commands=c.commands/> })}
            </Suspense>
        </section>
        <section class="audit-section">
            <h2>"Audit log"</h2>
            <Suspense fallback=|| ()>
                {move || audit.get().map(|a| view! { <Audit entries=a.entries/> })}
            </Suspense>
        </section>
    }
}
