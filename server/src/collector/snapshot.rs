//! How one cycle's reading becomes the Contract-2 snapshot — pure.
//!
//! The collector fills the snapshot it published two cycles ago in place, once nobody holds it
//! any more ([`fill_snapshot`]): at 10,000 workers a fresh build allocated, and the cycle after
//! freed, some 70,000 strings that nearly always held the same words as before. Every field of
//! every worker is written on every cycle, so a filled snapshot equals a fresh one (tested).

use chrono::{DateTime, Utc};
use shared::heartbeat::{
    skew_s, Heartbeat, HeartbeatError, WorkerKind, ALIVE_WINDOW_S, MAX_CLOCK_SKEW_S,
};
use shared::nodes::{fill_links, paused_reason, NodesSnapshot, WorkerView};
use shared::reuse::{set, set_fmt, set_opt};
use shared::time::format_ts;
use shared::worker::WorkerState;

use super::beats::HeartbeatCache;
use super::plan::{Plan, PlannedWorker, Reading};

/// Turns one cycle's reading into the snapshot, decoding every heartbeat.
pub fn build_snapshot(plan: &Plan, reading: &Reading<'_>, now: DateTime<Utc>) -> NodesSnapshot {
    let mut beats = HeartbeatCache::default();
    beats.update(&reading.heartbeats);
    let mut snap = NodesSnapshot::empty(now);
    fill_snapshot(&mut snap, plan, reading, &beats, now);
    snap
}

/// The snapshot of a reading whose heartbeats `beats` holds decoded, written over `snap`
/// (whatever it held) into the strings it already has.
pub fn fill_snapshot(
    snap: &mut NodesSnapshot,
    plan: &Plan,
    reading: &Reading<'_>,
    beats: &HeartbeatCache,
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
    workers.truncate(plan.workers.len());
    for (i, pw) in plan.workers.iter().enumerate() {
        if i == workers.len() {
            workers.push(WorkerView::down(String::new(), WorkerKind::Unknown));
        }
        let counts = Counts {
            queue_depth: count(&reading.queue_len, pw.queue),
            dead_letter: count(&reading.dead_len, pw.queue),
            processing: count(&reading.processing_len, pw.queue),
        };
        let queue = pw
            .queue
            .and_then(|q| plan.queues.get(q))
            .map(String::as_str);
        fill_worker(&mut workers[i], pw, queue, counts, beats.get(i), now);
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

struct Counts {
    queue_depth: u64,
    dead_letter: u64,
    processing: u64,
}

fn count(v: &[u64], q: Option<usize>) -> u64 {
    q.and_then(|i| v.get(i).copied()).unwrap_or(0)
}

/// One worker's view: down with every count 0 unless its heartbeat says otherwise.
fn fill_worker(
    view: &mut WorkerView,
    pw: &PlannedWorker,
    queue_name: Option<&str>,
    counts: Counts,
    beat: Option<&Result<Heartbeat, HeartbeatError>>,
    now: DateTime<Utc>,
) {
    let WorkerView {
        name,
        kind,
        alive,
        state,
        last_beat_age_s,
        queue_depth,
        dead_letter,
        processing,
        jobs_done,
        jobs_failed,
        last_job_at,
        registered,
        mode,
        error,
        queue,
    } = view;
    set(name, &pw.name);
    *queue_depth = counts.queue_depth;
    *dead_letter = counts.dead_letter;
    *processing = counts.processing;
    *registered = pw.registered;
    set_opt(queue, queue_name);
    let hb = match beat {
        Some(Ok(hb)) => hb,
        unreadable => {
            set_down(kind, alive, state, mode, pw);
            (*last_beat_age_s, *jobs_done, *jobs_failed) = (None, 0, 0);
            set_opt(last_job_at, None);
            match unreadable {
                Some(Err(e)) => set_fmt(error, format_args!("{e}")),
                _ => *error = None,
            }
            return;
        }
    };
    *kind = pw.kind.unwrap_or(hb.kind);
    *jobs_done = hb.jobs_done;
    *jobs_failed = hb.jobs_failed;
    set_opt(last_job_at, hb.last_job_at.as_deref());
    if let Some(ahead_s) = skew_s(hb, now) {
        // A fast clock, not a dead worker: alive while the key (with its TTL) lives.
        set_alive(alive, state, mode, hb);
        *last_beat_age_s = Some(0);
        set_fmt(
            error,
            format_args!(
                "heartbeat ts is {ahead_s}s in the future, beyond the {MAX_CLOCK_SKEW_S}s allowed clock skew: check the clock of the host that writes it"
            ),
        );
        return;
    }
    let age = hb.age_s(now);
    *last_beat_age_s = Some(age);
    if age > ALIVE_WINDOW_S {
        // Only a key without a TTL can hold a beat this old.
        *alive = false;
        *state = WorkerState::Down;
        *mode = None;
        set_fmt(
            error,
            format_args!(
                "heartbeat is {age}s old, over the {ALIVE_WINDOW_S}s window (a key without a TTL?)"
            ),
        );
    } else {
        set_alive(alive, state, mode, hb);
        if hb.name == pw.name {
            *error = None;
        } else {
            set_fmt(
                error,
                format_args!(
                    "heartbeat names {:?}, not {:?}: check which worker writes this key",
                    clip(&hb.name),
                    pw.name
                ),
            );
        }
    }
}

fn set_down(
    kind: &mut WorkerKind,
    alive: &mut bool,
    state: &mut WorkerState,
    mode: &mut Option<String>,
    pw: &PlannedWorker,
) {
    *kind = pw.kind.unwrap_or(WorkerKind::Unknown);
    *alive = false;
    *state = WorkerState::Down;
    *mode = None;
}

fn set_alive(alive: &mut bool, state: &mut WorkerState, mode: &mut Option<String>, hb: &Heartbeat) {
    *alive = true;
    // A known state is a word without a string: nothing is allocated for it.
    state.clone_from(&hb.state);
    set_opt(mode, hb.mode.as_deref());
}

/// A name from a heartbeat, short and printable enough to quote in an error.
fn clip(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// When each worker's last valid heartbeat was stamped, so a worker whose key has expired can
/// still say "last beat Ns ago". Kept in snapshot order (the plan's), so a cycle finds each
/// worker by position; only after the plan changed are they matched by name, once. Holds only
/// the plan's workers.
#[derive(Debug, Default)]
pub struct LastBeats(Vec<(String, Option<DateTime<Utc>>)>);

impl LastBeats {
    /// Notes the beats of the alive workers, fills in the age of the down ones it saw before,
    /// and forgets workers that left the plan.
    pub fn apply(&mut self, snap: &mut NodesSnapshot, now: DateTime<Utc>) {
        let aligned = self.0.len() == snap.workers.len()
            && self
                .0
                .iter()
                .zip(&snap.workers)
                .all(|((name, _), w)| *name == w.name);
        if !aligned {
            let mut known: std::collections::HashMap<String, Option<DateTime<Utc>>> =
                std::mem::take(&mut self.0).into_iter().collect();
            self.0 = snap
                .workers
                .iter()
                .map(|w| (w.name.clone(), known.remove(&w.name).flatten()))
                .collect();
        }
        for (w, (_, at)) in snap.workers.iter_mut().zip(&mut self.0) {
            match (w.alive, w.last_beat_age_s, *at) {
                (true, Some(age), _) => *at = Some(now - chrono::Duration::seconds(age)),
                (false, None, Some(ts)) => {
                    w.last_beat_age_s = Some((now - ts).num_seconds().max(0));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

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
            beats.update(&reading.heartbeats);
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

    #[test]
    fn a_worker_that_went_down_keeps_its_last_beat_age() {
        let t0 = now();
        let mut beats = LastBeats::default();
        let alive = WorkerView {
            alive: true,
            last_beat_age_s: Some(2),
            state: "idle".into(),
            ..WorkerView::down("r", WorkerKind::Render)
        };
        let mut snap = NodesSnapshot {
            workers: vec![alive, WorkerView::down("never", WorkerKind::Render)],
            ..NodesSnapshot::empty(t0)
        };
        beats.apply(&mut snap, t0);

        let later = t0 + chrono::Duration::seconds(60);
        let mut snap = NodesSnapshot {
            workers: vec![
                WorkerView::down("r", WorkerKind::Render),
                WorkerView::down("never", WorkerKind::Render),
            ],
            ..NodesSnapshot::empty(later)
        };
        beats.apply(&mut snap, later);
        assert_eq!(snap.workers[0].last_beat_age_s, Some(62));
        assert_eq!(snap.workers[1].last_beat_age_s, None, "never seen: unknown");

        // The plan changed: a new worker first, "r" moved to the end; found by name.
        let mut snap = NodesSnapshot {
            workers: vec![
                WorkerView::down("new", WorkerKind::Render),
                WorkerView::down("never", WorkerKind::Render),
                WorkerView::down("r", WorkerKind::Render),
            ],
            ..NodesSnapshot::empty(later)
        };
        beats.apply(&mut snap, later);
        let ages: Vec<_> = snap.workers.iter().map(|w| w.last_beat_age_s).collect();
        assert_eq!(ages, [None, None, Some(62)]);

        // A worker that left the plan is forgotten.
        let mut snap = NodesSnapshot::empty(later);
        beats.apply(&mut snap, later);
        assert!(beats.0.is_empty());
    }
}
