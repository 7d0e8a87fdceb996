//! `pipeline-agent [--config FILE] [--check]`: see the README's "Pipeline agent".

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use pipeline_agent::config::{self, Config, LogFormat};

#[derive(Parser)]
#[command(
    version,
    about = "Runs reliable-queue pipelines and takes commands from Agent Office"
)]
struct Args {
    /// The agent's YAML config (default: $CONFIG_DIR/agent.yaml).
    #[arg(long, env = "AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Check the config (file and environment) and exit.
    #[arg(long)]
    check: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env = |k: &str| std::env::var(k).ok();
    let dir = config::config_dir(env);
    // Only a file named on the command line must exist: the default one may be absent.
    let optional = args.config.is_none();
    let path = args.config.unwrap_or_else(|| dir.join("agent.yaml"));
    let config = Config::load(&path, optional, dir, env).context("the agent's configuration")?;
    if args.check {
        eprintln!(
            "{}: ok ({} pipelines)",
            path.display(),
            config.pipelines.len()
        );
        return Ok(());
    }
    init_tracing(&config);
    pipeline_agent::run(config, shutdown_signal()).await
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.logging.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.logging.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
