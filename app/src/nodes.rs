//! Where the page gets the nodes snapshot: from the collector on the server, from
//! `GET /api/agent-office/nodes` in the browser.

use shared::NodesSnapshot;

/// The server's handle on its latest snapshot, provided as Leptos context for SSR.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct NodesSource(pub std::sync::Arc<dyn Fn() -> NodesSnapshot + Send + Sync>);

/// The current snapshot. On the server this reads memory, never Redis.
pub fn load_nodes() -> impl std::future::Future<Output = Result<NodesSnapshot, String>> {
    #[cfg(feature = "ssr")]
    let source = leptos::prelude::use_context::<NodesSource>();
    async move {
        #[cfg(feature = "ssr")]
        {
            source
                .map(|s| (s.0)())
                .ok_or_else(|| "no snapshot source in context".to_string())
        }
        // The browser's fetch future is not Send; it only ever runs on the one browser thread.
        #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
        {
            send_wrapper::SendWrapper::new(fetch_nodes()).await
        }
        #[cfg(not(any(feature = "hydrate", feature = "ssr")))]
        {
            Err("built without ssr or hydrate".to_string())
        }
    }
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
async fn fetch_nodes() -> Result<NodesSnapshot, String> {
    let response = gloo_net::http::Request::get("/api/agent-office/nodes")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.ok() {
        return Err(format!("HTTP {}", response.status()));
    }
    response.json().await.map_err(|e| e.to_string())
}
