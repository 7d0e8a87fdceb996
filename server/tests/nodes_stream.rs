//! The push stream (`/api/agent-office/nodes/stream`) against a real redis-server: an event on
//! connect, one per visible change, none while only time passes, and it ends with the server.

mod common;

use std::time::Duration;

use common::{heartbeat, one_idle_worker, set_beat, Server};

/// Reads a Server-Sent Events response one event at a time.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

/// One event: its name and data.
#[derive(Debug)]
struct Event {
    name: String,
    data: String,
}

impl Events {
    async fn open(server: &Server) -> Self {
        let response = server.get("/api/agent-office/nodes/stream").await;
        assert_eq!(response.status(), 200);
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(header("content-type"), "text/event-stream");
        assert_eq!(header("x-accel-buffering"), "no");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next named event (keep-alive comments skipped), or None when the stream ended.
    async fn next(&mut self) -> Option<Event> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |key: &str| {
                    block
                        .lines()
                        .filter_map(|l| l.strip_prefix(key))
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                let name = field("event:");
                if !name.is_empty() {
                    return Some(Event {
                        name,
                        data: field("data:"),
                    });
                }
            }
            let chunk = self.response.chunk().await.unwrap()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    async fn within(&mut self, wait: Duration) -> Option<Option<Event>> {
        tokio::time::timeout(wait, self.next()).await.ok()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_tells_of_each_visible_change_and_nothing_else() {
    let (_redis, mut c, server) = one_idle_worker("image-render").await;

    let mut events = Events::open(&server).await;
    let first = events.next().await.expect("an event on connect");
    assert_eq!(first.name, "changed");
    let data: serde_json::Value = serde_json::from_str(&first.data).unwrap();
    assert!(data["generated_at"].as_str().unwrap().ends_with('Z'));

    // Ten collector cycles in which only time passes (ages, generated_at): no event.
    assert!(
        events.within(Duration::from_secs(1)).await.is_none(),
        "no event while nothing visible changes"
    );

    set_beat(
        &mut c,
        "image-render",
        &heartbeat("image-render", "render", "busy", 0),
    )
    .await;
    let changed = events
        .within(Duration::from_secs(5))
        .await
        .expect("an event after the state changed")
        .expect("the stream is still open");
    assert_eq!(changed.name, "changed");
    let snap = server.nodes().await;
    assert!(snap
        .workers
        .iter()
        .any(|w| w.name == "image-render" && w.state == Some("busy".into())));

    // The stream does not hold the server open: stopping it ends the stream.
    drop(server);
    let end = events
        .within(Duration::from_secs(5))
        .await
        .expect("the stream ends when the server stops");
    assert!(end.is_none(), "no further event: {end:?}");
}
