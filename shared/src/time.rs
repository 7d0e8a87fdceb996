//! How the contracts write a time, and how a person reads an age.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a time the way the contracts write it: `2026-11-23T12:00:00Z`.
pub fn format_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// "last beat 5s ago" / "no heartbeat" (none seen by this server): the one wording of a
/// heartbeat's age that the cards, the 3D labels and the agents' table use.
pub fn last_beat(age_s: Option<i64>) -> String {
    match age_s {
        Some(s) => format!("last beat {s}s ago"),
        None => "no heartbeat".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_end_in_z() {
        let t = DateTime::parse_from_rfc3339("2026-11-23T12:00:00+00:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_ts(t), "2026-11-23T12:00:00Z");
    }

    #[test]
    fn last_beat_says_the_age_or_that_there_was_none() {
        assert_eq!(
            last_beat(Some(82)),
            "last beat 82s ago",
            "down, but seen before"
        );
        assert_eq!(last_beat(Some(3)), "last beat 3s ago");
        assert_eq!(last_beat(None), "no heartbeat", "never seen by this server");
    }
}
