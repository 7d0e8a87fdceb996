//! Status → colour and state → label: the one mapping the cards, the HUD and the 3D tubes use.

use serde::{Deserialize, Serialize};

use crate::i18n::{Lang, Word};
use crate::worker::WorkerState;

/// The status of a link (and of the worker card it belongs to). Ordered by its word, so maps
/// keyed by status (the `/nodes` summary) keep the order they always had on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStatus {
    Healthy,
    Paused,
    Degraded,
    Down,
    #[serde(other)]
    Unknown,
}

impl LinkStatus {
    /// Every status, least severe first: `ALL[s.severity()] == s`.
    pub const ALL: [Self; 5] = [
        Self::Healthy,
        Self::Unknown,
        Self::Paused,
        Self::Degraded,
        Self::Down,
    ];

    /// The colour of SPEC §5.
    pub fn colour(self) -> &'static str {
        match self {
            Self::Healthy => "#22c55e",
            Self::Paused => "#f59e0b",
            Self::Degraded => "#eab308",
            Self::Down => "#ef4444",
            Self::Unknown => "#64748b",
        }
    }

    /// The same colour as red, green, blue bytes, for the 3D scene.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Self::Healthy => [0x22, 0xc5, 0x5e],
            Self::Paused => [0xf5, 0x9e, 0x0b],
            Self::Degraded => [0xea, 0xb3, 0x08],
            Self::Down => [0xef, 0x44, 0x44],
            Self::Unknown => [0x64, 0x74, 0x8b],
        }
    }

    /// The icon shown beside the colour, so colour is never the only signal.
    pub fn icon(self) -> &'static str {
        match self {
            Self::Healthy => "✔",
            Self::Paused => "⏸",
            Self::Degraded => "❌",
            Self::Down => "⚠",
            Self::Unknown => "?",
        }
    }

    /// How bad it is, worst highest (down 4, degraded 3, paused 2, unknown 1, healthy 0): the
    /// order of "problems first" on the cards, of the HUD labels that win, of a group's colour.
    pub fn severity(self) -> u8 {
        match self {
            Self::Down => 4,
            Self::Degraded => 3,
            Self::Paused => 2,
            Self::Unknown => 1,
            Self::Healthy => 0,
        }
    }

    /// The word a person reads for it.
    pub fn word(self, lang: Lang) -> &'static str {
        lang.t(match self {
            Self::Healthy => Word::StatusHealthy,
            Self::Paused => Word::StatusPaused,
            Self::Degraded => Word::StatusDegraded,
            Self::Down => Word::StatusDown,
            Self::Unknown => Word::StatusUnknown,
        })
    }

    /// The word used in CSS classes and in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Paused => "paused",
            Self::Degraded => "degraded",
            Self::Down => "down",
            Self::Unknown => "unknown",
        }
    }
}

ord_by_word!(LinkStatus);

/// The label a person reads for a worker's state (SPEC §5): one of the spec's six, or a state
/// the contract does not list, shown as the worker wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateLabel<'a> {
    Down,
    Paused,
    Processing,
    MarketOpen,
    MarketClosed,
    Idle,
    AsWritten(&'a str),
}

impl<'a> StateLabel<'a> {
    pub fn of(alive: bool, state: Option<&'a WorkerState>) -> Self {
        let Some(state) = state.filter(|_| alive) else {
            // Down, or alive with no state in its beat (SPEC §5: "otherwise 🟢 idle").
            return if alive { Self::Idle } else { Self::Down };
        };
        match state {
            WorkerState::Paused => Self::Paused,
            WorkerState::Busy => Self::Processing,
            WorkerState::MarketOpen => Self::MarketOpen,
            WorkerState::MarketClosed => Self::MarketClosed,
            // SPEC §5: "otherwise 🟢 idle" — the render's idle and the watcher's two states.
            WorkerState::Idle | WorkerState::Trading | WorkerState::Free => Self::Idle,
            WorkerState::Other(s) => Self::AsWritten(s),
        }
    }

    /// SPEC §5's labels in English, the plan's in Korean.
    pub fn text(self, lang: Lang) -> &'a str {
        let word = match self {
            Self::Down => Word::StateDown,
            Self::Paused => Word::StatePaused,
            Self::Processing => Word::StateProcessing,
            Self::MarketOpen => Word::StateMarketOpen,
            Self::MarketClosed => Word::StateMarketClosed,
            Self::Idle => Word::StateIdle,
            Self::AsWritten(s) => return s,
        };
        lang.t(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_outrank_health() {
        use LinkStatus::*;
        assert!(Down.severity() > Degraded.severity());
        assert!(Degraded.severity() > Paused.severity());
        assert!(Paused.severity() > Unknown.severity());
        assert!(Degraded.severity() > Healthy.severity());
    }
    #[test]
    fn labels_match_the_spec() {
        let cases = [
            (false, "busy", "🔴 down"),
            (true, "paused", "⏸ paused (trading)"),
            (true, "busy", "⚙️ processing"),
            (true, "market_open", "📈 market open"),
            (true, "market_closed", "🌙 market closed"),
            (true, "idle", "🟢 idle"),
            (true, "trading", "🟢 idle"),
            (true, "free", "🟢 idle"),
            (true, "starting", "starting"),
            (false, "starting", "🔴 down"),
        ];
        for (alive, state, text) in cases {
            let state = WorkerState::parse(state);
            assert_eq!(
                StateLabel::of(alive, Some(&state)).text(Lang::En),
                text,
                "{alive} {state}"
            );
        }
    }

    #[test]
    fn colours_match_the_spec() {
        assert_eq!(LinkStatus::Healthy.colour(), "#22c55e");
        assert_eq!(LinkStatus::Paused.colour(), "#f59e0b");
        assert_eq!(LinkStatus::Degraded.colour(), "#eab308");
        assert_eq!(LinkStatus::Down.colour(), "#ef4444");
        assert_eq!(LinkStatus::Unknown.colour(), "#64748b");
    }

    #[test]
    fn all_is_ordered_by_severity() {
        for (i, s) in LinkStatus::ALL.iter().enumerate() {
            assert_eq!(usize::from(s.severity()), i, "{s:?}");
        }
    }

    #[test]
    fn rgb_is_the_css_colour() {
        for s in LinkStatus::ALL {
            let [r, g, b] = s.rgb();
            assert_eq!(format!("#{r:02x}{g:02x}{b:02x}"), s.colour());
        }
    }

    #[test]
    fn every_status_has_its_own_icon() {
        let all = LinkStatus::ALL;
        let icons: std::collections::HashSet<_> = all.iter().map(|s| s.icon()).collect();
        assert_eq!(icons.len(), all.len());
        assert_eq!(LinkStatus::Down.icon(), "⚠");
        assert_eq!(LinkStatus::Degraded.icon(), "❌");
    }

    #[test]
    fn unknown_statuses_from_newer_servers_still_parse() {
        let s: LinkStatus = serde_json::from_str("\"flapping\"").unwrap();
        assert_eq!(s, LinkStatus::Unknown);
    }
}
