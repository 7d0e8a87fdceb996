//! The alert rules of SPEC §6 as one pure function over (memory, snapshot, rules).
//!
//! The memory is what the last alert decisions were based on; it lives in Redis so that a
//! restart neither repeats nor forgets, and it is only ever changed together with the outbox.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared::alerts::{Alert, AlertKind};
use shared::{Lang, NodesSnapshot, WorkerView};

/// Settings of the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// A dead-letter count at or above this is told (default 1).
    pub dead_letter_threshold: u64,
    /// The language the messages are written in.
    pub language: Lang,
}

/// What the alerts last said about one worker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerMemory {
    /// Whether it was alive when last evaluated.
    pub alive: bool,
    /// A down alert was sent and no recovery since.
    pub told_down: bool,
    /// The dead-letter count last told (0: nothing told, or reset).
    pub dead_letter_told: u64,
}

/// What every alert decision so far was based on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    pub workers: BTreeMap<String, WorkerMemory>,
    /// Whether Redis was reachable at the last evaluation.
    pub redis_ok: bool,
}

impl Default for Memory {
    fn default() -> Self {
        Self {
            workers: BTreeMap::new(),
            redis_ok: true,
        }
    }
}

fn worker_alert(kind: AlertKind, name: &str, text: String) -> Alert {
    Alert {
        kind,
        worker: Some(name.to_string()),
        text,
    }
}

/// Applies the rules to a new snapshot; returns the new memory and what to send.
///
/// - alive → down: "🔴 [name] worker down"; down (told) → alive: "🟢 [name] worker recovered".
/// - A worker seen for the first time already down is told once if anything shows it ever ran:
///   work waiting in its queue or in flight, dead letters, or a heartbeat key that is there but
///   invalid. A registered worker with no trace at all has simply never started: no alert, and
///   none until it has been alive. Unregistered workers first seen down with no work of their
///   own (stray or junk keys) are counted in one summary line, never one line each.
/// - Dead letters at or over the threshold and changed since last told: "❌ [name] n failed
///   jobs (dead-letter)"; the memory resets when the count returns to 0.
/// - Redis unreachable: one alert, no worker alerts while blind; one alert when it is back.
pub fn evaluate(memory: &Memory, snap: &NodesSnapshot, rules: Rules) -> (Memory, Vec<Alert>) {
    let mut next = memory.clone();
    let mut alerts = Vec::new();
    next.redis_ok = snap.redis_ok;
    match (memory.redis_ok, snap.redis_ok) {
        (true, false) => alerts.push(Alert {
            kind: AlertKind::RedisLost,
            worker: None,
            text: rules.language.redis_lost().into(),
        }),
        (false, true) => alerts.push(Alert {
            kind: AlertKind::RedisBack,
            worker: None,
            text: rules.language.redis_back().into(),
        }),
        _ => {}
    }
    if !snap.redis_ok {
        // Blind: no worker alerts, and the memory of each worker stays as it was.
        return (next, alerts);
    }
    let mut stray: Vec<&str> = Vec::new();
    for w in &snap.workers {
        let before = memory.workers.get(&w.name);
        if before.is_none() && stray_key(w) {
            // A flood of junk keys must not bury real alerts: one summary line for them all.
            stray.push(&w.name);
            next.workers.insert(w.name.clone(), WorkerMemory::default());
            continue;
        }
        let now = worker_alerts(before, w, rules, &mut alerts);
        next.workers.insert(w.name.clone(), now);
    }
    alerts.extend(stray_alert(&stray, rules.language));
    // Workers no longer in the snapshot (forgotten discoveries) are forgotten here too.
    next.workers
        .retain(|name, _| snap.workers.iter().any(|w| &w.name == name));
    (next, alerts)
}

/// One worker's alerts against what was last told of it; returns what to remember now.
fn worker_alerts(
    before: Option<&WorkerMemory>,
    w: &WorkerView,
    rules: Rules,
    alerts: &mut Vec<Alert>,
) -> WorkerMemory {
    let mut now = before.cloned().unwrap_or_default();
    // Down is news if it was alive last time, or, seen for the first time, if it ever ran.
    let was_up = before.map_or_else(|| ever_ran(w), |b| b.alive);
    match (before, w.alive) {
        (_, false) if was_up => {
            alerts.push(worker_alert(
                AlertKind::WorkerDown,
                &w.name,
                rules.language.worker_down(&w.name),
            ));
            now.told_down = true;
        }
        (Some(b), true) if b.told_down => {
            alerts.push(worker_alert(
                AlertKind::WorkerRecovered,
                &w.name,
                rules.language.worker_recovered(&w.name),
            ));
            now.told_down = false;
        }
        _ => {}
    }
    now.alive = w.alive;
    if w.dead_letter == 0 {
        now.dead_letter_told = 0;
    } else if w.dead_letter >= rules.dead_letter_threshold && w.dead_letter != now.dead_letter_told
    {
        alerts.push(worker_alert(
            AlertKind::DeadLetters,
            &w.name,
            rules.language.dead_letters(&w.name, w.dead_letter),
        ));
        now.dead_letter_told = w.dead_letter;
    }
    now
}

/// The one line for every stray heartbeat key of this evaluation, naming the first few.
fn stray_alert(stray: &[&str], lang: Lang) -> Option<Alert> {
    if stray.is_empty() {
        return None;
    }
    let shown: Vec<&str> = stray.iter().take(STRAY_NAMED).copied().collect();
    let more = if stray.len() > STRAY_NAMED {
        ", …"
    } else {
        ""
    };
    Some(Alert {
        kind: AlertKind::StrayKeys,
        worker: None,
        text: lang.stray_keys(stray.len(), &format!("{}{more}", shown.join(", "))),
    })
}

/// How many stray key names the summary line quotes.
const STRAY_NAMED: usize = 5;

/// Evidence that a worker first seen down has run before (see [`evaluate`]).
fn ever_ran(w: &WorkerView) -> bool {
    w.queue_depth > 0 || w.processing > 0 || w.dead_letter > 0 || w.error.is_some() || !w.registered
}

/// An unregistered worker first seen down with no work of its own: most likely a stray or junk
/// heartbeat key, not a worker that died.
fn stray_key(w: &WorkerView) -> bool {
    !w.registered && !w.alive && w.queue_depth == 0 && w.processing == 0 && w.dead_letter == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::WorkerKind;

    const RULES: Rules = Rules {
        dead_letter_threshold: 1,
        language: Lang::En,
    };

    fn worker(name: &str, alive: bool) -> WorkerView {
        WorkerView {
            alive,
            state: alive.then(|| "idle".into()),
            last_beat_age_s: alive.then_some(1),
            ..WorkerView::down(name, WorkerKind::Render)
        }
    }

    fn snap(workers: Vec<WorkerView>) -> NodesSnapshot {
        let mut s = NodesSnapshot::empty(chrono::Utc::now());
        s.redis_ok = true;
        s.workers = workers;
        s
    }

    /// Runs the snapshots in order from `memory`, returning every alert text.
    fn run(memory: Memory, snaps: &[NodesSnapshot], rules: Rules) -> (Memory, Vec<String>) {
        let mut m = memory;
        let mut all = Vec::new();
        for s in snaps {
            let (next, alerts) = evaluate(&m, s, rules);
            all.extend(alerts.into_iter().map(|a| a.text));
            m = next;
        }
        (m, all)
    }

    #[test]
    fn in_korean_the_messages_are_the_plans() {
        let ko = Rules {
            dead_letter_threshold: 1,
            language: Lang::Ko,
        };
        let up = snap(vec![worker("image-render", true)]);
        let down = snap(vec![worker("image-render", false)]);
        let mut dead = up.clone();
        dead.workers[0].dead_letter = 2;
        let (_, said) = run(Memory::default(), &[up.clone(), down, up, dead], ko);
        assert_eq!(
            said,
            [
                "🔴 [image-render] 워커 다운",
                "🟢 [image-render] 워커 복구",
                "❌ [image-render] 실패 누적 2건 (dead-letter)"
            ]
        );
    }

    #[test]
    fn down_then_recovered_once_each() {
        let up = snap(vec![worker("image-render", true)]);
        let down = snap(vec![worker("image-render", false)]);
        let (_, said) = run(
            Memory::default(),
            &[up.clone(), down.clone(), down, up.clone(), up],
            RULES,
        );
        assert_eq!(
            said,
            [
                "🔴 [image-render] worker down",
                "🟢 [image-render] worker recovered"
            ]
        );
    }

    #[test]
    fn a_fresh_start_with_healthy_workers_says_nothing() {
        let (_, said) = run(
            Memory::default(),
            &[snap(vec![worker("a", true), worker("b", true)])],
            RULES,
        );
        assert!(said.is_empty());
    }

    #[test]
    fn never_started_workers_stay_quiet_until_they_have_lived() {
        let never = snap(vec![worker("ai_trade", false)]);
        let (m, said) = run(Memory::default(), &[never.clone(), never.clone()], RULES);
        assert!(said.is_empty(), "{said:?}");
        // Once it has lived, losing it is news; coming back without a told down is not.
        let (_, said) = run(m, &[snap(vec![worker("ai_trade", true)]), never], RULES);
        assert_eq!(said, ["🔴 [ai_trade] worker down"]);
    }

    #[test]
    fn a_worker_already_down_at_first_start_is_reported_once() {
        let mut stuck = worker("video-render", false);
        stuck.queue_depth = 12;
        let mut garbage = worker("music-render", false);
        garbage.error = Some("heartbeat is not JSON".into());
        let mut discovered = worker("gpu-7", false);
        discovered.registered = false;
        discovered.dead_letter = 2;
        let s = snap(vec![stuck, garbage, discovered]);
        let (_, said) = run(Memory::default(), &[s.clone(), s.clone(), s], RULES);
        assert_eq!(
            said,
            [
                "🔴 [video-render] worker down",
                "🔴 [music-render] worker down",
                "🔴 [gpu-7] worker down",
                "❌ [gpu-7] 2 failed jobs (dead-letter)"
            ]
        );
    }

    #[test]
    fn a_flood_of_junk_keys_is_one_line_and_real_alerts_still_come() {
        let mut workers: Vec<WorkerView> = (0..2000)
            .map(|i| {
                let mut w = worker(&format!("j{i}"), false);
                w.registered = false;
                w.error = Some("heartbeat is not JSON".into());
                w
            })
            .collect();
        workers.push(worker("video-render", true));
        let (m, said) = run(Memory::default(), &[snap(workers.clone())], RULES);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with("⚠ [agent-office] 2000 unregistered heartbeat keys"),
            "{}",
            said[0]
        );
        workers.pop();
        workers.push(worker("video-render", false));
        let (_, said) = run(m, &[snap(workers)], RULES);
        assert_eq!(
            said,
            ["🔴 [video-render] worker down"],
            "the junk is not told again"
        );
    }

    #[test]
    fn recovery_from_a_boot_time_down_is_told() {
        let mut stuck = worker("video-render", false);
        stuck.queue_depth = 3;
        let (_, said) = run(
            Memory::default(),
            &[snap(vec![stuck]), snap(vec![worker("video-render", true)])],
            RULES,
        );
        assert_eq!(
            said,
            [
                "🔴 [video-render] worker down",
                "🟢 [video-render] worker recovered"
            ]
        );
    }

    #[test]
    fn dead_letters_are_told_when_they_change_and_reset_at_zero() {
        let with = |n| {
            let mut w = worker("insta-render", true);
            w.dead_letter = n;
            snap(vec![w])
        };
        let (_, said) = run(
            Memory::default(),
            &[with(0), with(2), with(2), with(5), with(0), with(1)],
            RULES,
        );
        assert_eq!(
            said,
            [
                "❌ [insta-render] 2 failed jobs (dead-letter)",
                "❌ [insta-render] 5 failed jobs (dead-letter)",
                "❌ [insta-render] 1 failed jobs (dead-letter)",
            ]
        );
        let (_, said) = run(
            Memory::default(),
            &[with(2), with(3), with(5)],
            Rules {
                dead_letter_threshold: 5,
                language: Lang::En,
            },
        );
        assert_eq!(said, ["❌ [insta-render] 5 failed jobs (dead-letter)"]);
    }

    #[test]
    fn redis_loss_is_one_alert_and_blinds_worker_alerts() {
        let up = snap(vec![worker("a", true), worker("b", true)]);
        let mut blind = snap(vec![worker("a", false), worker("b", false)]);
        blind.redis_ok = false;
        let (m, said) = run(
            Memory::default(),
            &[up.clone(), blind.clone(), blind.clone(), blind],
            RULES,
        );
        assert_eq!(
            said,
            ["🔴 [agent-office] Redis unreachable — worker alerts paused"]
        );
        assert!(
            m.workers["a"].alive,
            "memory of workers is kept while blind"
        );
        let (_, said) = run(m, &[up], RULES);
        assert_eq!(said, ["🟢 [agent-office] Redis reachable again"]);
    }

    #[test]
    fn memory_round_trips_through_json() {
        let (m, _) = run(Memory::default(), &[snap(vec![worker("a", true)])], RULES);
        let back: Memory = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
