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

/// Opens a multiplexed connection, giving up after `timeout`.
pub async fn connect(
    client: &redis::Client,
    timeout: Duration,
) -> Result<MultiplexedConnection, RedisCallError> {
    with_timeout(timeout, client.get_multiplexed_async_connection()).await
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
