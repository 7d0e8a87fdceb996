//! The control plane's Redis keys. All carry the hash tag `{ctl}`, so every multi-key atomic
//! step (the Lua scripts that create a command or move a target's state) touches one hash slot
//! and runs unchanged on Redis Cluster. README "Control plane: Redis keys" lists type, cap and
//! TTL of each.

/// Hash: agent id → `AgentRecord` JSON. At most [`MAX_AGENTS`] fields.
pub const AGENTS: &str = "agent-office:{ctl}:agents";
/// String counter, bumped on every registry change, so readers re-read the registry only then.
pub const AGENTS_VERSION: &str = "agent-office:{ctl}:agents:version";
/// Sorted set: command id scored by creation time (ms). At most [`MAX_COMMANDS`].
pub const COMMANDS: &str = "agent-office:{ctl}:commands";
/// Sorted set: command ids with targets still open, scored by deadline (ms).
pub const PENDING: &str = "agent-office:{ctl}:pending";
/// Stream: what agents send through Redis (`InboxMessage` JSON in field `msg`).
pub const INBOX: &str = "agent-office:{ctl}:inbox";
/// The server's consumer group on [`INBOX`].
pub const INBOX_GROUP: &str = "agent-office";
/// Stream: the audit log (`AuditEntry` JSON in field `e`), about [`MAX_AUDIT`] entries.
pub const AUDIT: &str = "agent-office:{ctl}:audit";

pub const MAX_AGENTS: usize = 50_000;
pub const MAX_COMMANDS: usize = 10_000;
/// Entries kept per agent stream (approximate trim).
pub const MAX_STREAM: usize = 1_000;
pub const MAX_INBOX: usize = 100_000;
pub const MAX_AUDIT: usize = 10_000;
/// A ledger entry lives this long at most, even below the cap.
pub const COMMAND_TTL_S: u64 = 7 * 24 * 3600;
/// An agent heartbeat key's TTL: gone 30 s after the last beat, as offline is defined.
pub const BEAT_TTL_S: u64 = 30;

/// String with TTL [`BEAT_TTL_S`]: the agent's last `AgentHeartbeat` JSON.
pub fn beat(agent_id: &str) -> String {
    format!("agent-office:{{ctl}}:beat:{agent_id}")
}

/// Stream: the commands sent to one agent (`AgentCommand` JSON in field `cmd`); its entry ids
/// are the agent's cursors. About [`MAX_STREAM`] entries.
pub fn stream(agent_id: &str) -> String {
    format!("agent-office:{{ctl}}:stream:{agent_id}")
}

/// Hash: field `meta` (the command) and `t:<agent>` (that target's state) plus `open`, the
/// count of targets not yet final. TTL [`COMMAND_TTL_S`].
pub fn command(command_id: &str) -> String {
    format!("agent-office:{{ctl}}:cmd:{command_id}")
}

/// Pub/sub channel that wakes one agent; the message is the `AgentCommand` JSON.
pub fn wake(agent_id: &str) -> String {
    format!("agent-office:agent:{agent_id}:commands")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_key_shares_the_ctl_slot() {
        for k in [
            super::AGENTS.to_string(),
            super::AGENTS_VERSION.to_string(),
            super::COMMANDS.to_string(),
            super::PENDING.to_string(),
            super::INBOX.to_string(),
            super::AUDIT.to_string(),
            super::beat("a"),
            super::stream("a"),
            super::command("c"),
        ] {
            assert!(k.starts_with("agent-office:{ctl}:"), "{k}");
        }
    }
}
