//! `GET /api/series?worker=<name>` (or `group=<group>`, or neither for the fleet)
//! `&range=1h|24h|30d` → `{step_s, points:[{t, done, failed, queue_depth, alive}]}`, oldest
//! first: the steps of the range that have data (one `HGETALL`).

use axum::extract::{FromRef, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use shared::control::valid::FieldError;
use shared::fleet::NodesQuery;
use shared::series::{Range, SeriesPoint, SeriesReply, SparksReply};

use super::fold::Point;
use super::{store, Series, Trends};
use crate::error::ApiError;

pub fn router<S>() -> Router<S>
where
    Trends: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/series", get(series))
        .route("/api/sparklines", get(sparklines))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesQuery {
    worker: Option<String>,
    group: Option<String>,
    range: Option<String>,
}

async fn series(
    State(trends): State<Trends>,
    Query(q): Query<SeriesQuery>,
) -> Result<Json<SeriesReply>, ApiError> {
    let r = match q.range.as_deref() {
        None => Range::Hour,
        Some(range) => {
            Range::parse(range).ok_or_else(|| FieldError::new("range", "1h, 24h or 30d"))?
        }
    };
    let which = match (q.worker, q.group) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new("group", "give worker or group, not both").into())
        }
        (Some(w), None) => named("worker", w, Series::Worker)?,
        (None, Some(g)) => named("group", g, Series::Group)?,
        (None, None) => Series::Fleet,
    };
    Ok(Json(trends.series(&which, r).await?))
}

impl Trends {
    /// A series as Redis holds it, its open step brought up to what this replica has folded
    /// (the holder writes every 10 s; every replica folds every cycle).
    pub async fn series(&self, which: &Series, r: Range) -> Result<SeriesReply, ApiError> {
        let now = Utc::now().timestamp();
        let mut points = store::read(&self.store, which, r, now).await?;
        if let Some(open) = self.folder().open_point(which, r) {
            match points.last_mut() {
                Some(last) if last.t == open.t => *last = newest(*last, open),
                _ if open.t > now - r.span_s() => points.push(open),
                _ => {}
            }
        }
        Ok(SeriesReply {
            step_s: r.step_s(),
            points: points.into_iter().map(to_reply).collect(),
        })
    }
}

/// One step seen twice (stored, and folded here since start): the larger counts win.
fn newest(a: Point, b: Point) -> Point {
    Point {
        t: a.t,
        done: a.done.max(b.done),
        failed: a.failed.max(b.failed),
        queue_depth: a.queue_depth.max(b.queue_depth),
        ..if b.samples >= a.samples { b } else { a }
    }
}

fn to_reply(p: Point) -> SeriesPoint {
    SeriesPoint {
        t: chrono::DateTime::from_timestamp(p.t, 0)
            .map(shared::time::format_ts)
            .unwrap_or_default(),
        done: p.done,
        failed: p.failed,
        queue_depth: p.queue_depth,
        alive: (p.alive_fraction() * 1000.0).round() / 1000.0,
    }
}

/// `GET /api/sparklines?<the /nodes query of a page of cards>`: those workers' last hour.
async fn sparklines(
    State(trends): State<Trends>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<SparksReply>, ApiError> {
    let query = NodesQuery::from_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| ApiError::field("query", e.to_string()))?;
    // Filtering a whole fleet is CPU work: off the async threads.
    tokio::task::spawn_blocking(move || Json(trends.sparks(&query)))
        .await
        .map_err(|e| ApiError::Internal(format!("sparklines: {e}")))
}

fn named(field: &str, name: String, f: fn(String) -> Series) -> Result<Series, ApiError> {
    if shared::keys::is_valid_name(&name) {
        Ok(f(name))
    } else {
        Err(FieldError::new(field, format!("a name is {}", shared::keys::NAME_RULE)).into())
    }
}
