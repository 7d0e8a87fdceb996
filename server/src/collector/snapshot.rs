//! How one cycle's reading becomes the Contract-2 snapshot — pure.
//!
//! The collector fills the snapshot it published two cycles ago in place, once nobody holds it
//! any more ([`fill_snapshot`]): at 10,000 workers a fresh build allocated, and the cycle after
//! freed, some 70,000 strings that nearly always held the same words as before. Every field of
//! every worker is written on every cycle, so a filled snapshot equals a fresh one (tested).

use chrono::{DateTime, Utc};
use shared::heartbeat::{Beat, WorkerKind, ALIVE_WINDOW_S, MAX_CLOCK_SKEW_S, STALE_TS_S};
use shared::nodes::{fill_links, paused_reason, NodesSnapshot, WorkerView};
use shared::reuse::{set, set_fmt, set_opt};
use shared::time::format_ts;

use super::beats::{HeartbeatCache, Slot, Value};
use super::plan::{Plan, PlannedWorker, Reading};

/// Turns one cycle's reading into the snapshot, decoding every heartbeat.
pub fn build_snapshot(plan: &Plan, reading: &Reading<'_>, now: DateTime<Utc>) -> NodesSnapshot {
    let mut beats = HeartbeatCache::default();
    let names = plan.workers.iter().map(|w| w.name.as_str());
    beats.update(names, &reading.heartbeats, now);
    let mut snap = NodesSnapshot::empty(now);
    fill_snapshot(&mut snap, plan, reading, &beats, now);
    snap
}

/// The snapshot of a reading whose heartbeats `beats` holds decoded, written over `snap`
/// (whatever it held) into the strings it already has: [`fill_beats`], then [`fill_counts`].
pub fn fill_snapshot(
    snap: &mut NodesSnapshot,
    plan: &Plan,
    reading: &Reading<'_>,
    beats: &HeartbeatCache,
    now: DateTime<Utc>,
) {
    fill_beats(snap, plan, beats, now);
    fill_counts(snap, plan, reading, now);
}

/// Every planned worker's fields that come from its heartbeat (all but the list lengths):
/// the costly half of a build, which the collector does while Redis still answers the LLENs.
pub fn fill_beats(
    snap: &mut NodesSnapshot,
    plan: &Plan,
    beats: &HeartbeatCache,
    now: DateTime<Utc>,
) {
    let workers = &mut snap.workers;
    workers.truncate(plan.workers.len());
    for (i, pw) in plan.workers.iter().enumerate() {
        if i == workers.len() {
            workers.push(WorkerView::down(String::new(), WorkerKind::Unknown));
        }
        let queue = pw
            .queue
            .and_then(|q| plan.queues.get(q))
            .map(String::as_str);
        fill_worker(&mut workers[i], pw, queue, beats.get(i), now);
    }
}

/// The rest, once every reply is in: the list lengths, then what is summed over the workers.
/// `snap.workers` must have been filled by [`fill_beats`] for the same plan.
pub fn fill_counts(
    snap: &mut NodesSnapshot,
    plan: &Plan,
    reading: &Reading<'_>,
    now: DateTime<Utc>,
) {
    // Every field named: a field added to the contract fails to compile here until it is filled.
    let NodesSnapshot {
        redis_ok,
        paused,
        paused_reason: reason,
        generated_at,
        stale_since,
        workers,
        links,
        summary,
        page,
    } = snap;
    for (view, pw) in workers.iter_mut().zip(&plan.workers) {
        view.queue_depth = count(&reading.queue_len, pw.queue);
        view.dead_letter = count(&reading.dead_len, pw.queue);
        view.processing = count(&reading.processing_len, pw.queue);
    }
    *redis_ok = true;
    *paused = reading.paused;
    *reason = paused_reason(reading.paused, workers);
    *generated_at = format_ts(now);
    *stale_since = None;
    fill_links(links, workers);
    *summary = Some(shared::fleet::summarize(workers));
    *page = None;
}

fn count(v: &[u64], q: Option<usize>) -> u64 {
    q.and_then(|i| v.get(i).copied()).unwrap_or(0)
}

/// One worker's view but its list lengths ([`fill_counts`]): down unless its heartbeat says
/// otherwise.
fn fill_worker(
    view: &mut WorkerView,
    pw: &PlannedWorker,
    queue_name: Option<&str>,
    slot: Option<&Slot>,
    now: DateTime<Utc>,
) {
    let WorkerView {
        name,
        kind,
        alive,
        state,
        last_beat_age_s,
        last_seen_age_s,
        queue_depth: _,
        dead_letter: _,
        processing: _,
        jobs_done,
        jobs_failed,
        last_job_at,
        registered,
        mode,
        error,
        queue,
    } = view;
    set(name, &pw.name);
    *registered = pw.registered;
    set_opt(queue, queue_name);
    *last_seen_age_s = slot.and_then(|s| s.seen).map(|at| seconds(now - at));
    let verdict = slot
        .and_then(|s| s.value.as_ref())
        .map(|v| judge(v, pw, now));
    let (beat, verdict) = match verdict {
        Some(Ok((beat, verdict))) => (beat, verdict),
        not_a_beat => {
            // No heartbeat, or a value that is not one: the plan's nulls, and why.
            *kind = pw.kind.unwrap_or(WorkerKind::Unknown);
            *alive = false;
            *state = None;
            *mode = None;
            (*last_beat_age_s, *jobs_done, *jobs_failed) = (None, 0, 0);
            set_opt(last_job_at, None);
            match not_a_beat {
                Some(Err(why)) => set_fmt(error, format_args!("{why}")),
                _ => *error = None,
            }
            return;
        }
    };
    *kind = pw.kind.unwrap_or(beat.kind);
    *jobs_done = beat.jobs_done;
    *jobs_failed = beat.jobs_failed;
    set_opt(last_job_at, beat.last_job_at.as_deref());
    *last_beat_age_s = beat.age_s(now);
    *alive = verdict.alive;
    if verdict.alive {
        state.clone_from(&beat.state);
        set_opt(mode, beat.mode.as_deref());
    } else {
        *state = None;
        *mode = None;
    }
    match verdict.note {
        Some(note) => set_fmt(error, format_args!("{note}")),
        None => match &beat.warning {
            Some(w) => set_fmt(error, format_args!("{w}")),
            None => *error = None,
        },
    }
}

/// Whether a beat is alive, and what to say about it.
struct Verdict {
    alive: bool,
    /// Why it is stale, or a clock that is off: shown before the beat's own warning.
    note: Option<Note>,
}

enum Note {
    /// The value has not changed for this long on the server's clock.
    StandsStill(i64),
    /// Its `ts` is this much older than the server's clock, past [`STALE_TS_S`].
    Ancient(i64),
    /// The writer's clock is this many seconds behind (negative: ahead of) the server's.
    ClockOff(i64),
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Note::StandsStill(s) => write!(
                f,
                "heartbeat has not changed for {s}s (over the {ALIVE_WINDOW_S}s window): a key without a TTL whose writer stopped?"
            ),
            Note::Ancient(s) => write!(
                f,
                "heartbeat ts is {s}s old (over {STALE_TS_S}s): a key without a TTL left long ago?"
            ),
            Note::ClockOff(s) if s > 0 => write!(
                f,
                "the clock of the host that writes this heartbeat is {s}s behind the server's (over the {MAX_CLOCK_SKEW_S}s allowed)"
            ),
            Note::ClockOff(s) => write!(
                f,
                "the clock of the host that writes this heartbeat is {}s ahead of the server's (over the {MAX_CLOCK_SKEW_S}s allowed)",
                -s
            ),
        }
    }
}

/// The liveness rule, without trusting two machines' clocks to agree (the plan's: alive = the
/// key exists, with its `EX 45`, and holds a beat). A key with a TTL is alive while it exists.
/// A key without one (a writer that forgot `EX`) is stale once its value has stood still for
/// [`ALIVE_WINDOW_S`] of the server's time (a writer changes it every beat), or at once when
/// its `ts` is more than [`STALE_TS_S`] old. Whether a key has a TTL is asked only of the few
/// whose value stands still or is that old (`HeartbeatCache::suspects`); until the answer, the
/// value-change rule alone decides. The writer's clock being off — its `ts` against when we saw
/// the value change — is a warning, never down. A value that is not a beat, or names another
/// worker, is not this worker's beat (`Err`: why).
fn judge<'v>(
    value: &'v Value,
    pw: &PlannedWorker,
    now: DateTime<Utc>,
) -> Result<(&'v Beat, Verdict), String> {
    let beat = value.read.as_ref().map_err(|e| e.to_string())?;
    if let Some(other) = beat.name.as_deref().filter(|n| *n != pw.name) {
        return Err(format!(
            "heartbeat names {:?}, not {:?}: not this worker's beat (check which worker writes this key)",
            clip(other),
            pw.name
        ));
    }
    let still = seconds(now - value.changed_at);
    let age = beat.ts.map(|ts| (now - ts).num_seconds());
    let off = beat.ts.map(|ts| (value.changed_at - ts).num_seconds());
    let (alive, note) = match value.expires {
        // A key with a TTL is alive while it exists, whatever its `ts` says.
        Some(true) => (true, None),
        _ if still > ALIVE_WINDOW_S => (false, Some(Note::StandsStill(still))),
        // Known to have no TTL: an old `ts` is no clock skew.
        Some(false) if age.is_some_and(|a| a > STALE_TS_S) => (false, age.map(Note::Ancient)),
        _ => (true, None),
    };
    let note = note.or_else(|| {
        off.filter(|o| alive && o.abs() > MAX_CLOCK_SKEW_S)
            .map(Note::ClockOff)
    });
    Ok((beat, Verdict { alive, note }))
}

fn seconds(d: chrono::TimeDelta) -> i64 {
    d.num_seconds().max(0)
}

/// A name from a heartbeat, short and printable enough to quote in an error.
fn clip(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use shared::worker::WorkerState;

    /// The clock of the collector's tests.
    pub(crate) fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn beat(name: &str, kind: &str, state: &str, ts: &str, mode: &str) -> Vec<u8> {
        format!(
            r#"{{"name":"{name}","kind":"{kind}","state":"{state}","ts":"{ts}","last_job_at":"2026-11-23T11:00:00Z","jobs_done":7,"jobs_failed":2{mode}}}"#
        )
        .into_bytes()
    }

    /// Every way a heartbeat key can read (`variant` 0..7): valid (with and without a mode),
    /// from a fast clock, too old, under another worker's name, not JSON, absent.
    fn value(n: &str, variant: usize) -> Vec<u8> {
        match variant % 7 {
            0 => beat(n, "render", "busy", "2026-11-23T11:59:55Z", ""),
            1 => beat(
                n,
                "watcher",
                "trading",
                "2026-11-23T11:59:58Z",
                r#","mode":"manual""#,
            ),
            2 => beat(n, "trader", "market_open", "2026-11-23T12:10:00Z", ""),
            3 => beat(n, "render", "idle", "2026-11-23T09:00:00Z", ""),
            4 => beat("someone-else", "render", "idle", "2026-11-23T11:59:59Z", ""),
            5 => b"not json".to_vec(),
            _ => Vec::new(),
        }
    }

    /// Worker `i`'s heartbeat is variant `i + shift`.
    fn values(plan: &Plan, shift: usize) -> Vec<Vec<u8>> {
        plan.workers
            .iter()
            .enumerate()
            .map(|(i, w)| value(&w.name, i + shift))
            .collect()
    }

    fn plan_of(names: &[String]) -> Plan {
        let discovered = super::super::Discovered {
            workers: names.to_vec(),
            ..Default::default()
        };
        Plan::new(&shared::registry::default_fleet(), &discovered)
    }

    /// A reading of `values`, with counts that move with `shift`.
    fn reading<'a>(plan: &Plan, values: &'a [Vec<u8>], shift: usize) -> Reading<'a> {
        Reading {
            paused: shift % 2 == 1,
            heartbeats: values
                .iter()
                .map(|v| Some(v.as_slice()).filter(|v| !v.is_empty()))
                .collect(),
            queue_len: (0..plan.queues.len())
                .map(|q| (q + shift) as u64 % 3)
                .collect(),
            dead_len: (0..plan.queues.len())
                .map(|q| (q * shift) as u64 % 2)
                .collect(),
            processing_len: (0..plan.queues.len()).map(|q| (q + 1) as u64 % 2).collect(),
        }
    }

    #[test]
    fn a_snapshot_filled_over_an_old_one_equals_one_built_afresh() {
        let small: Vec<String> = (0..3).map(|i| format!("zz-{i}")).collect();
        let big: Vec<String> = (0..20).map(|i| format!("zz-worker-{i:02}")).collect();
        let mut snap = NodesSnapshot::empty(now());
        // Every value lands on every worker across the shifts, and the plan grows and shrinks.
        for (names, shift) in [
            (&big, 0),
            (&big, 3),
            (&small, 1),
            (&big, 5),
            (&small, 6),
            (&big, 2),
        ] {
            let plan = plan_of(names);
            let values = values(&plan, shift);
            let reading = reading(&plan, &values, shift);
            let mut beats = HeartbeatCache::default();
            let planned = plan.workers.iter().map(|w| w.name.as_str());
            beats.update(planned, &reading.heartbeats, now());
            fill_snapshot(&mut snap, &plan, &reading, &beats, now());
            assert_eq!(
                snap,
                build_snapshot(&plan, &reading, now()),
                "{} workers, shift {shift}",
                names.len()
            );
        }
        // What it went through: alive and down, errors and modes, both link kinds.
        let plan = plan_of(&big);
        let values = values(&plan, 0);
        let all = build_snapshot(&plan, &reading(&plan, &values, 0), now());
        assert!(all.workers.iter().any(|w| w.alive) && all.workers.iter().any(|w| !w.alive));
        assert!(all
            .workers
            .iter()
            .any(|w| w.mode.is_some() && w.error.is_none()));
        assert!(all.workers.iter().filter(|w| w.error.is_some()).count() >= 4);
        assert!(all.links.iter().any(|l| l.to == shared::nodes::NAS_STOCK));
    }

    /// One registered render worker's view after `cycles` of (seconds, value, PTTL answer).
    fn judged(cycles: &[(i64, &[u8], Option<i64>)]) -> WorkerView {
        let plan = plan_of(&[]);
        let mut beats = HeartbeatCache::default();
        let mut snap = NodesSnapshot::empty(now());
        for (at, value, pttl) in cycles {
            let t = now() + chrono::Duration::seconds(*at);
            let mut heartbeats: Vec<Option<&[u8]>> = plan.workers.iter().map(|_| None).collect();
            heartbeats[0] = Some(value);
            let zeros = vec![0; plan.queues.len()];
            let reading = Reading {
                paused: false,
                heartbeats,
                queue_len: zeros.clone(),
                dead_len: zeros.clone(),
                processing_len: zeros,
            };
            let names = plan.workers.iter().map(|w| w.name.as_str());
            beats.update(names, &reading.heartbeats, t);
            if let Some(ms) = pttl {
                beats.set_ttls(&[plan.workers[0].name.clone()], &[*ms], t);
            }
            fill_snapshot(&mut snap, &plan, &reading, &beats, t);
        }
        snap.workers[0].clone()
    }

    #[test]
    fn liveness_never_compares_two_clocks() {
        let name = plan_of(&[]).workers[0].name.clone();
        let fresh = beat(&name, "render", "idle", "2026-11-23T11:59:58Z", "");
        let old = beat(&name, "render", "idle", "2026-06-29T00:00:00Z", "");
        // A value that stands still for 45 s of the server's time, in a key without a TTL.
        let w = judged(&[
            (0, &fresh, None),
            (30, &fresh, Some(-1)),
            (50, &fresh, Some(-1)),
        ]);
        assert!(!w.alive && w.state.is_none(), "{w:?}");
        assert!(w.error.unwrap().contains("has not changed for 50s"));
        // The same in a key with a TTL: alive while it exists.
        let w = judged(&[(0, &fresh, None), (50, &fresh, Some(9_000))]);
        assert!(w.alive && w.error.is_none(), "{w:?}");
        assert_eq!(w.last_seen_age_s, Some(50));
        // A months-old ts: alive while its TTL is unknown or it has one (a clock warning)...
        let w = judged(&[(0, &old, None)]);
        assert!(w.alive && w.error.unwrap().contains("behind the server's"));
        let w = judged(&[(0, &old, None), (1, &old, Some(30_000))]);
        assert!(w.alive);
        // ...and stale at once without one.
        let w = judged(&[(0, &old, None), (1, &old, Some(-1))]);
        assert!(!w.alive && w.error.unwrap().contains("old (over 600s)"));
        // A fast clock is a warning.
        let ahead = beat(&name, "render", "busy", "2026-11-23T12:05:00Z", "");
        let w = judged(&[(0, &ahead, None)]);
        assert!(w.alive && w.state == Some(WorkerState::Busy));
        assert_eq!(w.last_beat_age_s, Some(0));
        assert!(w.error.unwrap().contains("300s ahead"));
        // Gone: the plan's nulls, and how long ago this server saw it beat.
        let w = judged(&[(0, &fresh, None), (20, b"", None)]);
        assert_eq!(
            (w.alive, w.state.clone(), w.last_beat_age_s),
            (false, None, None)
        );
        assert_eq!(w.last_seen_age_s, Some(20));
    }
}
