//! `agent-office sink`: a local stand-in for the Telegram Bot API and for webhooks that logs
//! every message it receives and answers like Telegram does — for trying alerts without a bot.

use std::net::SocketAddr;

use anyhow::Context;
use axum::body::Bytes;
use axum::http::Uri;
use axum::Router;

/// Serves on `addr` until `shutdown`.
pub async fn run(
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new().fallback(|uri: Uri, body: Bytes| async move {
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let text = json["text"].as_str().unwrap_or("(no text)");
        // Telegram puts the bot token in the path: keep it out of the log.
        let path = match uri
            .path()
            .strip_prefix("/bot")
            .and_then(|p| p.split_once('/'))
        {
            Some((_, method)) => format!("/bot***/{method}"),
            None => uri.path().to_string(),
        };
        tracing::info!(%path, "message received:\n{text}");
        axum::Json(serde_json::json!({ "ok": true, "result": {} }))
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!("alert sink on http://{addr}: use it as TELEGRAM_API_BASE or ALERT_WEBHOOK_URL");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the sink")
}
