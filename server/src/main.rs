//! `agent-office`: parses settings and runs the server or the demo fleet.

use anyhow::Context;
use clap::Parser;
use server::config::{Cli, Command, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Demo(demo)) => {
            server::demo::run(&cli.serve.redis_url, demo.period, server::shutdown_signal()).await
        }
        Some(Command::Sink(sink)) => server::sink::run(sink.addr, server::shutdown_signal()).await,
        Some(Command::Serve) | None => {
            let config = Config::from_args(&cli.serve)?;
            let leptos = leptos::config::get_configuration(None).context(
                "reading the LEPTOS_* settings (outside cargo-leptos set LEPTOS_OUTPUT_NAME, \
                 LEPTOS_SITE_ROOT, LEPTOS_SITE_PKG_DIR and LEPTOS_SITE_ADDR)",
            )?;
            let addr = leptos.leptos_options.site_addr;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            tracing::info!(
                redis = %redact(&config.redis_url),
                workers = config.workers.len(),
                "dashboard on http://{addr}/infra"
            );
            server::run(
                config,
                leptos.leptos_options,
                listener,
                server::shutdown_signal(),
            )
            .await
        }
    }
}

/// The Redis URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            super::redact("redis://:s3cret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(
            super::redact("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
