//! How the contracts write a time.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a time the way the contracts write it: `2026-11-23T12:00:00Z`.
pub fn format_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Seconds since the epoch of a contract time (`2026-11-23T12:00:00Z`).
pub fn parse_ts(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp())
}

/// A chart's time label (UTC): `03:12`, or `12-07 03:00` with the date.
pub fn clock(t: i64, with_date: bool) -> String {
    let Some(t) = DateTime::from_timestamp(t, 0) else {
        return String::new();
    };
    if with_date {
        t.format("%m-%d %H:%M").to_string()
    } else {
        t.format("%H:%M").to_string()
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
        let s = parse_ts("2026-11-23T12:00:00Z").unwrap();
        assert_eq!(s, t.timestamp());
        assert_eq!(clock(s + 720, false), "12:12");
        assert_eq!(clock(s, true), "11-23 12:00");
        assert_eq!(parse_ts("yesterday"), None);
    }
}
