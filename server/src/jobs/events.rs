//! `GET /api/events` (SPEC §10): job events as the agents publish them on
//! `agent-office:events`, and agent events this server sees in its collector's snapshots —
//! `agent.registered` / `agent.unregistered` when an agent appears in or leaves the registry,
//! `agent.offline` when its beats stop, `agent.online` when they return. Each is one JSON
//! object `{type, time, …ids}` on a `text/event-stream`, named by its type.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::StreamExt;
use serde_json::json;
use shared::jobs::keys;
use shared::time::format_ts;
use tokio::sync::{broadcast, Semaphore};
use tokio_util::sync::CancellationToken;

use super::Jobs;
use crate::collector::AgentsRx;
use crate::error::ApiError;

/// Events a slow reader may fall behind by before it is told it missed some.
pub const BUFFER: usize = 1024;
/// Longest job event relayed (an agent writes far less).
const MAX_EVENT: usize = 4096;
const KEEP_ALIVE: Duration = Duration::from_secs(15);
const RESUBSCRIBE: Duration = Duration::from_secs(2);

/// Relays job events from Redis pub/sub until `stop`, subscribing again after any failure.
pub async fn relay_jobs(
    redis: crate::redis_target::Target,
    tx: broadcast::Sender<Arc<str>>,
    stop: CancellationToken,
) {
    let mut warned = false;
    while !stop.is_cancelled() {
        let sub = async {
            let client = redis
                .client(RESUBSCRIBE)
                .await
                .map_err(crate::redis_conn::RedisCallError::from_call)?;
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(keys::EVENTS).await?;
            Ok::<_, redis::RedisError>(ps)
        };
        let mut ps = match sub.await {
            Ok(ps) => {
                if warned {
                    tracing::info!("job events: subscribed again");
                    warned = false;
                }
                ps
            }
            Err(e) => {
                if !warned {
                    tracing::warn!("job events: cannot subscribe to {}: {e}", keys::EVENTS);
                    warned = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(RESUBSCRIBE) => continue,
                    _ = stop.cancelled() => return,
                }
            }
        };
        let mut messages = ps.on_message();
        loop {
            tokio::select! {
                m = messages.next() => match m {
                    Some(m) => {
                        if let Some(e) = job_event(m.get_payload_bytes()) {
                            // No reader is not an error: the event is simply not wanted now.
                            let _ = tx.send(e);
                        }
                    }
                    None => break,
                },
                _ = stop.cancelled() => return,
            }
        }
    }
}

/// A job event as relayed: a JSON object with a `type` starting `job.`; anything else is not.
fn job_event(payload: &[u8]) -> Option<Arc<str>> {
    if payload.len() > MAX_EVENT {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    v.get("type")?
        .as_str()?
        .starts_with("job.")
        .then(|| v.to_string().into())
}

/// Watches the collector's agents and announces their comings and goings until `stop`. The
/// first snapshot is the starting point, announced as nothing.
pub async fn watch_agents(
    mut agents: AgentsRx,
    tx: broadcast::Sender<Arc<str>>,
    stop: CancellationToken,
) {
    let mut known: Option<HashMap<String, bool>> = None;
    loop {
        let now: HashMap<String, bool> = agents
            .borrow_and_update()
            .agents()
            .into_iter()
            .map(|a| (a.agent_id, a.online))
            .collect();
        if let Some(before) = &known {
            for e in agent_events(before, &now) {
                let _ = tx.send(e);
            }
        }
        known = Some(now);
        tokio::select! {
            changed = agents.changed() => if changed.is_err() { return },
            _ = stop.cancelled() => return,
        }
    }
}

/// What changed between two views of the agents (id → online).
fn agent_events(before: &HashMap<String, bool>, now: &HashMap<String, bool>) -> Vec<Arc<str>> {
    let time = format_ts(Utc::now());
    let mut out = Vec::new();
    let mut say = |kind: &str, id: &str| {
        out.push(
            json!({"type": kind, "time": time, "agent_id": id})
                .to_string()
                .into(),
        );
    };
    let mut ids: Vec<&String> = before.keys().chain(now.keys()).collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        match (before.get(id), now.get(id)) {
            (None, Some(online)) => {
                say("agent.registered", id);
                if *online {
                    say("agent.online", id);
                }
            }
            (Some(_), None) => say("agent.unregistered", id),
            (Some(false), Some(true)) => say("agent.online", id),
            (Some(true), Some(false)) => say("agent.offline", id),
            _ => {}
        }
    }
    out
}

/// The events stream; holds one of the MAX_STREAMS permits while open.
pub async fn stream(
    State(jobs): State<Jobs>,
    State(closing): State<CancellationToken>,
    State(streams): State<Arc<Semaphore>>,
) -> Response {
    let Ok(slot) = streams.try_acquire_owned() else {
        return ApiError::Busy("too many open streams (MAX_STREAMS)".into()).into_response();
    };
    let rx = jobs.events.subscribe();
    let events = futures::stream::unfold((rx, slot), move |(mut rx, slot)| {
        let closing = closing.clone();
        async move {
            let e = tokio::select! {
                e = rx.recv() => e,
                _ = closing.cancelled() => return None,
            };
            let event = match e {
                Ok(json) => {
                    let kind = serde_json::from_str::<serde_json::Value>(&json)
                        .ok()
                        .and_then(|v| v["type"].as_str().map(String::from))
                        .unwrap_or_else(|| "event".into());
                    Event::default().event(kind).data(&*json)
                }
                Err(broadcast::error::RecvError::Lagged(n)) => Event::default()
                    .event("lagged")
                    .data(json!({"missed": n}).to_string()),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((Ok::<_, Infallible>(event), (rx, slot)))
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(pairs: &[(&str, bool)]) -> HashMap<String, bool> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn kinds(events: Vec<Arc<str>>) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                let v: serde_json::Value = serde_json::from_str(e).unwrap();
                format!(
                    "{} {}",
                    v["type"].as_str().unwrap(),
                    v["agent_id"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn agents_coming_going_and_falling_silent_are_announced_once() {
        let a = view(&[("a", true), ("b", true), ("c", false)]);
        let b = view(&[("a", false), ("c", true), ("d", true)]);
        assert_eq!(
            kinds(agent_events(&a, &b)),
            [
                "agent.offline a",
                "agent.unregistered b",
                "agent.online c",
                "agent.registered d",
                "agent.online d"
            ]
        );
        assert!(agent_events(&b, &b).is_empty());
    }

    #[test]
    fn only_job_events_are_relayed() {
        assert!(job_event(br#"{"type":"job.started","job_id":"j"}"#).is_some());
        assert!(job_event(br#"{"type":"agent.online"}"#).is_none());
        assert!(job_event(b"not json").is_none());
        assert!(job_event(&[b' '; 5000]).is_none());
    }
}
