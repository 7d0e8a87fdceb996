//! The worker registry (SPEC §3): the workers a deployment expects, each always shown, alive
//! or not. Contract data, so the server, the demo and the agent read one definition.

use serde::Deserialize;

use crate::heartbeat::WorkerKind;

/// A registered worker (SPEC §3). Registered workers always appear, alive or not.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSpec {
    pub name: String,
    pub kind: WorkerKind,
    /// The queue name `<q>` of `queue:<q>`; none for workers not fed through Redis.
    #[serde(default)]
    pub queue: Option<String>,
}

/// The registry this product was designed for.
pub fn default_fleet() -> Vec<WorkerSpec> {
    let render = |name: &str| WorkerSpec {
        name: name.to_string(),
        kind: WorkerKind::Render,
        queue: Some(name.to_string()),
    };
    vec![
        render("music-render"),
        render("video-render"),
        render("image-render"),
        render("insta-render"),
        WorkerSpec {
            name: "task-watcher".into(),
            kind: WorkerKind::Watcher,
            queue: None,
        },
        WorkerSpec {
            name: "ai_trade".into(),
            kind: WorkerKind::Trader,
            queue: None,
        },
    ]
}
