//! Where Redis is (SPEC §12): `redis.host`/`port`, or the primary the sentinels of
//! `redis.sentinels` name under `redis.master`. With Sentinel every new connection asks again:
//! every Redis failure of the agent drops its connection, so after a failover the next one
//! goes to the new primary, where the jobs in hand are settled.

use std::sync::Arc;
use std::time::Duration;

use redis::{ConnectionAddr, ErrorKind, IntoConnectionInfo, RedisError, RedisResult};

#[derive(Clone)]
pub enum Target {
    Direct(Box<redis::Client>),
    Sentinel(Arc<Sentinels>),
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
    /// A client for the Redis to use now.
    pub async fn client(&self, timeout: Duration) -> RedisResult<redis::Client> {
        match self {
            Self::Direct(c) => Ok((**c).clone()),
            Self::Sentinel(s) => s.primary(timeout).await,
        }
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
