//! The `summary` block of `/nodes`: counts over the whole fleet by status, kind and group.

use std::collections::BTreeMap;

use super::{MAX_GROUPS, OTHER_GROUP};
use crate::heartbeat::WorkerKind;
use crate::nodes::{GroupSummary, Summary, WorkerView};
use crate::status::LinkStatus;

/// The group a worker belongs to: its name without the last `-`, `_`, `.` or `:` separated part
/// (`render-eu-0042` → `render-eu`, `image-render` → `image`); a name without a separator is a
/// group of its own.
pub fn group_of(name: &str) -> &str {
    match name.rfind(['-', '_', '.', ':']) {
        Some(0) | None => name,
        Some(i) => &name[..i],
    }
}

/// The summary of a fleet, in one pass. It runs over every worker every cycle, so it counts
/// into arrays indexed by status and kind and looks a worker's group up only when it differs
/// from the previous worker's (workers come sorted by name, so a group is one run); the maps
/// of the contract are made once at the end.
pub fn summarize(workers: &[WorkerView]) -> Summary {
    let mut by_status = Counts::default();
    let mut by_kind = [0u64; WorkerKind::ALL.len()];
    let mut alive = 0;
    let mut tallies: Vec<Tally<'_>> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = Default::default();
    let mut last: Option<(&str, usize)> = None;
    for w in workers {
        let status = w.status();
        alive += u64::from(w.alive);
        by_status.bump(status);
        by_kind[w.kind as usize] += 1; // WorkerKind::ALL is in declaration order (tested)
        let group = group_of(&w.name);
        let at = match last {
            Some((name, at)) if name == group => at,
            _ => *index.entry(group).or_insert_with(|| {
                tallies.push(Tally {
                    name: group,
                    count: 0,
                    alive: 0,
                    by_status: Counts::default(),
                });
                tallies.len() - 1
            }),
        };
        last = Some((group, at));
        let t = &mut tallies[at];
        t.count += 1;
        t.alive += u64::from(w.alive);
        t.by_status.bump(status);
    }
    let mut groups: Vec<GroupSummary> = tallies.iter().map(Tally::summary).collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    if groups.len() > MAX_GROUPS {
        let rest = groups.split_off(MAX_GROUPS - 1);
        let mut other = GroupSummary {
            name: OTHER_GROUP.to_string(),
            count: 0,
            alive: 0,
            status: LinkStatus::Healthy,
            by_status: BTreeMap::new(),
        };
        for g in rest {
            other.count += g.count;
            other.alive += g.alive;
            if g.status.severity() > other.status.severity() {
                other.status = g.status;
            }
            for (k, v) in g.by_status {
                *other.by_status.entry(k).or_default() += v;
            }
        }
        groups.push(other);
    }
    Summary {
        total: workers.len() as u64,
        alive,
        by_status: by_status.map(),
        by_kind: WorkerKind::ALL
            .iter()
            .zip(by_kind)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (*k, n))
            .collect(),
        groups,
    }
}

/// Workers by status, indexed by severity (each status has its own, 0 to 4).
#[derive(Default)]
struct Counts([u64; LinkStatus::ALL.len()]);

impl Counts {
    fn bump(&mut self, status: LinkStatus) {
        self.0[usize::from(status.severity())] += 1;
    }

    /// The worst status counted (healthy when none).
    fn worst(&self) -> LinkStatus {
        LinkStatus::ALL
            .iter()
            .rev()
            .find(|s| self.0[usize::from(s.severity())] > 0)
            .copied()
            .unwrap_or(LinkStatus::Healthy)
    }

    /// As the contract writes it: by status, zero counts left out.
    fn map(&self) -> BTreeMap<LinkStatus, u64> {
        LinkStatus::ALL
            .iter()
            .map(|s| (*s, self.0[usize::from(s.severity())]))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

struct Tally<'a> {
    name: &'a str,
    count: u64,
    alive: u64,
    by_status: Counts,
}

impl Tally<'_> {
    fn summary(&self) -> GroupSummary {
        GroupSummary {
            name: self.name.to_string(),
            count: self.count,
            alive: self.alive,
            status: self.by_status.worst(),
            by_status: self.by_status.map(),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::nodes::{derive_links, NodesSnapshot};

    pub(crate) fn worker(name: &str, alive: bool, state: &str, dead: u64) -> WorkerView {
        WorkerView {
            alive,
            state: Some(state.into()),
            dead_letter: dead,
            ..WorkerView::down(name, WorkerKind::Render)
        }
    }

    pub(crate) fn fleet() -> NodesSnapshot {
        let workers = vec![
            worker("render-eu-01", true, "idle", 0),
            worker("render-eu-02", false, "down", 0),
            worker("render-us-01", true, "paused", 0),
            worker("render-us-02", true, "busy", 3),
            worker("ingest", true, "idle", 0),
        ];
        NodesSnapshot {
            links: derive_links(&workers),
            workers,
            ..NodesSnapshot::empty(chrono::DateTime::UNIX_EPOCH)
        }
    }

    #[test]
    fn groups_are_names_without_their_last_part() {
        assert_eq!(group_of("render-eu-0042"), "render-eu");
        assert_eq!(group_of("image-render"), "image");
        assert_eq!(group_of("ai_trade"), "ai");
        assert_eq!(group_of("ingest"), "ingest");
        assert_eq!(group_of("-x"), "-x");
    }

    #[test]
    fn the_summary_adds_up() {
        let s = summarize(&fleet().workers);
        assert_eq!((s.total, s.alive), (5, 4));
        assert_eq!(s.by_status[&LinkStatus::Healthy], 2);
        assert_eq!(s.by_status[&LinkStatus::Down], 1);
        assert_eq!(s.by_status[&LinkStatus::Paused], 1);
        assert_eq!(s.by_status[&LinkStatus::Degraded], 1);
        assert_eq!(s.by_status.values().sum::<u64>(), s.total);
        assert_eq!(s.by_kind[&WorkerKind::Render], 5);
        let g = |n: &str| s.groups.iter().find(|g| g.name == n).unwrap();
        assert_eq!(
            (g("render-eu").count, g("render-eu").status),
            (2, LinkStatus::Down)
        );
        assert_eq!(
            g("render-us").status,
            LinkStatus::Degraded,
            "degraded is worse than paused"
        );
        assert_eq!(g("ingest").status, LinkStatus::Healthy);
        assert_eq!(s.groups.iter().map(|g| g.count).sum::<u64>(), s.total);
    }

    #[test]
    fn a_group_split_over_the_list_is_counted_as_one() {
        // Registered workers come first, discovered ones after: a group can come back later.
        let mut workers = fleet().workers;
        workers.push(worker("render-eu-03", true, "idle", 1));
        workers.push(worker("zeta", true, "idle", 0));
        workers.push(worker("render-eu-04", true, "idle", 0));
        let s = summarize(&workers);
        let eu = s.groups.iter().find(|g| g.name == "render-eu").unwrap();
        assert_eq!((eu.count, eu.alive, eu.status), (4, 3, LinkStatus::Down));
        assert_eq!(
            eu.by_status,
            BTreeMap::from([
                (LinkStatus::Degraded, 1),
                (LinkStatus::Down, 1),
                (LinkStatus::Healthy, 2)
            ])
        );
        assert_eq!(s.groups.len(), 4, "render-eu, render-us, ingest, zeta");
        assert_eq!(s.groups.iter().map(|g| g.count).sum::<u64>(), s.total);
        assert_eq!(s.by_kind.len(), 1, "zero counts are left out");
        assert_eq!(
            serde_json::to_string(&eu.by_status).unwrap(),
            r#"{"degraded":1,"down":1,"healthy":2}"#,
            "on the wire: the words, in their alphabetical order"
        );
        let back: BTreeMap<LinkStatus, u64> =
            serde_json::from_str(r#"{"down":1,"healthy":2}"#).unwrap();
        assert_eq!(back[&LinkStatus::Down], 1);
    }

    #[test]
    fn many_groups_fold_into_other_and_still_add_up() {
        let workers: Vec<_> = (0..1_000)
            .map(|i| worker(&format!("g{i}-1"), i % 7 != 0, "idle", 0))
            .collect();
        let s = summarize(&workers);
        assert_eq!(s.groups.len(), MAX_GROUPS);
        let other = s.groups.last().unwrap();
        assert_eq!(other.name, OTHER_GROUP);
        assert_eq!(other.status, LinkStatus::Down);
        assert_eq!(s.groups.iter().map(|g| g.count).sum::<u64>(), 1_000);
    }
}
