//! What a worker is and what it says it is doing: the kinds and states of Contract 1 (SPEC §1)
//! as types, so a state is matched once, here, and never as a string elsewhere.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Contract 1: a worker beats every 15 s ...
pub const HEARTBEAT_INTERVAL_S: u64 = 15;
/// ... with `SET <key> <json> EX 45` (TTL = 3 × interval). Writers (the agent, the demo) use it
/// as the key's TTL; readers as the window in which a beat counts.
pub const HEARTBEAT_TTL_S: u64 = 3 * HEARTBEAT_INTERVAL_S;

/// What a worker does. `Unknown` is never accepted from a heartbeat; it marks a discovered
/// worker whose heartbeat could not be read. Ordered by its word (the `/nodes` summary's keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    Render,
    Watcher,
    Trader,
    #[serde(other)]
    Unknown,
}

impl WorkerKind {
    /// Every kind, in declaration order: `ALL[k as usize] == k`.
    pub const ALL: [Self; 4] = [Self::Render, Self::Watcher, Self::Trader, Self::Unknown];

    /// The kind named in a heartbeat, if it is one the contract knows.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "render" => Some(Self::Render),
            "watcher" => Some(Self::Watcher),
            "trader" => Some(Self::Trader),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Render => "render",
            Self::Watcher => "watcher",
            Self::Trader => "trader",
            Self::Unknown => "unknown",
        }
    }

    /// The word a person reads for it.
    pub fn word(self, lang: crate::i18n::Lang) -> &'static str {
        use crate::i18n::Word;
        lang.t(match self {
            Self::Render => Word::KindRender,
            Self::Watcher => Word::KindWatcher,
            Self::Trader => Word::KindTrader,
            Self::Unknown => Word::KindUnknown,
        })
    }

    /// The states the contract allows for this kind.
    pub fn states(self) -> &'static [WorkerState] {
        use WorkerState::*;
        match self {
            Self::Render => &[Idle, Busy, Paused],
            Self::Watcher => &[Trading, Free],
            Self::Trader => &[MarketOpen, MarketClosed],
            Self::Unknown => &[],
        }
    }

    /// Whether the contract lists `state` for this kind.
    pub fn allows(self, state: &WorkerState) -> bool {
        self.states().contains(state)
    }
}

ord_by_word!(WorkerKind);

/// A worker's state: one the contract lists (per kind, see [`WorkerKind::states`]), or any other
/// word kept exactly as the worker wrote it — shown as written, never relabelled. On the wire it
/// is the word; a worker that is not alive has none (`null` in `/nodes`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WorkerState {
    /// render
    Idle,
    Busy,
    Paused,
    /// watcher
    Trading,
    Free,
    /// trader
    MarketOpen,
    MarketClosed,
    /// A word the contract does not list.
    Other(String),
}

impl WorkerState {
    /// The state for a word: a known one, or [`WorkerState::Other`] holding it.
    pub fn parse(s: &str) -> Self {
        match s {
            "idle" => Self::Idle,
            "busy" => Self::Busy,
            "paused" => Self::Paused,
            "trading" => Self::Trading,
            "free" => Self::Free,
            "market_open" => Self::MarketOpen,
            "market_closed" => Self::MarketClosed,
            other => Self::Other(other.to_string()),
        }
    }

    /// The word as the contract (or the worker) writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Paused => "paused",
            Self::Trading => "trading",
            Self::Free => "free",
            Self::MarketOpen => "market_open",
            Self::MarketClosed => "market_closed",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for WorkerState {
    fn from(s: &str) -> Self {
        Self::parse(s)
    }
}

impl PartialEq<str> for WorkerState {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for WorkerState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

serde_as_word!(WorkerState);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_itself() {
        for kind in WorkerKind::ALL {
            for state in kind.states() {
                assert_eq!(&WorkerState::parse(state.as_str()), state);
                assert!(kind.allows(state));
            }
        }
        // `null` is how /nodes says "no state"; a worker that writes "down" is shown as written.
        assert_eq!(
            WorkerState::parse("down"),
            WorkerState::Other("down".into())
        );
        let odd = WorkerState::parse("starting");
        assert_eq!(odd, WorkerState::Other("starting".into()));
        assert_eq!(odd.as_str(), "starting", "kept as written");
        assert!(!WorkerKind::Render.allows(&odd));
        assert!(!WorkerKind::Render.allows(&WorkerState::Trading));
    }

    #[test]
    fn the_wire_form_is_the_word() {
        let v = serde_json::to_string(&WorkerState::MarketOpen).unwrap();
        assert_eq!(v, "\"market_open\"");
        let back: WorkerState = serde_json::from_str("\"Warming up\"").unwrap();
        assert_eq!(back.as_str(), "Warming up");
        let back: WorkerState = serde_json::from_str(&v).unwrap();
        assert_eq!(back, WorkerState::MarketOpen);
    }

    #[test]
    fn the_ttl_is_three_beats() {
        assert_eq!((HEARTBEAT_INTERVAL_S, HEARTBEAT_TTL_S), (15, 45));
    }
}
