//! Where the page gets its data: from the server's memory during SSR, from the JSON API in the
//! browser. Either way the same types from `shared`.

use serde::de::DeserializeOwned;
use shared::alerts::AlertsView;
use shared::NodesSnapshot;

/// The server's handle on its latest snapshot, provided as Leptos context for SSR.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct NodesSource(pub std::sync::Arc<dyn Fn() -> NodesSnapshot + Send + Sync>);

/// The server's handle on its recent alerts, provided as Leptos context for SSR.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct AlertsSource(pub std::sync::Arc<dyn Fn() -> AlertsView + Send + Sync>);

/// The current snapshot. On the server this reads memory, never Redis.
pub fn load_nodes() -> impl std::future::Future<Output = Result<NodesSnapshot, String>> {
    #[cfg(feature = "ssr")]
    let local = leptos::prelude::use_context::<NodesSource>().map(|s| (s.0)());
    #[cfg(not(feature = "ssr"))]
    let local = None;
    load(local, "/api/agent-office/nodes")
}

/// The recent alerts.
pub fn load_alerts() -> impl std::future::Future<Output = Result<AlertsView, String>> {
    #[cfg(feature = "ssr")]
    let local = leptos::prelude::use_context::<AlertsSource>().map(|s| (s.0)());
    #[cfg(not(feature = "ssr"))]
    let local = None;
    load(local, "/api/agent-office/alerts")
}

async fn load<T: DeserializeOwned>(local: Option<T>, url: &'static str) -> Result<T, String> {
    if let Some(value) = local {
        return Ok(value);
    }
    // The browser's fetch future is not Send; it only ever runs on the one browser thread.
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        send_wrapper::SendWrapper::new(fetch_json(url)).await
    }
    #[cfg(not(all(feature = "hydrate", not(feature = "ssr"))))]
    {
        Err(format!("{url}: no data source in this build"))
    }
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
async fn fetch_json<T: DeserializeOwned>(url: &str) -> Result<T, String> {
    let response = gloo_net::http::Request::get(url)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.ok() {
        return Err(format!("HTTP {}", response.status()));
    }
    response.json().await.map_err(|e| e.to_string())
}
