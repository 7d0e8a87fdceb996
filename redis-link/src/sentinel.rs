//! Sentinel (SPEC §12): the primary a set of sentinels names, asked on every new connection, so
//! the first connection after a failover goes to the new primary. The server and
//! `pipeline-agent` call their settings by different names ([`Names`]); the messages use theirs.

use std::time::Duration;

use redis::{ConnectionAddr, ErrorKind, IntoConnectionInfo, RedisError, RedisResult};

/// What the operator calls each setting, for the messages that name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Names {
    pub sentinels: &'static str,
    pub master: &'static str,
    pub password: &'static str,
}

/// The sentinels, the master's name, and the client of the configured address whose password,
/// database and TLS the primary's connections take (its host and port are replaced).
pub struct Sentinels {
    pub addrs: Vec<(String, u16)>,
    pub master: String,
    pub template: redis::Client,
    /// The sentinels' own password, when they ask for one.
    pub password: Option<String>,
    pub names: Names,
}

impl Sentinels {
    /// The sentinels as `host:port,host:port`.
    pub fn list(&self) -> String {
        crate::addr_list(&self.addrs)
    }

    /// A client for the primary the first sentinel that knows the master names. The error says
    /// which setting to look at: none answered, none knows that master, or they want a password.
    pub async fn primary(&self, timeout: Duration) -> RedisResult<redis::Client> {
        let (mut answered, mut refused) = (false, false);
        for (host, port) in &self.addrs {
            match ask(host, *port, &self.master, self.password.as_deref(), timeout).await {
                Ok(Some((h, p))) => return with_addr(&self.template, h, p),
                Ok(None) => answered = true,
                Err(e) => {
                    refused |= is_refused_password(&e);
                    tracing::debug!(sentinel = %format!("{host}:{port}"), "no answer: {e}")
                }
            }
        }
        let why = if answered {
            format!(
                "the sentinels ({}) know no primary named {:?} ({})",
                self.list(),
                self.master,
                self.names.master
            )
        } else if refused {
            format!(
                "the sentinels ({}) refused to answer without the right password: set {} to \
                 their requirepass",
                self.list(),
                self.names.password
            )
        } else {
            format!(
                "no sentinel of {} ({}) answered",
                self.names.sentinels,
                self.list()
            )
        };
        Err(RedisError::from((ErrorKind::Io, "sentinel", why)))
    }
}

/// `template`'s settings (password, database, TLS) with another address.
pub fn with_addr(template: &redis::Client, host: String, port: u16) -> RedisResult<redis::Client> {
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

/// A sentinel that wants a password it was not given (or refused the one it was).
fn is_refused_password(e: &RedisError) -> bool {
    let text = e.to_string();
    e.kind() == ErrorKind::AuthenticationFailed
        || text.contains("NOAUTH")
        || text.contains("WRONGPASS")
        || text.contains("invalid password")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primary_takes_the_templates_password_and_database() {
        let template = redis::Client::open("redis://:sekret@ignored:1/3").unwrap();
        let c = with_addr(&template, "10.1.1.1".into(), 6380).unwrap();
        let info = c.get_connection_info();
        assert_eq!(info.addr(), &ConnectionAddr::Tcp("10.1.1.1".into(), 6380));
        assert_eq!(info.redis_settings().password(), Some("sekret"));
        assert_eq!(info.redis_settings().db(), 3);
    }
}
