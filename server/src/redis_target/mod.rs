//! Where Redis is (SPEC §12): one address (`REDIS_URL`), the primary a set of Sentinels
//! names (`REDIS_SENTINELS` + `REDIS_SENTINEL_MASTER`), or the primaries of a Redis Cluster
//! (`REDIS_CLUSTER_NODES`). With Sentinel the primary is asked for on every new connection — at
//! start, and after any connection error or `READONLY` reply (a primary demoted to replica),
//! which drop the connection — so a failover is followed without a restart (redis-rs's own
//! `SentinelClient` does not follow `+switch-master`).
//!
//! On a Cluster the collector (`collector::cluster`) and discovery reach every primary, the
//! parts whose keys share one hash tag (alerts, the agents' reads, the inbox's blocking
//! read) connect to that slot's primary ([`Target::connect_for`]), and the acting half
//! (control plane, jobs, schedules, trends, the demo) takes a cluster connection that routes each call
//! by its key ([`Target::connect_any`], `redis_link::Conn`).

mod sentinel;
mod slots;

use std::sync::Arc;
use std::time::Duration;

use redis::ConnectionAddr;

use crate::redis_conn::RedisCallError;
pub use redis_link::Conn;
pub use sentinel::{
    parse_sentinels, with_addr, SentinelSettings, Sentinels, NAMES as SENTINEL_NAMES,
};
pub use slots::{Addr, ClusterError, SlotMap};

#[derive(Clone)]
pub enum Target {
    Direct(Box<redis::Client>),
    Sentinel(Arc<Sentinels>),
    Cluster(Arc<ClusterNodes>),
}

/// `REDIS_CLUSTER_NODES` (any of them answers for the whole Cluster), the client of
/// `REDIS_URL` whose password, database and TLS every node's connection takes, and
/// redis-rs's cluster client made of both.
pub struct ClusterNodes {
    pub seeds: Vec<Addr>,
    pub template: redis::Client,
    pub client: redis::cluster::ClusterClient,
}

impl ClusterNodes {
    /// A client for the primary that serves `slot` now (the slot map read again).
    async fn client_for_slot(
        &self,
        slot: u16,
        timeout: Duration,
    ) -> Result<redis::Client, ClusterError> {
        let map = SlotMap::fetch(&self.seeds, &self.template, timeout).await?;
        let (host, port) = map
            .owner(slot)
            .and_then(|i| map.primaries.get(i))
            .cloned()
            .ok_or(ClusterError::BadSlots("a slot served by no primary"))?;
        Ok(with_addr(&self.template, host, port).map_err(RedisCallError::from)?)
    }

    /// `ca`: the PEM of `REDIS_CA_FILE`, which the nodes the Cluster names are verified
    /// against too.
    pub fn new(
        seeds: Vec<Addr>,
        template: redis::Client,
        ca: Option<&[u8]>,
    ) -> redis::RedisResult<Self> {
        let infos = seeds
            .iter()
            .map(|(h, p)| {
                Ok(with_addr(&template, h.clone(), *p)?
                    .get_connection_info()
                    .clone())
            })
            .collect::<redis::RedisResult<Vec<_>>>()?;
        // Callers retry with their own backoff: the client's own retries stay few.
        let mut builder = redis::cluster::ClusterClientBuilder::new(infos).retries(2);
        if let Some(pem) = ca {
            builder = builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            });
        }
        Ok(Self {
            client: builder.build()?,
            seeds,
            template,
        })
    }
}

impl From<redis::Client> for Target {
    fn from(c: redis::Client) -> Self {
        Self::Direct(Box::new(c))
    }
}

impl Target {
    /// A client for the Redis to use now: the one address, the primary the first sentinel
    /// that knows `master` names, or on a Cluster the primary of slot 0 (pub/sub: a Cluster
    /// carries a message published on any node to every node).
    pub async fn client(&self, timeout: Duration) -> Result<redis::Client, RedisCallError> {
        match self {
            Self::Direct(c) => Ok((**c).clone()),
            Self::Sentinel(s) => Ok(s.primary(timeout).await?),
            Self::Cluster(nodes) => Ok(nodes.client_for_slot(0, timeout).await?),
        }
    }

    /// A connection that reaches every key: the one Redis, or on a Cluster a connection that
    /// routes each command by its key's slot (and a pipeline by slot, `Conn::query`).
    pub async fn connect_any(&self, timeout: Duration) -> Result<Conn, RedisCallError> {
        let Self::Cluster(nodes) = self else {
            return Ok(Conn::One(self.connect(timeout).await?));
        };
        let cfg = redis::cluster::ClusterConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout);
        let c = crate::redis_conn::with_timeout(
            timeout,
            nodes.client.get_async_connection_with_config(cfg),
        )
        .await?;
        Ok(Conn::Cluster(c))
    }

    /// A connection to the Redis that holds `key`: the one Redis, or the primary of the
    /// Cluster that serves its slot now (for a family of keys sharing a hash tag, such as the
    /// control plane's `{ctl}`). A `MOVED` reply on it later counts as broken ([`is_broken`]).
    pub async fn connect_for(
        &self,
        key: &str,
        timeout: Duration,
    ) -> Result<redis::aio::MultiplexedConnection, ClusterError> {
        let Self::Cluster(nodes) = self else {
            return Ok(self.connect(timeout).await?);
        };
        let slot = shared::slot::key_slot(key.as_bytes());
        let client = nodes.client_for_slot(slot, timeout).await?;
        Ok(crate::redis_conn::connect(&client, timeout).await?)
    }

    /// A connection to each Redis that holds keys: the one Redis, or every primary of the
    /// Cluster (its slot map read now).
    pub async fn connect_each(
        &self,
        timeout: Duration,
    ) -> Result<Vec<redis::aio::MultiplexedConnection>, ClusterError> {
        let Self::Cluster(nodes) = self else {
            return Ok(vec![self.connect(timeout).await?]);
        };
        let map = SlotMap::fetch(&nodes.seeds, &nodes.template, timeout).await?;
        let mut conns = Vec::with_capacity(map.primaries.len());
        for (host, port) in map.primaries {
            let client = with_addr(&nodes.template, host, port).map_err(RedisCallError::from)?;
            conns.push(crate::redis_conn::connect(&client, timeout).await?);
        }
        Ok(conns)
    }

    /// A connection to the Redis this names now (with Sentinel: the primary, asked again).
    pub async fn connect(
        &self,
        timeout: Duration,
    ) -> Result<redis::aio::MultiplexedConnection, RedisCallError> {
        crate::redis_conn::connect(&self.client(timeout).await?, timeout).await
    }

    /// What the logs call it (never a password).
    pub fn describe(&self) -> String {
        match self {
            Self::Direct(c) => match c.get_connection_info().addr() {
                ConnectionAddr::Tcp(h, p)
                | ConnectionAddr::TcpTls {
                    host: h, port: p, ..
                } => {
                    format!("{h}:{p}")
                }
                ConnectionAddr::Unix(path) => path.display().to_string(),
                _ => "redis".to_string(),
            },
            Self::Sentinel(s) => format!("master {:?} of sentinels {}", s.master, s.list()),
            Self::Cluster(c) => format!("the Redis Cluster of {}", redis_link::addr_list(&c.seeds)),
        }
    }
}

/// `host:port,host:port` of `setting` (a port is required: a sentinel's or a Cluster node's is
/// not always Redis's 6379).
pub fn parse_addrs(list: &str, setting: &str) -> anyhow::Result<Vec<Addr>> {
    let addrs: Vec<Addr> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (h, p) = s
                .rsplit_once(':')
                .ok_or_else(|| anyhow::anyhow!("{setting}: {s:?} is not host:port"))?;
            let port = p
                .parse::<u16>()
                .map_err(|_| anyhow::anyhow!("{setting}: {s:?} has no valid port"))?;
            anyhow::ensure!(!h.is_empty(), "{setting}: {s:?} has no host");
            Ok((h.trim_matches(['[', ']']).to_string(), port))
        })
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(!addrs.is_empty(), "{setting} is empty");
    Ok(addrs)
}

/// A reply that says this connection must go: Redis gone, or a primary demoted to replica.
pub fn is_broken(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(
                redis::ServerErrorKind::ReadOnly
                    | redis::ServerErrorKind::Moved
                    | redis::ServerErrorKind::ClusterDown
            )
        )
}
