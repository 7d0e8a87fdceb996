//! Above [`GROUP_ABOVE`] workers the 3D view draws one tube per group instead of one per
//! worker: each group of the snapshot's `summary` becomes a stand-in worker named
//! `"<group> (<count>)"` whose status is the group's worst, so the tube's colour and motion
//! say what the worst of its workers would.

use shared::fleet::{links_of, GroupSummary, GROUP_ABOVE};
use shared::nodes::derive_links;
use shared::status::LinkStatus;
use shared::{NodesSnapshot, WorkerKind, WorkerState, WorkerView};

/// Whether this answer should be drawn as groups: a big fleet, and no group opened.
pub fn is_grouped(snap: &NodesSnapshot, group_open: bool) -> bool {
    !group_open
        && snap
            .summary
            .as_ref()
            .is_some_and(|s| s.total as usize > GROUP_ABOVE)
}

/// The label of a group's tube.
pub fn tube_name(g: &GroupSummary) -> String {
    format!("{} ({})", g.name, g.count)
}

/// The snapshot with one stand-in worker per group.
pub fn as_groups(snap: &NodesSnapshot) -> NodesSnapshot {
    let groups = snap.summary.as_ref().map_or(&[][..], |s| &s.groups[..]);
    let workers: Vec<WorkerView> = groups.iter().map(stand_in).collect();
    NodesSnapshot {
        links: derive_links(&workers),
        workers,
        page: None,
        ..snap.clone()
    }
}

/// At most [`GROUP_ABOVE`] workers (the first ones: an answer comes problems first) and their
/// links: an opened group larger than that is drawn by its worst part.
pub fn capped(mut snap: NodesSnapshot) -> NodesSnapshot {
    if snap.workers.len() > GROUP_ABOVE {
        snap.workers.truncate(GROUP_ABOVE);
        snap.links = links_of(&snap.links, &snap.workers);
    }
    snap
}

fn stand_in(g: &GroupSummary) -> WorkerView {
    let mut w = WorkerView {
        alive: g.status != LinkStatus::Down,
        state: Some(WorkerState::Idle),
        ..WorkerView::down(tube_name(g), WorkerKind::Render)
    };
    match g.status {
        LinkStatus::Paused => w.state = Some(WorkerState::Paused),
        LinkStatus::Degraded => {
            w.dead_letter = g.by_status.get(&LinkStatus::Degraded).copied().unwrap_or(1);
        }
        LinkStatus::Down => w.state = None,
        _ => {}
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::fleet::summarize;

    fn fleet(n: usize) -> NodesSnapshot {
        let workers: Vec<WorkerView> = (0..n)
            .map(|i| WorkerView {
                alive: i != 5,
                state: Some(if i == 3 { "paused" } else { "idle" }.into()),
                ..WorkerView::down(format!("g{}-{i}", i % 4), WorkerKind::Render)
            })
            .collect();
        NodesSnapshot {
            summary: Some(summarize(&workers)),
            links: derive_links(&workers),
            workers,
            ..NodesSnapshot::empty(chrono::DateTime::UNIX_EPOCH)
        }
    }

    #[test]
    fn big_fleets_are_grouped_unless_a_group_is_open() {
        assert!(!is_grouped(&fleet(GROUP_ABOVE), false));
        assert!(is_grouped(&fleet(GROUP_ABOVE + 1), false));
        assert!(!is_grouped(&fleet(GROUP_ABOVE + 1), true));
    }

    #[test]
    fn an_open_group_draws_at_most_the_threshold() {
        let snap = capped(fleet(GROUP_ABOVE + 50));
        assert_eq!(snap.workers.len(), GROUP_ABOVE);
        assert_eq!(snap.links.len(), GROUP_ABOVE);
        assert_eq!(capped(fleet(10)).workers.len(), 10);
    }

    #[test]
    fn each_group_is_one_tube_in_its_worst_colour() {
        let g = as_groups(&fleet(400));
        assert_eq!(g.workers.len(), 4);
        assert_eq!(g.links.len(), 4, "one tube per group");
        for w in &g.workers {
            assert!(w.name.ends_with("(100)"), "{}", w.name);
        }
        // Worker 5 (group g1) is down; 3 (g3) is paused: each tube shows its worst.
        let status = |prefix: &str| {
            g.workers
                .iter()
                .find(|w| w.name.starts_with(prefix))
                .unwrap()
                .status()
        };
        assert_eq!(status("g1 "), LinkStatus::Down);
        assert_eq!(status("g3 "), LinkStatus::Paused);
    }
}
