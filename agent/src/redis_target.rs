//! Where Redis is (SPEC §12): `redis.host`/`port`, the primary the sentinels of
//! `redis.sentinels` name under `redis.master`, or the Redis Cluster of
//! `redis.cluster_nodes`. With Sentinel every new connection asks again: every Redis failure
//! of the agent drops its connection, so after a failover the next one goes to the new
//! primary, where the jobs in hand are settled. On a Cluster each connection is a cluster
//! connection that routes every command by its key's slot ([`Conn`]).

use std::sync::Arc;
use std::time::Duration;

use redis::{ErrorKind, RedisError, RedisResult};

pub use redis_link::Conn;

#[derive(Clone)]
pub enum Target {
    Direct(Box<redis::Client>),
    Sentinel(Arc<Sentinels>),
    Cluster(Arc<Cluster>),
}

/// A Redis Cluster: its client (which finds every primary from the seeds) and a plain client
/// per seed node for pub/sub (a Cluster carries a message published on any node to all).
pub struct Cluster {
    pub client: redis::cluster::ClusterClient,
    pub nodes: Vec<redis::Client>,
    /// The seeds as written (`host:port`), for messages.
    pub seeds: Vec<String>,
}

pub use redis_link::sentinel::Sentinels;

/// What the agent's messages call the Sentinel settings.
pub const SENTINEL_NAMES: redis_link::sentinel::Names = redis_link::sentinel::Names {
    sentinels: "redis.sentinels",
    master: "redis.master",
    password: "redis.sentinel_password (REDIS_SENTINEL_PASSWORD)",
};

impl Target {
    /// A client for the Redis to use now; on a Cluster, the first seed node that answers
    /// (for pub/sub: commands go through [`Target::connect`]).
    pub async fn client(&self, timeout: Duration) -> RedisResult<redis::Client> {
        match self {
            Self::Direct(c) => Ok((**c).clone()),
            Self::Sentinel(s) => s.primary(timeout).await,
            Self::Cluster(c) => c.a_node(timeout).await,
        }
    }

    /// A new connection of its own (a blocking BLMOVE holds the connection it runs on).
    pub async fn connect(&self, timeout: Duration) -> RedisResult<Conn> {
        if let Self::Cluster(c) = self {
            let cfg = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            return Ok(Conn::Cluster(
                c.client.get_async_connection_with_config(cfg).await?,
            ));
        }
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let client = self.client(timeout).await?;
        Ok(Conn::One(
            client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await?,
        ))
    }
}

impl Cluster {
    async fn a_node(&self, timeout: Duration) -> RedisResult<redis::Client> {
        for node in &self.nodes {
            let ping = async {
                let mut c = node.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<()>(&mut c).await
            };
            if let Ok(Ok(())) = tokio::time::timeout(timeout, ping).await {
                return Ok(node.clone());
            }
        }
        Err(RedisError::from((
            ErrorKind::Io,
            "cluster",
            format!(
                "no node of redis.cluster_nodes ({}) answered",
                self.seeds.join(",")
            ),
        )))
    }
}
