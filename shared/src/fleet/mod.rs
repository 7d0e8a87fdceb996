//! Big fleets: the `summary` block of `/nodes` (counts by status, kind and group, in
//! [`summary`]), the query parameters that filter and page it
//! (`?status=down,degraded&kind=render&q=img&limit=100`, in [`query`]), and the worker groups
//! the 3D view draws instead of single workers above [`GROUP_ABOVE`].

mod query;
mod summary;

pub use crate::nodes::{GroupSummary, Page, Summary};
pub use query::{encode, links_of, NodesQuery, Order, QueryError};
pub use summary::{group_of, summarize};

/// Above this many workers the 3D view draws one tube per group.
pub const GROUP_ABOVE: usize = 200;
/// The summary lists at most this many groups, largest first; the rest are folded into one
/// entry named [`OTHER_GROUP`].
pub const MAX_GROUPS: usize = 100;
pub const OTHER_GROUP: &str = "(other)";
/// The largest page `limit` accepts.
pub const MAX_LIMIT: usize = 10_000;
