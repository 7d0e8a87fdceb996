//! Connecting to Redis with a deadline, and running a command with one.

use std::future::Future;
use std::time::Duration;

use redis::aio::MultiplexedConnection;

#[derive(Debug, thiserror::Error)]
pub enum RedisCallError {
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

impl RedisCallError {
    /// As a plain Redis error (a timeout as an I/O error), for callers that speak redis-rs's.
    pub fn from_call(e: RedisCallError) -> redis::RedisError {
        match e {
            RedisCallError::Redis(e) => e,
            RedisCallError::Timeout(d) => redis::RedisError::from((
                redis::ErrorKind::Io,
                "timeout",
                format!("no answer within {d:?}"),
            )),
        }
    }
}

/// Opens a multiplexed connection, giving up after `timeout`; each reply on it may take as
/// long (redis-rs's own default, 500 ms, would otherwise cut longer calls short).
pub async fn connect(
    client: &redis::Client,
    timeout: Duration,
) -> Result<MultiplexedConnection, RedisCallError> {
    connect_with(client, timeout, Some(timeout)).await
}

/// Like [`connect`], with its own limit on how long one reply may take; `None` for a caller
/// that gives every call its own deadline ([`with_timeout`]; the collector's grows with the fleet).
pub async fn connect_with(
    client: &redis::Client,
    timeout: Duration,
    reply_timeout: Option<Duration>,
) -> Result<MultiplexedConnection, RedisCallError> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(reply_timeout);
    with_timeout(
        timeout,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
}

/// Runs one Redis call with a deadline.
pub async fn with_timeout<T>(
    timeout: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, RedisCallError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(RedisCallError::Timeout(timeout)),
    }
}
