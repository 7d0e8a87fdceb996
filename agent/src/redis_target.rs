//! Where Redis is (SPEC §12): `redis.host`/`port`, the primary the sentinels of
//! `redis.sentinels` name under `redis.master`, or the Redis Cluster of
//! `redis.cluster_nodes`. With Sentinel every new connection asks again: every Redis failure
//! of the agent drops its connection, so after a failover the next one goes to the new
//! primary, where the jobs in hand are settled. On a Cluster each connection is a cluster
//! connection that routes every command by its key's slot ([`Conn`]).

use std::sync::Arc;
use std::time::Duration;

use redis::{ConnectionAddr, ErrorKind, IntoConnectionInfo, RedisError, RedisResult};

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

/// The sentinels, the master's name, and the client of the configured address whose
/// password and TLS the primary's connections take (its host and port are replaced).
pub struct Sentinels {
    pub addrs: Vec<(String, u16)>,
    pub master: String,
    pub template: redis::Client,
    /// The sentinels' own password (`redis.sentinel_password`), when they ask for one.
    pub password: Option<String>,
}

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

impl Sentinels {
    async fn primary(&self, timeout: Duration) -> RedisResult<redis::Client> {
        let (mut answered, mut refused) = (false, false);
        for (host, port) in &self.addrs {
            match ask(host, *port, &self.master, self.password.as_deref(), timeout).await {
                Ok(Some((h, p))) => return self.client_for(h, p),
                Ok(None) => answered = true,
                Err(e) => {
                    let text = e.to_string();
                    refused |= e.kind() == ErrorKind::AuthenticationFailed
                        || text.contains("NOAUTH")
                        || text.contains("WRONGPASS")
                        || text.contains("invalid password");
                    tracing::debug!(sentinel = %format!("{host}:{port}"), "no answer: {e}")
                }
            }
        }
        let list: Vec<String> = self.addrs.iter().map(|(h, p)| format!("{h}:{p}")).collect();
        let why = if answered {
            format!(
                "the sentinels ({}) know no primary named {:?} (redis.master)",
                list.join(","),
                self.master
            )
        } else if refused {
            format!(
                "the sentinels ({}) refused to answer without the right password: set \
                 redis.sentinel_password (REDIS_SENTINEL_PASSWORD) to their requirepass",
                list.join(",")
            )
        } else {
            format!(
                "no sentinel of redis.sentinels ({}) answered",
                list.join(",")
            )
        };
        Err(RedisError::from((ErrorKind::Io, "sentinel", why)))
    }

    fn client_for(&self, host: String, port: u16) -> RedisResult<redis::Client> {
        let info = self.template.get_connection_info().clone();
        let addr = match info.addr().clone() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                tls_params,
            },
            _ => ConnectionAddr::Tcp(host, port),
        };
        redis::Client::open(info.set_addr(addr))
    }
}

/// `SENTINEL GET-MASTER-ADDR-BY-NAME` of one sentinel (`None`: it knows no such master).
async fn ask(
    host: &str,
    port: u16,
    master: &str,
    password: Option<&str>,
    timeout: Duration,
) -> RedisResult<Option<(String, u16)>> {
    let mut info = ConnectionAddr::Tcp(host.to_string(), port).into_connection_info()?;
    if let Some(p) = password {
        info = info.set_redis_settings(redis::RedisConnectionInfo::default().set_password(p));
    }
    let client = redis::Client::open(info)?;
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let mut c = client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?;
    redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(master)
        .query_async(&mut c)
        .await
}
