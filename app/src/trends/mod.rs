//! Trends on the pages (SPEC §11): the cards' sparklines, the fleet's last hour on `/infra`,
//! and a worker's own page with its charts over 1 h / 24 h / 30 d and its alerts on the time
//! axis. Drawn as SVG by the server and refreshed in place once hydrated.

mod chart;
mod worker;

use serde::{Deserialize, Serialize};
use shared::fleet::{encode, NodesQuery};
use shared::series::{Range, SeriesReply, SparksReply};

use crate::error::LoadError;
pub use chart::{SeriesCharts, Sparkline};
pub use worker::WorkerPage;

const SERIES_URL: &str = "/api/series";
const SPARKS_URL: &str = "/api/sparklines";

/// Whose series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeriesOf {
    Worker(String),
    Fleet,
}

impl SeriesOf {
    fn query(&self, range: Range) -> String {
        match self {
            Self::Worker(name) => format!("worker={}&range={}", encode(name), range.as_str()),
            Self::Fleet => format!("range={}", range.as_str()),
        }
    }
}

/// What the server gives the charts during SSR, provided as Leptos context.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct TrendsSource {
    /// A series from Redis (one read).
    pub series: std::sync::Arc<
        dyn Fn(SeriesOf, Range) -> crate::control_data::Pending<SeriesReply> + Send + Sync,
    >,
    /// The sparklines of one page of cards, from memory.
    pub sparks: std::sync::Arc<dyn Fn(&NodesQuery) -> SparksReply + Send + Sync>,
}

/// A series with the time it was read at: the chart's axis ends there, the same in the server's
/// HTML and in the hydrated page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    pub series: SeriesReply,
    pub now: i64,
}

/// Seconds since the epoch, by this side's clock.
pub fn now_s() -> i64 {
    #[cfg(browser)]
    {
        (js_sys::Date::now() / 1000.0) as i64
    }
    #[cfg(not(browser))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

pub async fn load_series(of: SeriesOf, range: Range) -> Result<Trend, LoadError> {
    let now = now_s();
    #[cfg(feature = "ssr")]
    if let Some(s) = leptos::prelude::use_context::<TrendsSource>() {
        return (s.series)(of, range)
            .await
            .map(|series| Trend { series, now });
    }
    let url = format!("{SERIES_URL}?{}", of.query(range));
    crate::nodes::load(None, url)
        .await
        .map(|series| Trend { series, now })
}

/// The sparklines of the page of cards `query` shows.
pub async fn load_sparks(query: NodesQuery) -> Result<SparksReply, LoadError> {
    #[cfg(feature = "ssr")]
    if let Some(s) = leptos::prelude::use_context::<TrendsSource>() {
        return Ok((s.sparks)(&query));
    }
    crate::nodes::load(None, sparks_url(&query)).await
}

pub fn sparks_url(query: &NodesQuery) -> String {
    match query.to_query_string() {
        q if q.is_empty() => SPARKS_URL.to_string(),
        q => format!("{SPARKS_URL}?{q}"),
    }
}
