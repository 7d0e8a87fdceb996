//! Where Redis is (SPEC §12): one address (`REDIS_URL`), the primary a set of Sentinels
//! names (`REDIS_SENTINELS` + `REDIS_SENTINEL_MASTER`), or the primaries of a Redis Cluster
//! (`REDIS_CLUSTER_NODES`). With Sentinel the primary is asked for on every new connection — at
//! start, and after any connection error or `READONLY` reply (a primary demoted to replica),
//! which drop the connection — so a failover is followed without a restart (redis-rs's own
//! `SentinelClient` does not follow `+switch-master`).
//!
//! On a Cluster the collector (`collector::cluster`) and discovery reach every primary, and the
//! parts whose keys share one hash tag (alerts, trends, the agents' reads) connect to that
//! slot's primary ([`Target::connect_for`]); the parts that still need one Redis (control plane,
//! jobs, schedules) are told so by [`Target::connect`].

mod sentinel;
mod slots;

use std::sync::Arc;
use std::time::Duration;

use redis::ConnectionAddr;

use crate::redis_conn::RedisCallError;
pub use sentinel::{parse_sentinels, SentinelError, SentinelSettings, Sentinels};
pub use slots::{Addr, ClusterError, SlotMap};

#[derive(Clone)]
pub enum Target {
    Direct(Box<redis::Client>),
    Sentinel(Arc<Sentinels>),
    Cluster(Arc<ClusterNodes>),
}

/// `REDIS_CLUSTER_NODES` (any of them answers for the whole Cluster) and the client of
/// `REDIS_URL` whose password, database and TLS every node's connection takes.
pub struct ClusterNodes {
    pub seeds: Vec<Addr>,
    pub template: redis::Client,
}

impl From<redis::Client> for Target {
    fn from(c: redis::Client) -> Self {
        Self::Direct(Box::new(c))
    }
}

impl Target {
    /// A client for the Redis to use now: the one address, or the primary the first sentinel
    /// that knows `master` names.
    pub async fn client(&self, timeout: Duration) -> Result<redis::Client, RedisCallError> {
        match self {
            Self::Direct(c) => Ok((**c).clone()),
            Self::Sentinel(s) => s.primary(timeout).await,
            Self::Cluster(_) => Err(RedisCallError::Redis(redis::RedisError::from((
                redis::ErrorKind::Io,
                "Redis Cluster",
                "this part of Agent Office does not run on a Redis Cluster yet".to_string(),
            )))),
        }
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
        let map = SlotMap::fetch(&nodes.seeds, &nodes.template, timeout).await?;
        let slot = shared::slot::key_slot(key.as_bytes());
        let (host, port) = map
            .owner(slot)
            .and_then(|i| map.primaries.get(i))
            .cloned()
            .ok_or(ClusterError::BadSlots("a slot served by no primary"))?;
        let client = with_addr(&nodes.template, host, port).map_err(RedisCallError::from)?;
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
            Self::Cluster(c) => format!("the Redis Cluster of {}", slots::list(&c.seeds)),
        }
    }
}

/// `template`'s password, database and TLS for the Redis at `host:port` (a primary the
/// sentinels name, a Cluster node).
pub fn with_addr(
    template: &redis::Client,
    host: String,
    port: u16,
) -> redis::RedisResult<redis::Client> {
    let info = template.get_connection_info().clone();
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
