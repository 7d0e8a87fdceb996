//! Redis names of Contract 4 (README "Jobs in Redis"). The history keys carry the `{jobs}`
//! hash tag, so every script over a record and its indexes stays in one slot on a Cluster;
//! the waiting list carries the queue's own name, so it shares the queue's slot when the
//! queue name has a tag. The results stream and the events channel are fixed names.

/// SPEC §10's results stream: every final status, capped.
pub const RESULTS: &str = "agent-office:results";
/// Entries the results stream keeps (approximately, `MAXLEN ~`).
pub const RESULTS_MAXLEN: u64 = 100_000;
/// Pub/sub channel of job events (`job.started`, …), JSON.
pub const EVENTS: &str = "agent-office:events";
/// Every record's id, scored by its last change (Redis's clock, ms).
pub const ALL: &str = "agent-office:{jobs}:all";
/// Records kept in all, at most (the oldest go first).
pub const ALL_CAP: u64 = 1_000_000;

/// A job's history record (a hash).
pub fn record(id: &str) -> String {
    format!("agent-office:{{jobs}}:job:{id}")
}

/// The ended jobs of a queue, scored by when they ended: `ok` (succeeded) or `bad` (dead and
/// expired) — what retention trims.
pub fn ended(queue: &str, failed: bool) -> String {
    let which = if failed { "bad" } else { "ok" };
    format!("agent-office:{{jobs}}:{which}:{queue}")
}

/// A running job's live output: a capped stream of chunks, then an `end` entry.
pub fn live_log(id: &str) -> String {
    format!("agent-office:{{jobs}}:log:{id}")
}

/// Jobs of a queue waiting for their dependencies (a list of items).
pub fn waiting(queue: &str) -> String {
    format!("agent-office:waiting:queue:{queue}")
}

/// A queue's failed-attempt counts (a hash: retry field → count), in the queue's slot.
pub fn retries(queue: &str) -> String {
    format!("agent-office:retries:queue:{queue}")
}

/// Live log chunks: bytes per entry, entries kept, and how long the stream lives.
pub const LOG_CHUNK: usize = 4 * 1024;
pub const LOG_ENTRIES: u64 = 64;
pub const LOG_TTL_S: u64 = 3600;

#[cfg(test)]
mod tests {
    #[test]
    fn history_keys_share_one_slot_and_waiting_shares_the_queue_slot() {
        assert_eq!(super::record("j1"), "agent-office:{jobs}:job:j1");
        assert_eq!(super::ended("q", true), "agent-office:{jobs}:bad:q");
        assert_eq!(super::ended("q", false), "agent-office:{jobs}:ok:q");
        assert_eq!(super::live_log("j1"), "agent-office:{jobs}:log:j1");
        assert_eq!(super::waiting("{img}"), "agent-office:waiting:queue:{img}");
    }
}
