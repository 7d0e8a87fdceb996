//! Schedules (SPEC §11, Contract 5): cron triggers that push a job per due time, exactly once
//! whatever the number of server replicas ([`fire`]), their endpoints ([`http`]), the cron
//! arithmetic ([`cron`]) and their Redis keys ([`store`]).

pub mod cron;
pub mod fire;
mod http;
pub mod store;

use crate::control::Store;

pub use http::router;

/// What the schedule handlers share.
#[derive(Clone)]
pub struct Schedules {
    pub store: Store,
}
