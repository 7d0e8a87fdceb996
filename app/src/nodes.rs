//! Where the page gets its data: from the server's memory during SSR, from the JSON API in the
//! browser. Either way the same types from `shared`.

use serde::de::DeserializeOwned;
use shared::alerts::AlertsView;
use shared::fleet::NodesQuery;
use shared::NodesSnapshot;

use crate::error::LoadError;

const NODES_URL: &str = "/api/agent-office/nodes";
const ALERTS_URL: &str = "/api/agent-office/alerts";
#[cfg(browser)]
const STREAM_URL: &str = "/api/agent-office/nodes/stream";

/// The server's handle on its latest snapshot, provided as Leptos context for SSR (shared, not
/// copied: a page renders one window of a fleet that may hold 100,000 workers).
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct NodesSource(pub std::sync::Arc<dyn Fn() -> std::sync::Arc<NodesSnapshot> + Send + Sync>);

/// The server's handle on its recent alerts, provided as Leptos context for SSR.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct AlertsSource(pub std::sync::Arc<dyn Fn() -> AlertsView + Send + Sync>);

/// The current snapshot, filtered and paged by `query`. On the server this reads memory,
/// never Redis.
pub fn load_nodes(
    query: NodesQuery,
) -> impl std::future::Future<Output = Result<NodesSnapshot, LoadError>> {
    #[cfg(feature = "ssr")]
    let local = leptos::prelude::use_context::<NodesSource>().map(|s| query.apply(&(s.0)()));
    #[cfg(not(feature = "ssr"))]
    let local = None;
    load(local, nodes_url(&query))
}

/// `/api/agent-office/nodes` with the query's parameters.
pub fn nodes_url(query: &NodesQuery) -> String {
    match query.to_query_string() {
        q if q.is_empty() => NODES_URL.to_string(),
        q => format!("{NODES_URL}?{q}"),
    }
}

/// The recent alerts.
pub fn load_alerts() -> impl std::future::Future<Output = Result<AlertsView, LoadError>> {
    #[cfg(feature = "ssr")]
    let local = leptos::prelude::use_context::<AlertsSource>().map(|s| (s.0)());
    #[cfg(not(feature = "ssr"))]
    let local = None;
    load(local, ALERTS_URL.to_string())
}

/// `local` when the server gave it (SSR), else the JSON of `url` fetched by the browser.
pub(crate) async fn load<T: DeserializeOwned>(
    local: Option<T>,
    url: String,
) -> Result<T, LoadError> {
    if let Some(value) = local {
        return Ok(value);
    }
    // The browser's fetch future is not Send; it only ever runs on the one browser thread.
    #[cfg(browser)]
    {
        send_wrapper::SendWrapper::new(fetch_json(&url, None)).await
    }
    #[cfg(not(browser))]
    {
        Err(LoadError::NoSource { url })
    }
}

/// The browser's polling requests: cancelled through `signal` when the page goes away.
#[cfg(browser)]
pub mod browser {
    use super::*;
    use web_sys::AbortSignal;

    pub async fn nodes(
        signal: &AbortSignal,
        query: &NodesQuery,
    ) -> Result<NodesSnapshot, LoadError> {
        fetch_json(&nodes_url(query), Some(signal)).await
    }

    pub async fn alerts(signal: &AbortSignal) -> Result<AlertsView, LoadError> {
        fetch_json(ALERTS_URL, Some(signal)).await
    }

    /// The server's push stream: each `changed` event puts a `()` into the channel. The
    /// browser reconnects by itself when the stream drops; dropping this closes it.
    pub struct ChangeStream {
        source: Option<web_sys::EventSource>,
        _on_change: Option<wasm_bindgen::closure::Closure<dyn FnMut(web_sys::Event)>>,
    }

    impl ChangeStream {
        pub fn open(push: futures::channel::mpsc::UnboundedSender<()>) -> Self {
            use wasm_bindgen::JsCast;

            let Ok(source) = web_sys::EventSource::new(STREAM_URL) else {
                // No EventSource: polling alone.
                return Self {
                    source: None,
                    _on_change: None,
                };
            };
            let on_change = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::Event)>::new(
                move |_: web_sys::Event| {
                    let _ = push.unbounded_send(());
                },
            );
            let _ = source
                .add_event_listener_with_callback("changed", on_change.as_ref().unchecked_ref());
            Self {
                source: Some(source),
                _on_change: Some(on_change),
            }
        }
    }

    impl Drop for ChangeStream {
        fn drop(&mut self) {
            if let Some(source) = &self.source {
                source.close();
            }
        }
    }
}

#[cfg(browser)]
pub(crate) async fn fetch_json<T: DeserializeOwned>(
    url: &str,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<T, LoadError> {
    let response = gloo_net::http::Request::get(url)
        .abort_signal(signal)
        .send()
        .await
        .map_err(|e| LoadError::Network {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    if !response.ok() {
        return Err(LoadError::Status {
            url: url.to_string(),
            status: response.status(),
        });
    }
    response.json().await.map_err(|e| LoadError::Decode {
        url: url.to_string(),
        reason: e.to_string(),
    })
}
