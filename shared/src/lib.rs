//! The contracts Agent Office shares between the server, the pipeline agent and the browser.
//!
//! Everything here is plain data and pure functions: it builds for `wasm32` and native alike,
//! so the server that derives a link status and the dashboard that colours it cannot disagree.

#[macro_use]
mod macros;

pub mod alerts;
pub mod control;
pub mod fleet;
pub mod heartbeat;
pub mod i18n;
pub mod jobs;
pub mod keys;
pub mod nodes;
pub mod registry;
pub mod reuse;
pub mod schedules;
pub mod series;
pub mod slot;
pub mod status;
pub mod time;
pub mod worker;

pub use heartbeat::{parse_heartbeat, read_beat, Beat, Heartbeat, HeartbeatError};
pub use i18n::{Lang, Word};
pub use nodes::{Link, LinkKind, NodesSnapshot, WorkerView};
pub use status::{LinkStatus, StateLabel};
pub use worker::{WorkerKind, WorkerState};
