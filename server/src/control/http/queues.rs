//! Queue actions (operator): retry or purge a queue's dead letters, requeue an orphaned
//! processing list. Each is one atomic step in Redis (`control::queues`).

use axum::body::Body;
use axum::extract::{FromRef, Path};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::check_id;
use crate::control::call::{action, Call};
use crate::control::{orphan, parse_json, queues, read_body, Control};
use crate::error::ApiError;

pub fn router<S>() -> Router<S>
where
    Control: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/queues/{q}/dead-letter/retry", post(retry_dead))
        .route("/api/queues/{q}/dead-letter/purge", post(purge_dead))
        .route("/api/queues/{q}/processing/{owner}/requeue", post(requeue))
}

action!(RetryDead, "queue.dead_letter.retry", Operator, Always);
action!(PurgeDead, "queue.dead_letter.purge", Operator, Always);
action!(Requeue, "queue.processing.requeue", Operator, Always);

/// The one queue-name rule (`shared::keys`): a queue an agent runs can always be acted on.
fn check_queue(q: &str) -> Result<(), ApiError> {
    if shared::keys::is_valid_name(q) {
        Ok(())
    } else {
        Err(ApiError::field(
            "q",
            format!("a queue name is {}", shared::keys::NAME_RULE),
        ))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    count: Option<u64>,
}

async fn retry_dead(
    call: Call<RetryDead>,
    Path(q): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let result = async {
        check_queue(&q)?;
        let bytes = read_body(body).await?;
        let body: RetryBody = if bytes.iter().all(u8::is_ascii_whitespace) {
            RetryBody::default()
        } else {
            parse_json(&bytes)?
        };
        if body.count == Some(0) {
            return Err(ApiError::field(
                "count",
                "must be at least 1 (leave it out for all)",
            ));
        }
        let count = body.count.unwrap_or(queues::MAX_MOVE);
        if let Some(why) = queues::cannot_move(&call.ctl.store, &q) {
            return Err(ApiError::Conflict(why));
        }
        let m = queues::retry_dead(&call.ctl.store, &q, count).await?;
        tracing::info!(queue = %q, moved = m.moved, "dead letters retried");
        Ok(Json(json!({"moved": m.moved, "remaining": m.remaining})))
    }
    .await;
    call.record(result).await
}

async fn purge_dead(call: Call<PurgeDead>, Path(q): Path<String>) -> Result<Json<Value>, ApiError> {
    let result = async {
        check_queue(&q)?;
        let purged = queues::purge_dead(&call.ctl.store, &q).await?;
        tracing::info!(queue = %q, purged, "dead letters purged");
        Ok(Json(json!({"purged": purged})))
    }
    .await;
    call.record(result).await
}

async fn requeue(
    call: Call<Requeue>,
    Path((q, owner)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let result = async {
        check_queue(&q)?;
        check_id("owner", &owner)?;
        if let Some(why) = queues::cannot_move(&call.ctl.store, &q) {
            return Err(ApiError::Conflict(why));
        }
        if let Some(why) = orphan::owner_alive(&call.ctl, &owner).await? {
            return Err(ApiError::Conflict(format!(
                "{owner} is not orphaned: {why}; nothing was moved"
            )));
        }
        let m = queues::requeue(&call.ctl.store, &q, &owner).await?;
        tracing::info!(queue = %q, owner = %owner, moved = m.moved, "orphaned jobs requeued");
        Ok(Json(json!({"moved": m.moved, "remaining": m.remaining})))
    }
    .await;
    call.record(result).await
}
