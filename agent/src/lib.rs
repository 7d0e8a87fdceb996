//! `pipeline-agent`: runs reliable-queue pipelines on a worker host, beats for them
//! (Contract 1), and takes commands from the Agent Office control plane (Contract 3) over
//! Redis or REST (SPEC §8).

pub mod agent;
pub mod api;
pub mod commands;
pub mod config;
pub mod handler;
pub mod history;
pub mod link;
pub mod metrics;
pub mod mode;
pub mod pipeline;
pub mod queue;
pub mod redis_target;
pub mod state;
pub mod system;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

pub use config::Config;

/// After the grace, handlers are killed and their jobs given back; this long at most.
const ABORT_WAIT: Duration = Duration::from_secs(10);

/// Runs the agent until `shutdown` resolves or a `shutdown` command arrives; then stops
/// taking jobs, lets jobs in hand finish within the grace, gives the rest back, and returns.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let id = state::agent_id(config.agent.id.as_deref(), &config.config_dir)?;
    std::fs::create_dir_all(&config.config_dir)
        .with_context(|| format!("cannot create CONFIG_DIR {}", config.config_dir.display()))?;
    let ledger = state::Ledger::open(&config.config_dir)?;
    let listen = config.api.listen;
    let pipelines = config.pipelines.clone();
    refuse_a_wrong_redis(&config).await?;
    let agent = agent::Agent::new(id, config)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (api.listen)"))?;
    tracing::info!(agent_id = %agent.id, api = %listener.local_addr().unwrap_or(listen), pipelines = pipelines.len(), "pipeline-agent started");

    let commands = Arc::new(commands::Commands::new(agent.clone(), ledger));
    let link = link::Link::new(agent.clone(), commands.clone())?;
    for p in pipelines {
        agent.start_pipeline(p);
    }
    tokio::spawn(agent::beat_workers(agent.clone()));
    tokio::spawn(link.run());
    let api = axum::serve(listener, api::router(agent.clone()));
    let exit = agent.exit.clone();
    let api = tokio::spawn(async move {
        if let Err(e) = api.with_graceful_shutdown(exit.cancelled_owned()).await {
            tracing::error!(error = %e, "the local API stopped serving");
        }
    });

    tokio::select! {
        _ = shutdown => tracing::info!("shutdown signal: finishing jobs in hand"),
        _ = agent.stop.cancelled() => tracing::info!("shutdown command: finishing jobs in hand"),
    }
    agent.stop.cancel();
    agent.beat_now.notify_one();
    let grace = agent.config.shutdown_grace();
    if !all_finished(&agent, grace).await {
        tracing::warn!(
            ?grace,
            "jobs still in hand after the grace: killing their handlers, jobs go back to the queue"
        );
        agent.abort.cancel();
        all_finished(&agent, ABORT_WAIT).await;
    }
    agent.exit.cancel();
    if let Err(e) = api.await {
        tracing::error!(error = %e, "the local API task ended abnormally");
    }
    tracing::info!("pipeline-agent stopped");
    Ok(())
}

/// Settings that cannot work stop the agent at start, saying which one: a server certificate
/// that does not verify, a master name the sentinels do not know, a seed of
/// `redis.cluster_nodes` that is no Cluster node, a Cluster node given as `redis.host`. Redis
/// merely not up yet is waited out as always.
async fn refuse_a_wrong_redis(config: &Config) -> anyhow::Result<()> {
    const WAIT: Duration = Duration::from_secs(3);
    let target = config.redis_target()?;
    if config.redis.master.is_some() {
        // Sentinel: a master name the sentinels do not know is a setting to fix.
        match target.client(WAIT).await {
            Err(e)
                if e.to_string().contains("know no primary named")
                    || e.to_string().contains("redis.sentinel_password") =>
            {
                anyhow::bail!("{e}")
            }
            Err(e) => tracing::warn!("Redis is not reachable yet: {e}"),
            Ok(_) => {}
        }
    }
    let (cluster, sentinel) = (config.on_cluster(), config.redis.master.is_some());
    let place = if cluster {
        format!(
            "redis.cluster_nodes ({})",
            config.redis.cluster_nodes.join(",")
        )
    } else {
        format!("redis {}:{}", config.redis.host, config.redis.port)
    };
    let mut conn = match target.connect(WAIT).await {
        Ok(c) => c,
        Err(e) if e.to_string().to_lowercase().contains("certificate") => anyhow::bail!(
            "{place}: the Redis server's TLS certificate did not verify ({e}); set \
             redis.ca_file (REDIS_CA_FILE) to the PEM of the CA that signed it"
        ),
        Err(e) if cluster && e.to_string().contains("cluster support disabled") => anyhow::bail!(
            "{place}: a seed is a Redis without cluster mode ({e}); give the Cluster's nodes, \
             or redis.host and redis.port for one Redis"
        ),
        Err(e) => {
            tracing::warn!("Redis is not reachable yet ({place}): {e}");
            return Ok(());
        }
    };
    if !cluster && !sentinel {
        let info: String = redis::cmd("INFO")
            .arg("cluster")
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if info.contains("cluster_enabled:1") {
            anyhow::bail!(
                "{place} is a Redis Cluster node: set redis.cluster_nodes \
                 (REDIS_CLUSTER_NODES) to the Cluster's nodes instead"
            );
        }
    }
    Ok(())
}

async fn all_finished(agent: &agent::Agent, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    for p in agent.all_pipelines() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !p.finished(left).await {
            return false;
        }
    }
    true
}
