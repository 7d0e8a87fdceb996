//! The query parameters that filter and page `/nodes`, and what a filtered answer holds.

use super::{group_of, summarize, MAX_LIMIT};
use crate::heartbeat::WorkerKind;
use crate::nodes::{Link, NodesSnapshot, Page, WorkerView};
use crate::status::LinkStatus;

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
    use super::super::summary::tests::fleet;
    use super::*;

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
