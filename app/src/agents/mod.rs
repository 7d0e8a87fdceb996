//! `/agents`: the control plane's page — agents with their pipelines, the command form with
//! its preview, the command ledger changing live, and the audit log. Server-rendered and
//! readable without JavaScript; the controls work once hydrated and with the operator token.

mod data;
mod form;
mod views;

use leptos::prelude::*;
use leptos_meta::Title;
use shared::Word;

use crate::i18n::{use_lang, LangSwitch};
use crate::nav::PagesNav;
use crate::operator_ui::{Flash, OperatorUi, TokenPrompt};
use data::use_agents_data;
use form::CommandForm;
use views::{AgentsTable, Audit, Ledger};

#[component]
pub fn AgentsPage() -> impl IntoView {
    let ui = OperatorUi::provide();
    let lang = use_lang();
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
        <Title text=lang.t(Word::AgentsTitle)/>
        <header class="top">
            <h1>"🛰️ " {lang.t(Word::AgentsTitle)}</h1>
            <PagesNav current="/agents"/>
            <LangSwitch path="/agents"/>
        </header>
        <Suspense fallback=|| ()>
            {move || {
                data.info.get().and_then(Result::ok).filter(|i| i.read_only).map(|_| {
                    view! {
                        <p class="banner stale read-only" role="note">{lang.t(Word::ReadOnlyNote)}</p>
                    }
                })
            }}
        </Suspense>
        <Show when=move || data.poll_failed.get()>
            <div class="banner stale">{lang.t(Word::RefreshFailed)}</div>
        </Show>
        <TokenPrompt/>
        <Flash/>
        <section class="agents-section">
            <h2>{lang.t(Word::AgentsSection)}</h2>
            <Suspense fallback=move || view! { <p class="loading">{lang.t(Word::Loading)}</p> }>
                {move || match agents.get() {
                    Some(a) => view! { <AgentsTable agents=a.agents/> }.into_any(),
                    None => view! { <p class="error">{lang.t(Word::NoAgentData)}</p> }.into_any(),
                }}
            </Suspense>
        </section>
        <CommandForm agent_ids/>
        <section class="ledger-section">
            <h2>{lang.t(Word::CommandsSection)}</h2>
            <Suspense fallback=|| ()>
                {move || commands.get().map(|c| view! { <Ledger commands=c.commands/> })}
            </Suspense>
        </section>
        <section class="audit-section">
            <h2>{lang.t(Word::AuditSection)}</h2>
            <Suspense fallback=|| ()>
                {move || audit.get().map(|a| view! { <Audit entries=a.entries/> })}
            </Suspense>
        </section>
    }
}
