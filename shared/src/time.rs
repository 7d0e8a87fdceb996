//! How the contracts write a time.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a time the way the contracts write it: `2026-11-23T12:00:00Z`.
pub fn format_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
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
}
