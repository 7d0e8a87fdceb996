//! The control plane's Redis connection: one multiplexed connection shared by every request,
//! opened on first use and reopened after a failure. Every call has the Redis deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use crate::redis_conn::{connect, with_timeout, RedisCallError};

#[derive(Clone)]
pub struct Store {
    client: redis::Client,
    conn: Arc<Mutex<Option<MultiplexedConnection>>>,
    pub timeout: Duration,
}

impl Store {
    pub fn new(client: redis::Client, timeout: Duration) -> Self {
        Self {
            client,
            conn: Arc::default(),
            timeout,
        }
    }

    async fn conn(&self) -> Result<MultiplexedConnection, RedisCallError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = connect(&self.client, self.timeout).await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs `call` on the shared connection within the deadline; a connection that failed is
    /// dropped so the next call opens a fresh one.
    pub async fn run<T, F, Fut>(&self, call: F) -> Result<T, RedisCallError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn().await?;
        let result = with_timeout(self.timeout, call(conn)).await;
        if let Err(e) = &result {
            let broken = match e {
                RedisCallError::Timeout(_) => true,
                RedisCallError::Redis(r) => {
                    r.is_io_error() || r.is_connection_dropped() || r.is_connection_refusal()
                }
            };
            if broken {
                *self.conn.lock().await = None;
            }
        }
        result
    }
}
