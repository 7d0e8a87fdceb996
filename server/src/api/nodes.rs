//! `GET /api/agent-office/nodes` (Contract 2), answered from the collector's latest snapshot,
//! and `GET /api/agent-office/nodes/stream`, which tells a page when to ask again.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures::Stream;
use shared::fleet::NodesQuery;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

use crate::collector::{gzip as gzip_body, Published, SnapshotRx};
use crate::state::AppState;

/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/agent-office/nodes", get(nodes))
        .route("/api/agent-office/nodes/stream", get(stream))
}

/// Server-Sent Events: a `changed` event on connect and whenever what the dashboard shows
/// changes (`NodesSnapshot::digest`; ages alone do not count), with the snapshot's
/// `generated_at` as data. The page then fetches `/nodes`, gzipped like any poll, so the stream
/// stays a few bytes a change however large the fleet. Ends when the server shuts down.
async fn stream(
    State(rx): State<SnapshotRx>,
    State(closing): State<CancellationToken>,
    State(streams): State<Arc<Semaphore>>,
) -> Response {
    // At the cap a clear 503: the page falls back to polling, the rest of the API is untouched.
    let Ok(slot) = streams.try_acquire_owned() else {
        return ApiError::Busy(
            "too many open push streams (MAX_STREAMS); poll /api/agent-office/nodes instead".into(),
        )
        .into_response();
    };
    let events = changes(rx, closing, slot);
    (
        // nginx would otherwise buffer the stream (deploy/nginx.conf also turns buffering off).
        [(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        )],
        Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)),
    )
        .into_response()
}

/// The stream holds `slot` (its MAX_STREAMS permit) until it ends.
fn changes(
    rx: SnapshotRx,
    closing: CancellationToken,
    slot: OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((rx, None::<u64>, slot), move |(mut rx, sent, slot)| {
        let closing = closing.clone();
        async move {
            loop {
                // Out of the channel's lock first: the first stream to ask computes the digest.
                // The snapshot is let go before waiting, so the collector can fill it again.
                let (digest, at) = {
                    let p = rx.borrow_and_update().clone();
                    (p.digest(), p.snapshot.generated_at.clone())
                };
                if sent != Some(digest) {
                    let data = serde_json::json!({ "generated_at": at }).to_string();
                    let event = Event::default().event("changed").data(data);
                    return Some((Ok(event), (rx, Some(digest), slot)));
                }
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                    _ = closing.cancelled() => return None,
                }
            }
        }
    })
}

/// The whole snapshot (Contract 2), or with query parameters (`status`, `kind`, `q`, `group`,
/// `order`, `limit`, `offset`; see `shared::fleet`) the matching workers with a `page` block.
/// Every answer carries the fleet's `summary`.
async fn nodes(
    State(rx): State<SnapshotRx>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let published = rx.borrow().clone();
    let gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(accepts_gzip);
    let body = if params.is_empty() {
        whole(published, gzip).await?
    } else {
        let query = NodesQuery::from_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| ApiError::field("query", e.to_string()))?;
        // Filtering and serialising up to a whole fleet is CPU work: off the async threads.
        tokio::task::spawn_blocking(move || {
            // Strings, numbers and bools: serialising cannot fail.
            let json = serde_json::to_vec(&query.apply(&published.snapshot)).unwrap_or_default();
            if gzip {
                Bytes::from(gzip_body(&json))
            } else {
                Bytes::from(json)
            }
        })
        .await
        .map_err(|e| ApiError::Internal(format!("filtering /nodes: {e}")))?
    };
    Ok(respond(body, gzip))
}

/// The pre-made body of the whole snapshot; the first request of a cycle makes it.
async fn whole(published: Arc<Published>, gzip: bool) -> Result<Bytes, ApiError> {
    let pick = move |p: &Published| if gzip { p.gzip() } else { p.json() };
    if published.is_encoded() {
        return Ok(pick(&published));
    }
    tokio::task::spawn_blocking(move || pick(&published))
        .await
        .map_err(|e| ApiError::Internal(format!("encoding /nodes: {e}")))
}

fn respond(body: Bytes, gzip: bool) -> Response {
    let mut response = body.into_response();
    if gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// Whether an `Accept-Encoding` value admits gzip (`gzip` or `*`, with a non-zero q).
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let q_zero = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_is_read_like_a_browser_sends_it() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("br, deflate"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip("xgzip"));
    }
}
