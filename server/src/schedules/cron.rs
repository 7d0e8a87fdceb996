//! The pure side of schedules: reading a cron expression in its time zone, its next due times,
//! and which due times a firing pass pushes (README "Schedules").
//!
//! Expressions have 5 fields (minute first) or 6 (seconds first), read by `croner` (OCPS
//! semantics). Time zones are IANA names (`chrono-tz`). Across DST: a fixed time that falls in
//! the spring-forward gap (02:30 on a day without 02:30) runs once, at the first valid time
//! after the gap; a fixed time in the fall-back hour runs once, at its first occurrence; `*` and
//! `*/n` fields run at every wall-clock match (none inside the gap, both passes of the repeated
//! hour).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use shared::control::valid::FieldError;

/// Due times older than this when a pass runs were missed while no server ran: of those, only
/// the latest is pushed (once). Younger ones are all pushed — a short failover loses none.
pub const CATCH_UP: chrono::Duration = chrono::Duration::seconds(10);
/// Most due times one pass looks at for one schedule (a per-second schedule after a day down
/// has 86,400; only the latest of the missed ones is pushed anyway).
const SCAN_CAP: usize = 10_000;

/// A schedule's expression in its time zone.
#[derive(Clone, Debug)]
pub struct Plan {
    cron: Cron,
    tz: Tz,
}

/// Reads `cron` (5 or 6 fields) and `timezone` (IANA; `None` is UTC), naming the field at fault.
pub fn plan(cron: &str, timezone: Option<&str>) -> Result<Plan, FieldError> {
    let fields = cron.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(FieldError::new(
            "cron",
            format!("has {fields} fields; 5 (minute first) or 6 (seconds first)"),
        ));
    }
    let parsed = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(cron)
        .map_err(|e| FieldError::new("cron", e.to_string()))?;
    let tz = match timezone.map(str::trim).filter(|t| !t.is_empty()) {
        None => Tz::UTC,
        Some(name) => Tz::from_str(name).map_err(|_| {
            FieldError::new(
                "timezone",
                format!("{name:?} is not an IANA time zone (like Asia/Seoul or UTC)"),
            )
        })?,
    };
    // An expression that never matches (30 February) is refused now, not found out later.
    let p = Plan { cron: parsed, tz };
    if p.next_after(Utc::now()).is_none() {
        return Err(FieldError::new("cron", "never matches a date"));
    }
    Ok(p)
}

impl Plan {
    pub fn timezone(&self) -> &'static str {
        self.tz.name()
    }

    /// The first due time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The next `n` due times after `t`.
    pub fn next_runs(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            match self.next_after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }

    /// The due times a pass at `now` pushes, given the last one pushed before (`after`): every
    /// due time in `(after, now]` younger than [`CATCH_UP`], and of the older ones (missed
    /// while no server ran) only the latest.
    pub fn to_fire(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let recent_from = now - CATCH_UP;
        let mut missed = None;
        let mut fire = Vec::new();
        let mut at = after;
        for _ in 0..SCAN_CAP {
            let Some(next) = self.next_after(at) else {
                break;
            };
            if next > now {
                break;
            }
            if next < recent_from {
                missed = Some(next);
            } else {
                fire.push(next);
            }
            at = next;
        }
        // A pass that hit the cap has not reached now: the latest missed is older than that.
        if let Some(m) = missed {
            fire.insert(0, m);
        }
        fire
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ts(v: &[DateTime<Utc>]) -> Vec<String> {
        v.iter().map(|d| shared::time::format_ts(*d)).collect()
    }

    #[test]
    fn five_fields_or_six_with_seconds_and_a_time_zone() {
        let p = plan("30 2 * * *", Some("Asia/Seoul")).unwrap();
        // 02:30 in Seoul is 17:30 UTC the day before
        assert_eq!(
            ts(&p.next_runs(t("2026-12-07T00:00:00Z"), 2)),
            ["2026-12-07T17:30:00Z", "2026-12-08T17:30:00Z"]
        );
        let s = plan("*/15 * * * * *", None).unwrap();
        assert_eq!(
            ts(&s.next_runs(t("2026-12-07T00:00:01Z"), 3)),
            [
                "2026-12-07T00:00:15Z",
                "2026-12-07T00:00:30Z",
                "2026-12-07T00:00:45Z"
            ]
        );
        assert_eq!(s.timezone(), "UTC");
    }

    #[test]
    fn bad_input_names_the_field() {
        for (cron, tz, field) in [
            ("* * * *", None, "cron"),
            ("* * * * * * *", None, "cron"),
            ("61 * * * *", None, "cron"),
            ("not a cron at all x", None, "cron"),
            ("0 0 30 2 *", None, "cron"),
            ("* * * * *", Some("Mars/Olympus"), "timezone"),
            ("* * * * *", Some("+09:00"), "timezone"),
        ] {
            let e = plan(cron, tz).unwrap_err();
            assert_eq!(e.field, field, "{cron:?} {tz:?}: {e}");
        }
    }

    #[test]
    fn a_time_in_the_spring_forward_gap_runs_once_and_the_repeated_hour_once() {
        // New York, 2026-03-08: 02:00 jumps to 03:00, so 02:30 does not exist that day.
        let p = plan("30 2 * * *", Some("America/New_York")).unwrap();
        let runs = p.next_runs(t("2026-03-07T12:00:00Z"), 3);
        // 8 March: once, right after the gap (03:00 EDT); then 02:30 EDT again
        assert_eq!(
            ts(&runs),
            [
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:30:00Z",
                "2026-03-10T06:30:00Z"
            ]
        );
        assert_eq!(runs.len(), 3);
        let days: Vec<String> = runs
            .iter()
            .map(|r| {
                r.with_timezone(&chrono_tz::America::New_York)
                    .format("%m-%d")
                    .to_string()
            })
            .collect();
        assert_eq!(
            days,
            ["03-08", "03-09", "03-10"],
            "one run on the day without 02:30"
        );
        // 1 November 2026: 01:30 happens twice; a fixed 01:30 runs once
        let p = plan("30 1 * * *", Some("America/New_York")).unwrap();
        let runs = p.next_runs(t("2026-10-31T12:00:00Z"), 3);
        let days: Vec<String> = runs
            .iter()
            .map(|r| {
                r.with_timezone(&chrono_tz::America::New_York)
                    .format("%m-%d")
                    .to_string()
            })
            .collect();
        assert_eq!(days, ["11-01", "11-02", "11-03"]);
    }

    #[test]
    fn a_pass_pushes_every_recent_due_time_and_only_the_latest_missed_one() {
        let p = plan("* * * * * *", None).unwrap();
        // a pass a second after the last: exactly the one new due second
        assert_eq!(
            ts(&p.to_fire(t("2026-12-07T00:00:00Z"), t("2026-12-07T00:00:01.300Z"))),
            ["2026-12-07T00:00:01Z"]
        );
        // a replica that took over after 4 s: all 4, none lost
        assert_eq!(
            p.to_fire(t("2026-12-07T00:00:00Z"), t("2026-12-07T00:00:04Z"))
                .len(),
            4
        );
        // back after an hour with no server: the one latest missed, then the last 10 s
        let fire = p.to_fire(t("2026-12-07T00:00:00Z"), t("2026-12-07T01:00:00Z"));
        assert_eq!(fire.len(), 1 + 11);
        assert_eq!(shared::time::format_ts(fire[0]), "2026-12-07T00:59:49Z");
        // nothing due
        assert!(p
            .to_fire(t("2026-12-07T00:00:00Z"), t("2026-12-07T00:00:00.900Z"))
            .is_empty());
        let nightly = plan("0 3 * * *", None).unwrap();
        let fire = nightly.to_fire(t("2026-12-01T00:00:00Z"), t("2026-12-07T12:00:00Z"));
        assert_eq!(
            ts(&fire),
            ["2026-12-07T03:00:00Z"],
            "six nights missed: pushed once"
        );
    }
}
