//! Big fleets: the `summary` block of `/nodes` (counts by status, kind and group), the query
//! parameters that filter and page it (`?status=down,degraded&kind=render&q=img&limit=100`),
//! and the worker groups the 3D view draws instead of single workers above [`GROUP_ABOVE`].

use std::collections::BTreeMap;

use crate::heartbeat::WorkerKind;
pub use crate::nodes::{GroupSummary, Page, Summary};
use crate::nodes::{Link, NodesSnapshot, WorkerView};
use crate::status::LinkStatus;

/// Above this many workers the 3D view draws one tube per group.
pub const GROUP_ABOVE: usize = 200;
/// The summary lists at most this many groups, largest first; the rest are folded into one
/// entry named [`OTHER_GROUP`].
pub const MAX_GROUPS: usize = 100;
pub const OTHER_GROUP: &str = "(other)";
/// The largest page `limit` accepts.
pub const MAX_LIMIT: usize = 10_000;

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

/// The order of a filtered answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// The snapshot's own order: registered workers first, then discovered ones by name.
    #[default]
    Fleet,
    /// Worst status first (down, degraded, paused, healthy), then by name.
    Problems,
    Name,
}

/// The query parameters of `/api/agent-office/nodes`. None given: the whole snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodesQuery {
    pub status: Vec<LinkStatus>,
    pub kind: Vec<WorkerKind>,
    /// Name prefix, compared without regard to ASCII case.
    pub q: Option<String>,
    /// Only this group's workers ([`group_of`]).
    pub group: Option<String>,
    pub order: Order,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// A query parameter that cannot be read; the text says which and what it accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

impl NodesQuery {
    /// Reads `status`, `kind`, `q`, `group`, `order`, `limit` and `offset` from decoded
    /// `(name, value)` pairs; any other name is an error, so a typo is not silently ignored.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, QueryError> {
        let mut q = NodesQuery::default();
        for (name, value) in pairs {
            match name {
                "status" => {
                    for word in words(value) {
                        q.status.push(parse_status(word)?);
                    }
                }
                "kind" => {
                    for word in words(value) {
                        let kind = match word {
                            "unknown" => Some(WorkerKind::Unknown),
                            w => WorkerKind::parse(w),
                        };
                        q.kind.push(kind.ok_or_else(|| {
                            QueryError(format!(
                                "kind {word:?} is not one of render, watcher, trader, unknown"
                            ))
                        })?);
                    }
                }
                "q" => q.q = Some(value.to_string()).filter(|v| !v.is_empty()),
                "group" => q.group = Some(value.to_string()),
                "order" => {
                    q.order = match value {
                        "fleet" => Order::Fleet,
                        "problems" => Order::Problems,
                        "name" => Order::Name,
                        other => {
                            return Err(QueryError(format!(
                                "order {other:?} is not one of fleet, problems, name"
                            )))
                        }
                    }
                }
                "limit" => {
                    let n = number("limit", value)?;
                    if n == 0 || n > MAX_LIMIT {
                        return Err(QueryError(format!(
                            "limit must be between 1 and {MAX_LIMIT}"
                        )));
                    }
                    q.limit = Some(n);
                }
                "offset" => q.offset = number("offset", value)?,
                other => {
                    return Err(QueryError(format!(
                    "unknown parameter {other:?}: use status, kind, q, group, order, limit, offset"
                )))
                }
            }
        }
        Ok(q)
    }

    /// The query string for these parameters (without `?`), as the dashboard sends it.
    pub fn to_query_string(&self) -> String {
        let mut parts = Vec::new();
        if !self.status.is_empty() {
            let words: Vec<&str> = self.status.iter().map(|s| s.as_str()).collect();
            parts.push(format!("status={}", words.join(",")));
        }
        if !self.kind.is_empty() {
            let words: Vec<&str> = self.kind.iter().map(|k| k.as_str()).collect();
            parts.push(format!("kind={}", words.join(",")));
        }
        if let Some(q) = &self.q {
            parts.push(format!("q={}", encode(q)));
        }
        if let Some(g) = &self.group {
            parts.push(format!("group={}", encode(g)));
        }
        match self.order {
            Order::Fleet => {}
            Order::Problems => parts.push("order=problems".into()),
            Order::Name => parts.push("order=name".into()),
        }
        if let Some(l) = self.limit {
            parts.push(format!("limit={l}"));
        }
        if self.offset > 0 {
            parts.push(format!("offset={}", self.offset));
        }
        parts.join("&")
    }

    fn matches(&self, w: &WorkerView) -> bool {
        (self.status.is_empty() || self.status.contains(&w.status()))
            && (self.kind.is_empty() || self.kind.contains(&w.kind))
            && self.q.as_deref().is_none_or(|p| {
                w.name.len() >= p.len()
                    && w.name.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            })
            && self.group.as_deref().is_none_or(|g| group_of(&w.name) == g)
    }

    /// The answer for this query: the matching workers in the asked order and window, the
    /// links that touch them, the fleet's summary and the page numbers.
    pub fn apply(&self, snap: &NodesSnapshot) -> NodesSnapshot {
        let mut picked: Vec<&WorkerView> =
            snap.workers.iter().filter(|w| self.matches(w)).collect();
        match self.order {
            Order::Fleet => {}
            Order::Problems => picked.sort_by(|a, b| {
                b.status()
                    .severity()
                    .cmp(&a.status().severity())
                    .then_with(|| a.name.cmp(&b.name))
            }),
            Order::Name => picked.sort_by(|a, b| a.name.cmp(&b.name)),
        }
        let matched = picked.len();
        let window: Vec<WorkerView> = picked
            .into_iter()
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        let links = links_of(&snap.links, &window);
        NodesSnapshot {
            redis_ok: snap.redis_ok,
            paused: snap.paused,
            paused_reason: snap.paused_reason.clone(),
            generated_at: snap.generated_at.clone(),
            stale_since: snap.stale_since.clone(),
            workers: window,
            links,
            summary: Some(
                snap.summary
                    .clone()
                    .unwrap_or_else(|| summarize(&snap.workers)),
            ),
            page: Some(Page {
                matched: matched as u64,
                offset: self.offset as u64,
                limit: self.limit.map(|l| l as u64),
            }),
        }
    }
}

/// The links that start or end at one of `workers`.
pub fn links_of(links: &[Link], workers: &[WorkerView]) -> Vec<Link> {
    let names: std::collections::HashSet<&str> = workers.iter().map(|w| w.name.as_str()).collect();
    links
        .iter()
        .filter(|l| names.contains(l.from.as_str()) || names.contains(l.to.as_str()))
        .cloned()
        .collect()
}

fn words(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|w| !w.is_empty())
}

fn parse_status(word: &str) -> Result<LinkStatus, QueryError> {
    match word {
        "healthy" => Ok(LinkStatus::Healthy),
        "paused" => Ok(LinkStatus::Paused),
        "degraded" => Ok(LinkStatus::Degraded),
        "down" => Ok(LinkStatus::Down),
        other => Err(QueryError(format!(
            "status {other:?} is not one of healthy, paused, degraded, down"
        ))),
    }
}

fn number(name: &str, value: &str) -> Result<usize, QueryError> {
    value
        .parse()
        .map_err(|_| QueryError(format!("{name} must be a whole number, not {value:?}")))
}

/// Percent-encodes everything but unreserved characters (a query-string value).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::derive_links;

    fn worker(name: &str, alive: bool, state: &str, dead: u64) -> WorkerView {
        WorkerView {
            alive,
            state: Some(state.into()),
            dead_letter: dead,
            ..WorkerView::down(name, WorkerKind::Render)
        }
    }

    fn fleet() -> NodesSnapshot {
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

    fn pairs(q: &str) -> Result<NodesQuery, QueryError> {
        NodesQuery::from_pairs(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').unwrap_or((p, ""))),
        )
    }

    fn names(s: &NodesSnapshot) -> Vec<&str> {
        s.workers.iter().map(|w| w.name.as_str()).collect()
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

    #[test]
    fn filters_combine_and_page() {
        let snap = fleet();
        let q = pairs("status=down,degraded").unwrap();
        assert_eq!(names(&q.apply(&snap)), ["render-eu-02", "render-us-02"]);
        let q = pairs("q=RENDER-US").unwrap();
        assert_eq!(names(&q.apply(&snap)), ["render-us-01", "render-us-02"]);
        let q = pairs("group=render-eu&status=healthy").unwrap();
        assert_eq!(names(&q.apply(&snap)), ["render-eu-01"]);
        let q = pairs("order=problems").unwrap();
        assert_eq!(
            names(&q.apply(&snap)),
            [
                "render-eu-02",
                "render-us-02",
                "render-us-01",
                "ingest",
                "render-eu-01"
            ]
        );
        let q = pairs("order=name&limit=2&offset=1").unwrap();
        let page = q.apply(&snap);
        assert_eq!(names(&page), ["render-eu-01", "render-eu-02"]);
        let p = page.page.unwrap();
        assert_eq!((p.matched, p.offset, p.limit), (5, 1, Some(2)));
        assert_eq!(
            page.summary.unwrap().total,
            5,
            "the summary is of the whole fleet"
        );
        assert_eq!(page.links.len(), 2, "only the links of the workers shown");
        let past = pairs("offset=99").unwrap().apply(&snap);
        assert!(past.workers.is_empty());
        assert_eq!(past.page.unwrap().matched, 5);
    }

    #[test]
    fn bad_parameters_say_what_is_accepted() {
        for (query, needle) in [
            ("status=dead", "healthy, paused, degraded, down"),
            ("kind=robot", "render, watcher, trader"),
            ("limit=0", "between 1 and"),
            ("limit=x", "whole number"),
            ("offset=-1", "whole number"),
            ("order=random", "fleet, problems, name"),
            ("stauts=down", "unknown parameter"),
        ] {
            let err = pairs(query).unwrap_err().to_string();
            assert!(err.contains(needle), "{query}: {err}");
        }
    }

    #[test]
    fn a_query_string_reads_back_the_same() {
        let q = NodesQuery {
            status: vec![LinkStatus::Down],
            kind: vec![WorkerKind::Render],
            q: Some("a b&c".into()),
            group: Some("render-eu".into()),
            order: Order::Problems,
            limit: Some(50),
            offset: 100,
        };
        let s = q.to_query_string();
        assert_eq!(s, "status=down&kind=render&q=a%20b%26c&group=render-eu&order=problems&limit=50&offset=100");
        assert_eq!(NodesQuery::default().to_query_string(), "");
    }
}
