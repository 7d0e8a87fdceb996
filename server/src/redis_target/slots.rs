//! A Redis Cluster's slot map (SPEC §12): which primary serves each of the 16,384 hash slots,
//! read with `CLUSTER SLOTS` from any node that answers.

use std::time::Duration;

use shared::slot::SLOTS;

use crate::redis_conn::{connect, with_timeout, RedisCallError};

/// A node's address as the Cluster announces it.
pub type Addr = (String, u16);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no node of REDIS_CLUSTER_NODES ({0}) answered CLUSTER SLOTS")]
    NoSeed(String),
    #[error("CLUSTER SLOTS answered something unexpected: {0}")]
    BadSlots(&'static str),
    #[error(transparent)]
    Call(#[from] RedisCallError),
}

impl From<ClusterError> for RedisCallError {
    /// For callers that speak [`RedisCallError`]: the Cluster's own failures as I/O errors,
    /// their words kept.
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Call(e) => e,
            other => RedisCallError::Redis(redis::RedisError::from((
                redis::ErrorKind::Io,
                "Redis Cluster",
                other.to_string(),
            ))),
        }
    }
}

/// Which primary serves each slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMap {
    pub primaries: Vec<Addr>,
    /// Per slot, an index into `primaries` ([`NOBODY`]: uncovered).
    owner: Vec<u16>,
}

const NOBODY: u16 = u16::MAX;

impl SlotMap {
    /// From `CLUSTER SLOTS`: `[[start, end, [host, port, id, …], replica…], …]`. A primary
    /// announced without a host is at `seed_host` (the node that answered does not know its
    /// own address yet).
    pub fn from_reply(reply: &redis::Value, seed_host: &str) -> Result<Self, ClusterError> {
        use redis::Value;
        let bad = ClusterError::BadSlots;
        let Value::Array(ranges) = reply else {
            return Err(bad("not an array"));
        };
        let mut map = Self::empty();
        for range in ranges {
            let Value::Array(parts) = range else {
                return Err(bad("a range that is not an array"));
            };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(node))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                return Err(bad("a range without start, end and primary"));
            };
            let host = match node.first() {
                Some(Value::BulkString(h)) if !h.is_empty() => {
                    String::from_utf8_lossy(h).into_owned()
                }
                _ => seed_host.to_string(),
            };
            let Some(Value::Int(port)) = node.get(1) else {
                return Err(bad("a primary without a port"));
            };
            let port = u16::try_from(*port).map_err(|_| bad("a port out of range"))?;
            let (Ok(start), Ok(end)) = (u16::try_from(*start), u16::try_from(*end)) else {
                return Err(bad("a slot out of range"));
            };
            if start > end || end >= SLOTS {
                return Err(bad("a slot out of range"));
            }
            map.assign(start, end, (host, port));
        }
        Ok(map)
    }

    /// A map of the given ranges (`start..=end`, each below [`SLOTS`]); other slots uncovered.
    pub fn from_ranges(ranges: &[(u16, u16, Addr)]) -> Self {
        let mut map = Self::empty();
        for (start, end, addr) in ranges {
            map.assign(*start, (*end).min(SLOTS - 1), addr.clone());
        }
        map
    }

    fn empty() -> Self {
        Self {
            primaries: Vec::new(),
            owner: vec![NOBODY; usize::from(SLOTS)],
        }
    }

    fn assign(&mut self, start: u16, end: u16, addr: Addr) {
        let index = self.index_of(addr);
        if let Some(slots) = self.owner.get_mut(usize::from(start)..=usize::from(end)) {
            slots.fill(index);
        }
    }

    fn index_of(&mut self, addr: Addr) -> u16 {
        match self.primaries.iter().position(|a| *a == addr) {
            // At most a few thousand primaries: an index fits.
            Some(i) => i as u16,
            None => {
                self.primaries.push(addr);
                (self.primaries.len() - 1) as u16
            }
        }
    }

    /// The primary serving `slot`, as an index into `primaries`.
    pub fn owner(&self, slot: u16) -> Option<usize> {
        match self.owner.get(usize::from(slot)) {
            Some(&NOBODY) | None => None,
            Some(&i) => Some(usize::from(i)),
        }
    }

    /// Asks the seeds in turn (`template`: the password, database and TLS for every node).
    pub async fn fetch(
        seeds: &[Addr],
        template: &redis::Client,
        timeout: Duration,
    ) -> Result<Self, ClusterError> {
        for (host, port) in seeds {
            let asked = async {
                let client = crate::redis_target::with_addr(template, host.clone(), *port)
                    .map_err(RedisCallError::from)?;
                let mut c = connect(&client, timeout).await?;
                let reply: redis::Value = with_timeout(
                    timeout,
                    redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut c),
                )
                .await?;
                Self::from_reply(&reply, host)
            };
            match asked.await {
                Ok(map) => return Ok(map),
                Err(e) => tracing::debug!(node = %format!("{host}:{port}"), "CLUSTER SLOTS: {e}"),
            }
        }
        Err(ClusterError::NoSeed(redis_link::addr_list(seeds)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    fn range(start: i64, end: i64, primary: Value) -> Value {
        Value::Array(vec![Value::Int(start), Value::Int(end), primary])
    }

    #[test]
    fn the_slot_map_names_each_slots_primary() {
        let reply = Value::Array(vec![
            range(0, 5460, node("10.0.0.1", 7000)),
            range(5461, 10922, node("", 7001)),
            range(10923, 16383, node("10.0.0.1", 7000)),
        ]);
        let map = SlotMap::from_reply(&reply, "seed").unwrap();
        assert_eq!(
            map.primaries,
            vec![("10.0.0.1".to_string(), 7000), ("seed".to_string(), 7001)]
        );
        assert_eq!(map.owner(0), Some(0));
        assert_eq!(map.owner(5461), Some(1));
        assert_eq!(map.owner(16383), Some(0));
        let partial = Value::Array(vec![range(0, 100, node("h", 1))]);
        let map = SlotMap::from_reply(&partial, "seed").unwrap();
        assert_eq!(map.owner(101), None);
        assert_eq!(map, SlotMap::from_ranges(&[(0, 100, ("h".to_string(), 1))]));
        for bad in [
            Value::Int(1),
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![range(0, 16384, node("h", 1))]),
            Value::Array(vec![range(5, 1, node("h", 1))]),
            Value::Array(vec![range(0, 1, node("h", 70_000))]),
        ] {
            assert!(SlotMap::from_reply(&bad, "seed").is_err(), "{bad:?}");
        }
    }
}
