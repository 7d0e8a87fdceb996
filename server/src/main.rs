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
            // The server's own settings: the same Redis (one, Sentinel or Cluster) and the
            // same worker registry, whose queues the demo fills.
            let config = Config::from_args(&cli.serve)?;
            server::demo::run(
                config.redis_target()?,
                &config.workers,
                demo.period,
                demo.simulate.as_deref(),
                server::shutdown_signal(),
            )
            .await
        }
        Some(Command::Sink(sink)) => server::sink::run(sink.addr, server::shutdown_signal()).await,
        Some(Command::Serve) | None => {
            server::limits::tune_allocator();
            // Before the defaults are read from it: the connection caps follow this limit.
            let nofile = server::limits::raise_nofile();
            let config = Config::from_args(&cli.serve)?;
            let leptos = leptos::config::get_configuration(None).context(
                "reading the LEPTOS_* settings (outside cargo-leptos set LEPTOS_OUTPUT_NAME, \
                 LEPTOS_SITE_ROOT, LEPTOS_SITE_PKG_DIR and LEPTOS_SITE_ADDR)",
            )?;
            let mut leptos_options = leptos.leptos_options;
            if !cli.serve.api_only {
                server::bundle::check(&mut leptos_options).context("checking the site bundle")?;
            }
            let addr = leptos_options.site_addr;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            tracing::info!(
                redis = %server::config::redact(&config.redis_url),
                workers = config.workers.len(),
                nofile,
                max_connections = config.limits.max_connections,
                max_streams = config.limits.max_streams,
                "dashboard on http://{addr}/infra"
            );
            server::run(config, leptos_options, listener, server::shutdown_signal()).await
        }
    }
}
