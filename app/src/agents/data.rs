//! The data behind `/agents`: the first agents, ledger and audit (SSR from the server), then
//! polling in the browser, sooner after the operator changed something.

use leptos::prelude::*;
use shared::control::{AgentsReply, AuditReply, CommandsReply, ControlInfo};

use crate::control_data::{load_agents, load_audit, load_commands, load_info};
use crate::error::LoadError;

/// How often the browser refreshes the page's data.
#[cfg(browser)]
const REFRESH_MS: u32 = 1_500;

#[derive(Clone, Copy)]
pub struct AgentsData {
    pub info: Resource<Result<ControlInfo, LoadError>>,
    pub first_agents: Resource<Result<AgentsReply, LoadError>>,
    pub first_commands: Resource<Result<CommandsReply, LoadError>>,
    pub first_audit: Resource<Result<AuditReply, LoadError>>,
    pub agents: RwSignal<Option<AgentsReply>>,
    pub commands: RwSignal<Option<CommandsReply>>,
    pub audit: RwSignal<Option<AuditReply>>,
    pub poll_failed: RwSignal<bool>,
}

impl AgentsData {
    pub fn agents(self) -> Signal<Option<AgentsReply>> {
        Signal::derive(move || {
            self.agents
                .get()
                .or_else(|| self.first_agents.get().and_then(Result::ok))
        })
    }

    pub fn commands(self) -> Signal<Option<CommandsReply>> {
        Signal::derive(move || {
            self.commands
                .get()
                .or_else(|| self.first_commands.get().and_then(Result::ok))
        })
    }

    pub fn audit(self) -> Signal<Option<AuditReply>> {
        Signal::derive(move || {
            self.audit
                .get()
                .or_else(|| self.first_audit.get().and_then(Result::ok))
        })
    }
}

/// Loads the first data; in the browser, polls until the page goes, and at once whenever
/// `changed` moves.
pub fn use_agents_data(changed: RwSignal<u64>) -> AgentsData {
    let data = AgentsData {
        info: Resource::new(|| (), |_| load_info()),
        first_agents: Resource::new(|| (), |_| load_agents()),
        first_commands: Resource::new(|| (), |_| load_commands()),
        first_audit: Resource::new(|| (), |_| load_audit()),
        agents: RwSignal::new(None),
        commands: RwSignal::new(None),
        audit: RwSignal::new(None),
        poll_failed: RwSignal::new(false),
    };
    #[cfg(browser)]
    Effect::new(move |_| poll(data, changed));
    #[cfg(not(browser))]
    let _ = changed;
    data
}

#[cfg(browser)]
fn poll(data: AgentsData, changed: RwSignal<u64>) {
    use futures::{FutureExt, StreamExt};

    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (wake, mut woken) = futures::channel::mpsc::unbounded::<()>();
    // Refresh at once after an accepted operator call.
    Effect::new(move |prev: Option<u64>| {
        let now = changed.get();
        if prev.is_some() {
            let _ = wake.unbounded_send(());
        }
        now
    });
    let flag = running.clone();
    on_cleanup(move || flag.store(false, std::sync::atomic::Ordering::Relaxed));
    leptos::task::spawn_local(async move {
        while running.load(std::sync::atomic::Ordering::Relaxed) {
            let mut tick = gloo_timers::future::TimeoutFuture::new(REFRESH_MS).fuse();
            futures::select! {
                _ = tick => {}
                _ = woken.next() => {}
            }
            while woken.try_recv().is_ok() {}
            let agents = load_agents().await;
            let commands = load_commands().await;
            let audit = load_audit().await;
            data.poll_failed
                .try_set(agents.is_err() || commands.is_err() || audit.is_err());
            if let Ok(a) = agents {
                data.agents.try_set(Some(a));
            }
            if let Ok(c) = commands {
                data.commands.try_set(Some(c));
            }
            if let Ok(a) = audit {
                data.audit.try_set(Some(a));
            }
        }
    });
}
