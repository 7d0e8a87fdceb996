//! A connection to Redis that is either one Redis (direct, or the primary the sentinels named)
//! or a Redis Cluster, behind one type: the server's acting half and `pipeline-agent` take it
//! for every call whose keys they name (the collector keeps its own raw reads).
//!
//! On a Cluster a single command (or script) goes to its key's slot's primary, redirects
//! followed by redis-rs. A pipeline is where the two differ: its commands may name keys of
//! several slots (a job's queue move with its `{jobs}` history and the results stream, the
//! workers' heartbeats). [`Conn::query`] splits it by slot, sends each primary's share as one
//! pipeline, all at once, and puts the replies back in order. Keyless commands (`PUBLISH`,
//! which a Cluster carries to every node) travel with the first share.
//!
//! One difference is documented rather than hidden: redis-rs keeps a pipeline's `ignore()`
//! marks private, so on a Cluster every reply comes back. Read a pipeline that ignores
//! replies only as `()`.

pub mod sentinel;

/// Addresses (sentinels, Cluster seeds) as the operator writes them: `host:port,host:port`.
pub fn addr_list(addrs: &[(String, u16)]) -> String {
    let addrs: Vec<String> = addrs.iter().map(|(h, p)| format!("{h}:{p}")).collect();
    addrs.join(",")
}

use std::collections::BTreeMap;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use redis::{Arg, Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value};

#[derive(Clone)]
pub enum Conn {
    One(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::One(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::One(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::One(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// Sends a pipeline (not a transaction) whose commands may span hash slots: one round
    /// trip on one Redis, one per primary concerned (in parallel) on a Cluster.
    pub async fn query<T: FromRedisValue>(&mut self, pipe: &Pipeline) -> RedisResult<T> {
        match self {
            Self::One(c) => pipe.query_async(c).await,
            Self::Cluster(c) => {
                let values = by_slot(c, pipe).await?;
                T::from_redis_value(Value::Array(values)).map_err(Into::into)
            }
        }
    }
}

/// Each slot's share of `pipe`, sent to its primary; the replies in `pipe`'s order.
async fn by_slot(c: &ClusterConnection, pipe: &Pipeline) -> RedisResult<Vec<Value>> {
    let cmds: Vec<&Cmd> = pipe.cmd_iter().collect();
    let shares = split(&cmds);
    let sends = shares.into_iter().map(|(slot, at)| {
        let mut c = c.clone();
        let mut share = redis::pipe();
        for &i in &at {
            share.add_command(cmds[i].clone());
        }
        async move {
            let route = Route::new(slot, SlotAddr::Master);
            let replies = c
                .route_pipeline(
                    share,
                    0,
                    at.len(),
                    SingleNodeRoutingInfo::SpecificNode(route),
                )
                .await?;
            Ok::<_, redis::RedisError>((at, replies))
        }
    });
    let mut out = vec![Value::Nil; cmds.len()];
    for (at, replies) in futures::future::try_join_all(sends).await? {
        for (i, v) in at.into_iter().zip(replies) {
            out[i] = v.extract_error()?;
        }
    }
    Ok(out)
}

/// The commands' positions grouped by their key's slot, each group in pipeline order; keyless
/// commands join the first group (slot 0 when no command has a key).
fn split(cmds: &[&Cmd]) -> BTreeMap<u16, Vec<usize>> {
    let mut shares: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    let mut keyless = Vec::new();
    for (i, cmd) in cmds.iter().enumerate() {
        match routing_key(cmd) {
            Some(key) => shares
                .entry(shared::slot::key_slot(key))
                .or_default()
                .push(i),
            None => keyless.push(i),
        }
    }
    if !keyless.is_empty() {
        let first = shares.values_mut().next();
        match first {
            Some(at) => {
                at.extend(keyless);
                at.sort_unstable();
            }
            None => {
                shares.insert(0, keyless);
            }
        }
    }
    shares
}

/// The key a command is routed by: the first key of a script, none for `PUBLISH`, else the
/// first argument (the agent's other commands are all single-key).
fn routing_key(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().filter_map(|a| match a {
        Arg::Simple(b) => Some(b),
        _ => None,
    });
    let name = args.next()?.to_ascii_uppercase();
    match name.as_slice() {
        b"EVAL" | b"EVALSHA" => {
            let _script = args.next()?;
            let keys = args.next()?;
            (keys != b"0").then(|| args.next()).flatten()
        }
        b"PUBLISH" => None,
        _ => args.next(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_splits_by_the_slot_of_each_key_keeping_order() {
        let mut p = redis::pipe();
        p.cmd("LREM")
            .arg("processing:queue:{img}:a")
            .arg(-1)
            .arg("j");
        p.cmd("EVALSHA")
            .arg("abc")
            .arg(2)
            .arg("agent-office:{jobs}:job:1")
            .arg("agent-office:{jobs}:all");
        p.cmd("PUBLISH").arg("agent-office:events").arg("{}");
        p.cmd("HDEL")
            .arg("agent-office:retries:queue:{img}")
            .arg("f");
        p.cmd("EVAL").arg("return 1").arg(0);
        let cmds: Vec<&Cmd> = p.cmd_iter().collect();
        let shares = split(&cmds);
        let img = shared::slot::key_slot(b"{img}");
        let jobs = shared::slot::key_slot(b"{jobs}");
        let own = |slot| if slot == img { vec![0, 3] } else { vec![1] };
        let (low, high) = (img.min(jobs), img.max(jobs));
        // Keyless PUBLISH and EVAL with no keys ride with the lowest slot's share.
        let mut with_keyless = own(low);
        with_keyless.extend([2, 4]);
        with_keyless.sort_unstable();
        assert_eq!(shares.len(), 2);
        assert_eq!(shares[&low], with_keyless);
        assert_eq!(shares[&high], own(high));
    }

    #[test]
    fn only_keyless_commands_go_to_one_share() {
        let mut p = redis::pipe();
        p.cmd("PUBLISH").arg("c").arg("m");
        let cmds: Vec<&Cmd> = p.cmd_iter().collect();
        assert_eq!(split(&cmds), BTreeMap::from([(0, vec![0])]));
    }
}
