//! Jobs you can follow (SPEC §10, Contract 4): what a queue item is as a job, its status, its
//! history record and the Redis names the agent writes and the server reads.

mod item;
pub mod keys;
pub mod record;
mod status;

pub use item::{
    hashed_id, is_valid_id, read_item, retry_field, Item, ID_RULE, MAX_DEPENDS_ON, MAX_ID_LEN,
};
pub use record::{Attempt, AttemptFacts, JobDetail, JobRow, JobsReply, Outcome};
pub use status::JobStatus;
