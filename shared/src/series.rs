//! Trends over time (SPEC §11): the body of `GET /api/series` and of the cards' sparklines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A chart's range: `1h` in minutes, `24h` in quarter hours, `30d` in half days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Range {
    #[default]
    Hour,
    Day,
    Month,
}

impl Range {
    pub const ALL: [Self; 3] = [Self::Hour, Self::Day, Self::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Month => "30d",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Seconds a point covers.
    pub fn step_s(self) -> i64 {
        match self {
            Self::Hour => 60,
            Self::Day => 900,
            Self::Month => 43_200,
        }
    }

    /// How many points the range holds.
    pub fn steps(self) -> i64 {
        match self {
            Self::Hour => 60,
            Self::Day => 96,
            Self::Month => 60,
        }
    }

    /// The whole range in seconds.
    pub fn span_s(self) -> i64 {
        self.step_s() * self.steps()
    }
}

/// `GET /api/series`: the steps of the range that have data, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesReply {
    pub step_s: i64,
    pub points: Vec<SeriesPoint>,
}

/// One step of a series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// The step's start (`2026-12-07T03:12:00Z`).
    pub t: String,
    pub done: u64,
    pub failed: u64,
    /// The largest queue depth seen in the step.
    pub queue_depth: u64,
    /// The fraction of the step alive (0 to 1).
    pub alive: f64,
}

/// How many minutes a card's sparkline shows.
pub const SPARK_STEPS: usize = 60;

/// `GET /api/sparklines`: the last hour of done and failed, a minute a value, of the workers
/// of one page of cards. Workers with nothing done or failed in the hour are left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SparksReply {
    /// The start of the newest (still open) minute.
    pub end: String,
    pub workers: BTreeMap<String, Spark>,
}

/// One worker's last hour, [`SPARK_STEPS`] values each, oldest first, the last the open minute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spark {
    pub done: Vec<u32>,
    pub failed: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_by_their_names() {
        for r in Range::ALL {
            assert_eq!(Range::parse(r.as_str()), Some(r));
        }
        assert_eq!(Range::parse("7d"), None);
        assert_eq!(Range::Month.span_s(), 30 * 24 * 3600);
        assert_eq!(Range::Day.span_s(), 24 * 3600);
    }
}
