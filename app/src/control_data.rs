//! The control plane's data for the pages: agents and the control info from the server's
//! memory during SSR, the ledger and the audit log through the server's store; the JSON API
//! in the browser. The same `shared` types either way.

use shared::control::{AgentsReply, AuditReply, CommandsReply, ControlInfo};

use crate::error::LoadError;

pub const AGENTS_URL: &str = "/api/agents";
pub const COMMANDS_URL: &str = "/api/commands?limit=20";
pub const AUDIT_URL: &str = "/api/audit?limit=20";
pub const CONTROL_URL: &str = "/api/control";

/// A load the SSR render awaits.
#[cfg(feature = "ssr")]
pub type Pending<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, LoadError>> + Send>>;

/// A server-side loader: a future the SSR render awaits.
#[cfg(feature = "ssr")]
pub type Loader<T> = std::sync::Arc<dyn Fn() -> Pending<T> + Send + Sync>;

/// What the server gives the pages during SSR, provided as Leptos context.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct ControlSource {
    pub info: ControlInfo,
    pub agents: std::sync::Arc<dyn Fn() -> AgentsReply + Send + Sync>,
    pub commands: Loader<CommandsReply>,
    pub audit: Loader<AuditReply>,
}

#[cfg(feature = "ssr")]
fn source() -> Option<ControlSource> {
    leptos::prelude::use_context::<ControlSource>()
}

pub async fn load_info() -> Result<ControlInfo, LoadError> {
    #[cfg(feature = "ssr")]
    if let Some(s) = source() {
        return Ok(s.info);
    }
    fetch(CONTROL_URL).await
}

pub async fn load_agents() -> Result<AgentsReply, LoadError> {
    #[cfg(feature = "ssr")]
    if let Some(s) = source() {
        return Ok((s.agents)());
    }
    fetch(AGENTS_URL).await
}

pub async fn load_commands() -> Result<CommandsReply, LoadError> {
    #[cfg(feature = "ssr")]
    if let Some(s) = source() {
        return (s.commands)().await;
    }
    fetch(COMMANDS_URL).await
}

pub async fn load_audit() -> Result<AuditReply, LoadError> {
    #[cfg(feature = "ssr")]
    if let Some(s) = source() {
        return (s.audit)().await;
    }
    fetch(AUDIT_URL).await
}

async fn fetch<T: serde::de::DeserializeOwned>(url: &'static str) -> Result<T, LoadError> {
    crate::nodes::load(None, url.to_string()).await
}
