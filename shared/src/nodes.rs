//! Contract 2: the body of `GET /api/agent-office/nodes` (SPEC §4).
//!
//! Field names are fixed; fields may be added. Added here: `stale_since`, `summary`, `page`
//! (see [`crate::fleet`]), and per worker `registered`, `mode`, `error` (why a heartbeat could
//! not be read) and `queue`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::status::{LinkStatus, StateLabel};
use crate::time::format_ts;
use crate::worker::{WorkerKind, WorkerState};

/// The whole picture, as the collector last saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodesSnapshot {
    pub redis_ok: bool,
    pub paused: bool,
    pub paused_reason: Option<String>,
    /// When this snapshot was built (UTC, ending in `Z`).
    pub generated_at: String,
    /// While Redis is unreachable: when the data shown was last read successfully.
    #[serde(default)]
    pub stale_since: Option<String>,
    pub workers: Vec<WorkerView>,
    pub links: Vec<Link>,
    /// Counts over the whole fleet by status, kind and group (in every answer, filtered or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// Only in a filtered or paged answer: how many workers matched and which window this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
}

impl NodesSnapshot {
    /// A snapshot with no data yet, as served before the first collector cycle ends.
    pub fn empty(now: DateTime<Utc>) -> Self {
        Self {
            redis_ok: false,
            paused: false,
            paused_reason: None,
            generated_at: format_ts(now),
            stale_since: None,
            workers: Vec::new(),
            links: Vec::new(),
            summary: None,
            page: None,
        }
    }

    /// A fingerprint of what the dashboard shows, leaving out what moves every cycle on its own
    /// (`generated_at`, heartbeat ages): equal digests, nothing to redraw. The push stream sends
    /// an event only when it changes. Stable within one process, not across builds.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            self.redis_ok,
            self.paused,
            &self.paused_reason,
            &self.stale_since,
        )
            .hash(&mut h);
        for w in &self.workers {
            (&w.name, w.kind, w.alive, &w.state).hash(&mut h);
            (w.queue_depth, w.dead_letter, w.processing).hash(&mut h);
            (w.jobs_done, w.jobs_failed, &w.last_job_at).hash(&mut h);
            (w.registered, &w.mode, &w.error).hash(&mut h);
        }
        h.finish()
    }
}

/// One worker as the dashboard shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    pub name: String,
    pub kind: WorkerKind,
    pub alive: bool,
    /// The state its heartbeat says, as written; `null` while it is not alive (SPEC's plan:
    /// a worker without a heartbeat has no state).
    pub state: Option<WorkerState>,
    /// Now − the heartbeat's `ts` (the writer's clock against ours); `null` without a beat.
    pub last_beat_age_s: Option<i64>,
    /// Seconds since this server last saw a new beat from it, on its own clock (`null`: never):
    /// what the cards and labels say ("last beat 5 min ago").
    #[serde(default)]
    pub last_seen_age_s: Option<i64>,
    pub queue_depth: u64,
    pub dead_letter: u64,
    pub processing: u64,
    pub jobs_done: u64,
    pub jobs_failed: u64,
    pub last_job_at: Option<String>,
    /// Listed in the worker registry (otherwise discovered from its heartbeat key).
    #[serde(default)]
    pub registered: bool,
    /// The watcher's mode, when it sends one.
    #[serde(default)]
    pub mode: Option<String>,
    /// Why the heartbeat key holds no valid heartbeat, when it holds something.
    #[serde(default)]
    pub error: Option<String>,
    /// The `<q>` of the `queue:<q>` it consumes, for the queue actions (none: not fed by Redis).
    #[serde(default)]
    pub queue: Option<String>,
}

impl WorkerView {
    /// A registered worker with no valid heartbeat: not alive, no state, every count 0.
    pub fn down(name: impl Into<String>, kind: WorkerKind) -> Self {
        Self {
            name: name.into(),
            kind,
            alive: false,
            state: None,
            last_beat_age_s: None,
            last_seen_age_s: None,
            queue_depth: 0,
            dead_letter: 0,
            processing: 0,
            jobs_done: 0,
            jobs_failed: 0,
            last_job_at: None,
            registered: true,
            mode: None,
            error: None,
            queue: None,
        }
    }

    /// The status of this worker's card and link (SPEC §4): down, paused, degraded, healthy.
    pub fn status(&self) -> LinkStatus {
        if !self.alive {
            LinkStatus::Down
        } else if self.state == Some(WorkerState::Paused) {
            LinkStatus::Paused
        } else if self.dead_letter > 0 {
            LinkStatus::Degraded
        } else {
            LinkStatus::Healthy
        }
    }

    /// The label a person reads for its state (SPEC §5).
    pub fn state_label(&self) -> StateLabel<'_> {
        StateLabel::of(self.alive, self.state.as_ref())
    }
}

/// Counts over the whole fleet, whatever the filter (made by [`crate::fleet::summarize`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub total: u64,
    pub alive: u64,
    /// Workers by status (`healthy`, `paused`, `degraded`, `down`); zero counts left out.
    pub by_status: BTreeMap<LinkStatus, u64>,
    /// Workers by kind (`render`, `watcher`, `trader`, `unknown`).
    pub by_kind: BTreeMap<WorkerKind, u64>,
    /// Groups by size, largest first (see [`crate::fleet::group_of`]).
    pub groups: Vec<GroupSummary>,
}

/// One group of workers: its size, how many are alive, and its worst status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    pub name: String,
    pub count: u64,
    pub alive: u64,
    /// The worst status among its workers (down over degraded over paused over healthy).
    pub status: LinkStatus,
    pub by_status: BTreeMap<LinkStatus, u64>,
}

/// Which part of the fleet a filtered answer holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Workers that passed the filters (before `offset`/`limit`).
    pub matched: u64,
    pub offset: u64,
    pub limit: Option<u64>,
}

/// How a link carries work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkKind {
    #[serde(rename = "redis-queue")]
    RedisQueue,
    #[serde(rename = "http-pull")]
    HttpPull,
}

/// An edge of the pipeline picture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub from: String,
    pub to: String,
    #[serde(rename = "type")]
    pub kind: LinkKind,
    pub status: LinkStatus,
}

/// The NAS node every render queue hangs off.
pub const NAS: &str = "nas";
/// The market-data host the trader pulls from over HTTP.
pub const NAS_STOCK: &str = "nas-stock";

/// The links of SPEC §4: `nas → <render>` per render worker, `<trader> → nas-stock` per trader;
/// watchers have none.
pub fn derive_links(workers: &[WorkerView]) -> Vec<Link> {
    let mut links = Vec::new();
    fill_links(&mut links, workers);
    links
}

/// [`derive_links`] written over `links`, into the strings it already holds.
pub fn fill_links(links: &mut Vec<Link>, workers: &[WorkerView]) {
    let mut n = 0;
    for w in workers {
        let (from, to, kind, status) = match w.kind {
            WorkerKind::Render => (NAS, w.name.as_str(), LinkKind::RedisQueue, w.status()),
            WorkerKind::Trader => (
                w.name.as_str(),
                NAS_STOCK,
                LinkKind::HttpPull,
                if w.alive {
                    LinkStatus::Healthy
                } else {
                    LinkStatus::Down
                },
            ),
            WorkerKind::Watcher | WorkerKind::Unknown => continue,
        };
        match links.get_mut(n) {
            Some(link) => {
                crate::reuse::set(&mut link.from, from);
                crate::reuse::set(&mut link.to, to);
                link.kind = kind;
                link.status = status;
            }
            None => links.push(Link {
                from: from.to_owned(),
                to: to.to_owned(),
                kind,
                status,
            }),
        }
        n += 1;
    }
    links.truncate(n);
}

/// `paused_reason` (SPEC §4): the watcher's mode, else `"trading"` while paused.
pub fn paused_reason(paused: bool, workers: &[WorkerView]) -> Option<String> {
    workers
        .iter()
        .filter(|w| w.kind == WorkerKind::Watcher && w.alive)
        .find_map(|w| w.mode.clone())
        .or_else(|| paused.then(|| "trading".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(name: &str, kind: WorkerKind) -> WorkerView {
        WorkerView {
            alive: true,
            state: Some("idle".into()),
            last_beat_age_s: Some(3),
            ..WorkerView::down(name, kind)
        }
    }

    #[test]
    fn digest_follows_what_the_dashboard_shows_and_ignores_ages() {
        let now = DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap();
        let mut a = NodesSnapshot::empty(now);
        a.redis_ok = true;
        a.workers = vec![worker("image-render", WorkerKind::Render)];
        let mut b = a.clone();
        b.generated_at = format_ts(now + chrono::Duration::seconds(1));
        b.workers[0].last_beat_age_s = Some(4);
        assert_eq!(a.digest(), b.digest(), "time passing alone changes nothing");

        for change in [
            |s: &mut NodesSnapshot| s.workers[0].state = Some("busy".into()),
            |s: &mut NodesSnapshot| s.workers[0].alive = false,
            |s: &mut NodesSnapshot| s.workers[0].dead_letter = 1,
            |s: &mut NodesSnapshot| s.workers[0].queue_depth = 7,
            |s: &mut NodesSnapshot| s.workers[0].jobs_done += 1,
            |s: &mut NodesSnapshot| s.redis_ok = false,
            |s: &mut NodesSnapshot| s.paused = true,
            |s: &mut NodesSnapshot| s.workers.push(worker("gpu-1", WorkerKind::Render)),
        ] {
            let mut c = a.clone();
            change(&mut c);
            assert_ne!(a.digest(), c.digest(), "{c:?}");
        }
    }

    #[test]
    fn render_link_status_follows_the_spec_order() {
        let mut w = worker("image-render", WorkerKind::Render);
        assert_eq!(w.status(), LinkStatus::Healthy);
        w.dead_letter = 2;
        assert_eq!(w.status(), LinkStatus::Degraded);
        w.state = Some("paused".into());
        assert_eq!(w.status(), LinkStatus::Paused, "paused wins over degraded");
        w.alive = false;
        assert_eq!(w.status(), LinkStatus::Down, "down wins over everything");
    }

    #[test]
    fn links_per_kind() {
        let mut trader = worker("ai_trade", WorkerKind::Trader);
        trader.state = Some("market_open".into());
        let workers = vec![
            worker("image-render", WorkerKind::Render),
            worker("task-watcher", WorkerKind::Watcher),
            trader.clone(),
        ];
        let links = derive_links(&workers);
        assert_eq!(links.len(), 2);
        assert_eq!(
            serde_json::to_value(&links[0]).unwrap(),
            serde_json::json!({"from":"nas","to":"image-render","type":"redis-queue","status":"healthy"})
        );
        assert_eq!(
            serde_json::to_value(&links[1]).unwrap(),
            serde_json::json!({"from":"ai_trade","to":"nas-stock","type":"http-pull","status":"healthy"})
        );
        trader.alive = false;
        assert_eq!(derive_links(&[trader])[0].status, LinkStatus::Down);
    }

    #[test]
    fn links_filled_over_old_ones_are_the_links_derived_afresh() {
        let many: Vec<WorkerView> = (0..5)
            .map(|i| worker(&format!("render-{i}"), WorkerKind::Render))
            .collect();
        let mut links = derive_links(&many);
        let mut trader = worker("ai_trade", WorkerKind::Trader);
        trader.alive = false;
        let fewer = vec![
            trader,
            worker("task-watcher", WorkerKind::Watcher),
            worker("x", WorkerKind::Render),
        ];
        fill_links(&mut links, &fewer);
        assert_eq!(links, derive_links(&fewer));
        fill_links(&mut links, &many);
        assert_eq!(links, derive_links(&many), "and back to a longer list");
    }

    #[test]
    fn paused_reason_prefers_the_watchers_mode() {
        let mut watcher = worker("task-watcher", WorkerKind::Watcher);
        assert_eq!(paused_reason(false, &[watcher.clone()]), None);
        assert_eq!(
            paused_reason(true, &[watcher.clone()]).as_deref(),
            Some("trading")
        );
        watcher.mode = Some("earnings".into());
        assert_eq!(
            paused_reason(true, &[watcher.clone()]).as_deref(),
            Some("earnings")
        );
        watcher.alive = false;
        assert_eq!(paused_reason(false, &[watcher]), None);
    }

    #[test]
    fn worker_json_has_the_contract_fields() {
        let v = serde_json::to_value(worker("image-render", WorkerKind::Render)).unwrap();
        for field in [
            "name",
            "kind",
            "alive",
            "state",
            "last_beat_age_s",
            "queue_depth",
            "dead_letter",
            "processing",
            "jobs_done",
            "jobs_failed",
            "last_job_at",
        ] {
            assert!(v.get(field).is_some(), "missing {field}");
        }
        assert_eq!(v["kind"], "render");
    }
}
