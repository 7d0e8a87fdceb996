//! Sentinel (SPEC §12): the primary a set of sentinels names, asked on every new connection.

use std::time::Duration;

use redis::{ConnectionAddr, IntoConnectionInfo};

use super::with_addr;
use crate::redis_conn::{with_timeout, RedisCallError};

/// The sentinels, the master's name, and the client of `REDIS_URL` whose password, database
/// and TLS the primary's connections take (its host and port are replaced).
pub struct Sentinels {
    pub addrs: Vec<(String, u16)>,
    pub master: String,
    pub template: redis::Client,
    /// The sentinels' own password (`REDIS_SENTINEL_PASSWORD`), when they ask for one.
    pub password: Option<String>,
}

/// `REDIS_SENTINELS` and `REDIS_SENTINEL_MASTER`.
pub type SentinelSettings = (Vec<(String, u16)>, String);

/// Why no primary could be found, said with the names the operator gave.
#[derive(Debug, thiserror::Error)]
pub enum SentinelError {
    #[error("no sentinel of REDIS_SENTINELS ({0}) answered")]
    NoneAnswered(String),
    #[error(
        "the sentinels ({sentinels}) know no primary named {master:?} (REDIS_SENTINEL_MASTER)"
    )]
    UnknownMaster { sentinels: String, master: String },
    #[error(
        "the sentinels ({0}) refused to answer without the right password: set \
         REDIS_SENTINEL_PASSWORD to the sentinels' requirepass"
    )]
    Password(String),
}

impl Sentinels {
    pub(super) fn list(&self) -> String {
        super::slots::list(&self.addrs)
    }

    pub(super) async fn primary(&self, timeout: Duration) -> Result<redis::Client, RedisCallError> {
        let (mut answered, mut refused) = (false, false);
        for (host, port) in &self.addrs {
            match ask(host, *port, &self.master, self.password.as_deref(), timeout).await {
                Ok(Some((h, p))) => return self.client_for(h, p).map_err(RedisCallError::Redis),
                Ok(None) => answered = true,
                Err(e) => {
                    refused |= is_refused_password(&e);
                    tracing::debug!(sentinel = %format!("{host}:{port}"), "no answer: {e}")
                }
            }
        }
        let e = if answered {
            SentinelError::UnknownMaster {
                sentinels: self.list(),
                master: self.master.clone(),
            }
        } else if refused {
            SentinelError::Password(self.list())
        } else {
            SentinelError::NoneAnswered(self.list())
        };
        Err(RedisCallError::Redis(redis::RedisError::from((
            redis::ErrorKind::Io,
            "sentinel",
            e.to_string(),
        ))))
    }

    /// `REDIS_URL`'s settings with the primary's address.
    fn client_for(&self, host: String, port: u16) -> redis::RedisResult<redis::Client> {
        with_addr(&self.template, host, port)
    }
}

/// `SENTINEL GET-MASTER-ADDR-BY-NAME` of one sentinel (`None`: it knows no such master).
async fn ask(
    host: &str,
    port: u16,
    master: &str,
    password: Option<&str>,
    timeout: Duration,
) -> Result<Option<(String, u16)>, RedisCallError> {
    let mut info = ConnectionAddr::Tcp(host.to_string(), port).into_connection_info()?;
    if let Some(p) = password {
        info = info.set_redis_settings(redis::RedisConnectionInfo::default().set_password(p));
    }
    let client = redis::Client::open(info)?;
    let mut c = crate::redis_conn::connect(&client, timeout).await?;
    let addr: Option<(String, u16)> = with_timeout(
        timeout,
        redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(master)
            .query_async(&mut c),
    )
    .await?;
    Ok(addr)
}

/// A sentinel that wants a password it was not given (or refused the one it was).
fn is_refused_password(e: &RedisCallError) -> bool {
    let RedisCallError::Redis(e) = e else {
        return false;
    };
    let text = e.to_string();
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || text.contains("NOAUTH")
        || text.contains("WRONGPASS")
        || text.contains("invalid password")
}

/// `host:port,host:port` (a port is required: a sentinel's is not Redis's 6379).
pub fn parse_sentinels(list: &str) -> anyhow::Result<Vec<(String, u16)>> {
    super::parse_addrs(list, "REDIS_SENTINELS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentinel_list_is_host_port_pairs() {
        assert_eq!(
            parse_sentinels("10.0.0.1:26379, s2:26380").unwrap(),
            vec![("10.0.0.1".into(), 26379), ("s2".into(), 26380)]
        );
        for bad in ["", "s1", "s1:x", ":26379"] {
            assert!(parse_sentinels(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_primary_takes_the_urls_password_and_database() {
        let s = Sentinels {
            addrs: vec![],
            master: "m".into(),
            template: redis::Client::open("redis://:sekret@ignored:1/3").unwrap(),
            password: None,
        };
        let c = s.client_for("10.1.1.1".into(), 6380).unwrap();
        let info = c.get_connection_info();
        assert_eq!(info.addr(), &ConnectionAddr::Tcp("10.1.1.1".into(), 6380));
        assert_eq!(info.redis_settings().password(), Some("sekret"));
        assert_eq!(info.redis_settings().db(), 3);
    }
}
