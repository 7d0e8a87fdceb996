//! `GET /api/series?worker=<name>` (or `group=<group>`, or neither for the fleet)
//! `&range=1h|24h|30d` → `{step_s, points:[{t, done, failed, queue_depth, alive}]}`, oldest
//! first: the steps of the range that have data (one `HGETALL`).

use axum::extract::{FromRef, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use shared::control::valid::FieldError;

use super::fold::{Point, Resolution};
use super::{Series, Trends};
use crate::error::ApiError;

pub fn router<S>() -> Router<S>
where
    Trends: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/api/series", get(series))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesQuery {
    worker: Option<String>,
    group: Option<String>,
    range: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct SeriesReply {
    pub step_s: i64,
    pub points: Vec<SeriesPoint>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct SeriesPoint {
    pub t: String,
    pub done: u64,
    pub failed: u64,
    pub queue_depth: u64,
    /// The fraction of the step alive (0 to 1).
    pub alive: f64,
}

async fn series(
    State(trends): State<Trends>,
    Query(q): Query<SeriesQuery>,
) -> Result<Json<SeriesReply>, ApiError> {
    let range = q.range.as_deref().unwrap_or("1h");
    let r =
        Resolution::by_range(range).ok_or_else(|| FieldError::new("range", "1h, 24h or 30d"))?;
    let which = match (q.worker, q.group) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new("group", "give worker or group, not both").into())
        }
        (Some(w), None) => named("worker", w, Series::Worker)?,
        (None, Some(g)) => named("group", g, Series::Group)?,
        (None, None) => Series::Fleet,
    };
    let key = which.key(r.range);
    let raw: std::collections::HashMap<String, String> = trends
        .store
        .run(|mut c| async move { redis::cmd("HGETALL").arg(key).query_async(&mut c).await })
        .await?;
    let from = Utc::now().timestamp() - r.step_s * r.slots;
    let mut points: Vec<Point> = raw
        .values()
        .filter_map(|v| Point::decode(v, r.step_s))
        .filter(|p| p.t > from)
        .collect();
    points.sort_by_key(|p| p.t);
    Ok(Json(SeriesReply {
        step_s: r.step_s,
        points: points
            .into_iter()
            .map(|p| SeriesPoint {
                t: chrono::DateTime::from_timestamp(p.t, 0)
                    .map(shared::time::format_ts)
                    .unwrap_or_default(),
                done: p.done,
                failed: p.failed,
                queue_depth: p.queue_depth,
                alive: (p.alive_fraction() * 1000.0).round() / 1000.0,
            })
            .collect(),
    }))
}

fn named(field: &str, name: String, f: fn(String) -> Series) -> Result<Series, ApiError> {
    if shared::keys::is_valid_name(&name) {
        Ok(f(name))
    } else {
        Err(FieldError::new(field, format!("a name is {}", shared::keys::NAME_RULE)).into())
    }
}
