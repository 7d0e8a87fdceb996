//! The control plane's Redis connection: one multiplexed connection shared by every request,
//! opened on first use and reopened after a failure. Every call has the Redis deadline. On a
//! Redis Cluster it is a cluster connection that routes each call by its key's slot.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use tokio::sync::Mutex;

use crate::redis_conn::{with_timeout, RedisCallError};
use crate::redis_target::{is_broken, Conn, Target};

#[derive(Clone)]
pub struct Store {
    redis: Target,
    conn: Arc<Mutex<Option<Conn>>>,
    pub timeout: Duration,
}

impl Store {
    pub fn new(redis: impl Into<Target>, timeout: Duration) -> Self {
        Self {
            redis: redis.into(),
            conn: Arc::default(),
            timeout,
        }
    }

    /// True on a Redis Cluster.
    pub fn on_cluster(&self) -> bool {
        matches!(self.redis, Target::Cluster(_))
    }

    async fn conn(&self) -> Result<Conn, RedisCallError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = self.redis.connect_any(self.timeout).await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs `call` on the shared connection within the deadline; a connection that failed is
    /// dropped so the next call opens a fresh one.
    pub async fn run<T, F, Fut>(&self, call: F) -> Result<T, RedisCallError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn().await?;
        let result = with_timeout(self.timeout, call(conn)).await;
        if let Err(e) = &result {
            let broken = match e {
                RedisCallError::Timeout(_) => true,
                RedisCallError::Redis(r) => is_broken(r),
            };
            if broken {
                *self.conn.lock().await = None;
            }
        }
        result
    }
}

/// One stream entry: its id and its fields.
pub type StreamEntry = (String, Vec<(String, Vec<u8>)>);

/// The entries of an `XRANGE`/`XREVRANGE` reply (or the entry list inside `XREADGROUP` /
/// `XAUTOCLAIM`); anything of another shape is skipped, never a panic.
pub fn stream_entries(reply: Value) -> Vec<StreamEntry> {
    let Value::Array(items) = reply else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|e| {
            let Value::Array(pair) = e else { return None };
            let mut it = pair.into_iter();
            let id = text(it.next()?)?;
            let Some(Value::Array(flat)) = it.next() else {
                return Some((id, Vec::new()));
            };
            let mut fields = Vec::new();
            let mut flat = flat.into_iter();
            while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                if let (Some(k), Value::BulkString(v)) = (text(k), v) {
                    fields.push((k, v));
                }
            }
            Some((id, fields))
        })
        .collect()
}

/// The value of `field` in an entry.
pub fn field<'a>(entry: &'a StreamEntry, name: &str) -> Option<&'a [u8]> {
    entry
        .1
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn stream_replies_of_any_shape_decode_without_panicking() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("1-0"),
                Value::Array(vec![bulk("cmd"), bulk("{}")]),
            ]),
            Value::Array(vec![bulk("2-0")]),
            Value::Int(3),
            Value::Array(vec![bulk("3-0"), Value::Array(vec![bulk("odd")])]),
        ]);
        let entries = stream_entries(reply);
        assert_eq!(entries.len(), 3);
        assert_eq!(field(&entries[0], "cmd"), Some(&b"{}"[..]));
        assert_eq!(field(&entries[1], "cmd"), None);
        assert!(stream_entries(Value::Nil).is_empty());
    }
}
