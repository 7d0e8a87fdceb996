//! The collector's read on a Redis Cluster (SPEC §12): one pipelined round trip per cycle *per
//! primary*. Each of the plan's commands goes to the primary that owns its key's slot; the
//! primaries' shares, encoded once per plan, are sent in parallel, each on its own connection,
//! and the replies are read back in plan order for [`Plan::read`]. A `MOVED` or `ASK` reply (a
//! slot migrating, a failover) re-sends only the commands it names, to the node it names, and
//! the slot map is read again (`CLUSTER SLOTS`) before the next cycle.
//!
//! Used when the server runs with `REDIS_CLUSTER_NODES`; `server/tests/cluster.rs` drives it
//! against a real three-primary Cluster.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shared::slot::key_slot;

use super::plan::Plan;
use super::wire::{encode, Replies, Reply, WireConn, WireError};
use crate::redis_conn::RedisCallError;
use crate::redis_target::{Addr, ClusterError, SlotMap};

/// How many rounds of redirects one read follows before it gives up (a slot that moved again
/// while the read ran).
const MAX_REDIRECT_ROUNDS: usize = 3;

/// Why a read on the Cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Slots(#[from] ClusterError),
    #[error("slot {0} is served by no primary (the Cluster does not cover every slot)")]
    Uncovered(u16),
    #[error("a key was still redirected after {MAX_REDIRECT_ROUNDS} rounds")]
    Redirects,
    #[error("Redis Cluster node {0}:{1}: {2}")]
    Node(String, u16, WireError),
    #[error(transparent)]
    Call(#[from] RedisCallError),
}

/// Where one command of the plan went: its primary's share, its reply's index there, and its
/// bytes in the share's packed commands (to re-send it elsewhere after a redirect).
#[derive(Clone, Copy, Debug)]
struct Route {
    share: u16,
    at: u32,
    start: u32,
    end: u32,
}

/// One primary's commands, encoded once per plan and slot map.
#[derive(Debug, Default)]
struct Share {
    packed: Bytes,
    count: usize,
}

/// A [`Share`] being encoded.
#[derive(Default)]
struct Building {
    packed: Vec<u8>,
    count: usize,
}

impl Building {
    fn done(self) -> Share {
        Share {
            packed: self.packed.into(),
            count: self.count,
        }
    }
}

/// The plan's commands routed by slot.
#[derive(Debug, Default)]
struct Split {
    shares: Vec<Share>,
    route: Vec<Route>,
}

impl Split {
    fn new(plan: &Plan, map: &SlotMap) -> Result<Self, ReadError> {
        let mut shares: Vec<Building> = map.primaries.iter().map(|_| Building::default()).collect();
        let mut route = Vec::with_capacity(plan.command_count());
        let mut uncovered = None;
        plan.each_command(|args| {
            let slot = key_slot(args[1]);
            let Some(i) = map.owner(slot) else {
                uncovered.get_or_insert(slot);
                return;
            };
            let share = &mut shares[i];
            let start = share.packed.len();
            encode(&mut share.packed, args);
            // A plan's commands are a few MB at 100,000 workers: offsets fit in u32.
            route.push(Route {
                share: i as u16,
                at: share.count as u32,
                start: start as u32,
                end: share.packed.len() as u32,
            });
            share.count += 1;
        });
        match uncovered {
            Some(slot) => Err(ReadError::Uncovered(slot)),
            None => Ok(Self {
                shares: shares.into_iter().map(Building::done).collect(),
                route,
            }),
        }
    }
}

/// A `MOVED`/`ASK` reply: where to ask instead, and whether only once (`ASK`, a slot being
/// migrated) or from now on (`MOVED`).
fn redirect(reply: Reply<'_>, fallback_host: &str) -> Option<(bool, Addr)> {
    let Reply::Error(e) = reply else { return None };
    let text = std::str::from_utf8(e).ok()?;
    let mut words = text.split_ascii_whitespace();
    let ask = match words.next()? {
        "MOVED" => false,
        "ASK" => true,
        _ => return None,
    };
    let (host, port) = words.nth(1)?.rsplit_once(':')?;
    let host = if host.is_empty() { fallback_host } else { host };
    Some((ask, (host.to_string(), port.parse().ok()?)))
}

/// The collector's read of a plan on a Cluster: a connection per primary, the plan's split,
/// and the replies of the last read.
pub struct ClusterReader {
    seeds: Vec<Addr>,
    template: redis::Client,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
    map: Option<SlotMap>,
    /// A redirect was followed: the slot map is read again before the next read.
    map_stale: bool,
    split: Option<Split>,
    conns: Vec<Option<WireConn>>,
    /// One set per primary, then one per redirected exchange of the last read.
    replies: Vec<Replies>,
    /// Commands answered by a redirected exchange: plan index → (reply set, index in it).
    redirected: HashMap<usize, (usize, usize)>,
    round_trips: usize,
}

impl ClusterReader {
    /// `seeds`: `REDIS_CLUSTER_NODES`; `template`: `REDIS_URL`'s password, database and TLS;
    /// `tls`: whom the connections trust for `rediss://`; `timeout`: of connecting and of
    /// reading the slot map.
    pub fn new(
        seeds: Vec<Addr>,
        template: redis::Client,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Self {
        Self {
            seeds,
            template,
            tls,
            timeout,
            map: None,
            map_stale: false,
            split: None,
            conns: Vec::new(),
            replies: Vec::new(),
            redirected: HashMap::new(),
            round_trips: 0,
        }
    }

    /// The plan changed: its commands are split again before the next read.
    pub fn replan(&mut self) {
        self.split = None;
    }

    /// The primaries of the slot map in use (empty before the first read).
    pub fn primaries(&self) -> &[Addr] {
        self.map.as_ref().map_or(&[], |m| &m.primaries)
    }

    /// Round trips of the last read: one per primary with keys, plus one per redirected
    /// exchange.
    pub fn round_trips(&self) -> usize {
        self.round_trips
    }

    /// Reads `plan`'s keys, each primary's share in one round trip, all at once, within
    /// `deadline`. After an error every connection and the slot map are made anew.
    pub async fn read(&mut self, plan: &Plan, deadline: Duration) -> Result<(), ReadError> {
        let read = self.try_read(plan, deadline).await;
        if read.is_err() {
            self.conns.clear();
            self.map = None;
            self.split = None;
            self.redirected.clear();
        }
        read
    }

    /// The last read's replies in plan order.
    pub fn replies(&self) -> impl ExactSizeIterator<Item = Reply<'_>> + '_ {
        let n = self.split.as_ref().map_or(0, |s| s.route.len());
        (0..n).map(|j| self.reply(j))
    }

    fn reply(&self, j: usize) -> Reply<'_> {
        if !self.redirected.is_empty() {
            if let Some(&(set, at)) = self.redirected.get(&j) {
                return self.replies[set].get(at);
            }
        }
        match self.split.as_ref().and_then(|s| s.route.get(j)) {
            Some(r) => self.replies[usize::from(r.share)].get(r.at as usize),
            None => Reply::Nil,
        }
    }

    async fn try_read(&mut self, plan: &Plan, deadline: Duration) -> Result<(), ReadError> {
        if self.map.is_none() || self.map_stale {
            let map = SlotMap::fetch(&self.seeds, &self.template, self.timeout).await?;
            if self.map.as_ref().map(|m| &m.primaries) != Some(&map.primaries) {
                self.conns.clear();
            }
            self.map = Some(map);
            self.map_stale = false;
            self.split = None;
        }
        let Some(map) = self.map.as_ref() else {
            return Err(ReadError::Slots(ClusterError::NoSeed(String::new())));
        };
        if self.split.is_none() {
            self.split = Some(Split::new(plan, map)?);
        }
        let primaries = map.primaries.clone();
        self.conns.resize_with(primaries.len(), || None);
        for (i, (host, port)) in primaries.iter().enumerate() {
            if self.conns[i].is_none() {
                self.conns[i] = Some(
                    connect_node(&self.template, self.tls.as_ref(), self.timeout, host, *port)
                        .await?,
                );
            }
        }
        self.replies.truncate(primaries.len());
        self.replies.resize_with(primaries.len(), Replies::default);
        self.redirected.clear();
        let Some(split) = self.split.as_ref() else {
            return Ok(());
        };
        let exchanges = self
            .conns
            .iter_mut()
            .zip(&split.shares)
            .zip(self.replies.iter_mut())
            .zip(&primaries)
            .filter(|(((_, share), _), _)| share.count > 0)
            .map(|(((conn, share), replies), (host, port))| async move {
                let conn = conn.as_mut().ok_or(WireError::Closed);
                let sent = match conn {
                    Ok(c) => {
                        c.exchange(
                            share.packed.clone(),
                            share.count,
                            Plan::MAX_REPLY_BYTES,
                            replies,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                };
                sent.map_err(|e| ReadError::Node(host.clone(), *port, e))
            });
        let all = futures::future::try_join_all(exchanges);
        tokio::time::timeout(deadline, all)
            .await
            .map_err(|_| RedisCallError::Timeout(deadline))??;
        self.round_trips = split.shares.iter().filter(|s| s.count > 0).count();
        self.follow_redirects(&primaries, deadline).await
    }

    /// `PTTL` of each of `keys` from its primary, each primary's share in one round trip, all at
    /// once (after a [`read`](Self::read), on its connections). A key whose answer is not a
    /// number (a redirect, a node gone) reads as -2, "not known".
    pub async fn pttl(
        &mut self,
        keys: &[String],
        deadline: Duration,
    ) -> Result<Vec<i64>, ReadError> {
        let Some(map) = self.map.as_ref() else {
            return Ok(vec![-2; keys.len()]);
        };
        let mut shares: Vec<Building> = map.primaries.iter().map(|_| Building::default()).collect();
        let mut route = Vec::with_capacity(keys.len());
        for key in keys {
            let owner = map.owner(key_slot(key.as_bytes()));
            if let Some(share) = owner.and_then(|i| shares.get_mut(i)) {
                encode(&mut share.packed, &[b"PTTL", key.as_bytes()]);
                route.push(owner.map(|i| (i, share.count)));
                share.count += 1;
            } else {
                route.push(None);
            }
        }
        let primaries = map.primaries.clone();
        let shares: Vec<Share> = shares.into_iter().map(Building::done).collect();
        let mut replies: Vec<Replies> = shares.iter().map(|_| Replies::default()).collect();
        let exchanges = self
            .conns
            .iter_mut()
            .zip(&shares)
            .zip(replies.iter_mut())
            .zip(&primaries)
            .filter(|(((_, share), _), _)| share.count > 0)
            .map(|(((conn, share), out), (host, port))| async move {
                let sent = match conn.as_mut() {
                    Some(c) => c.exchange(share.packed.clone(), share.count, 64, out).await,
                    None => Err(WireError::Closed),
                };
                sent.map_err(|e| ReadError::Node(host.clone(), *port, e))
            });
        let sent = tokio::time::timeout(deadline, futures::future::try_join_all(exchanges))
            .await
            .map_err(|_| ReadError::from(RedisCallError::Timeout(deadline)))
            .and_then(|r| r);
        if let Err(e) = sent {
            // Connections left mid-exchange are made anew by the next read.
            self.conns.clear();
            return Err(e);
        }
        Ok(route
            .into_iter()
            .map(|at| match at.map(|(i, k)| replies[i].get(k)) {
                Some(Reply::Int(ms)) => ms,
                _ => -2,
            })
            .collect())
    }

    /// Re-sends each command answered `MOVED`/`ASK` to the node named, grouped by node (with
    /// `ASKING` before each `ASK`ed one), round after round until none is left.
    async fn follow_redirects(
        &mut self,
        primaries: &[Addr],
        deadline: Duration,
    ) -> Result<(), ReadError> {
        let n = self.split.as_ref().map_or(0, |s| s.route.len());
        let mut candidates: Vec<usize> = (0..n).collect();
        for _ in 0..MAX_REDIRECT_ROUNDS {
            let mut groups: HashMap<(bool, Addr), Vec<usize>> = HashMap::new();
            for &j in &candidates {
                let from = self.answered_by(j, primaries);
                if let Some(to) = redirect(self.reply(j), &from) {
                    groups.entry(to).or_default().push(j);
                }
            }
            if groups.is_empty() {
                return Ok(());
            }
            self.map_stale = true;
            candidates.clear();
            for ((ask, (host, port)), commands) in groups {
                let mut packed = Vec::new();
                for &j in &commands {
                    if ask {
                        encode(&mut packed, &[b"ASKING"]);
                    }
                    packed.extend_from_slice(self.bytes_of(j));
                }
                let per = if ask { 2 } else { 1 };
                let mut replies = Replies::default();
                let mut conn =
                    connect_node(&self.template, self.tls.as_ref(), self.timeout, &host, port)
                        .await?;
                let sent = conn.exchange(
                    packed.into(),
                    commands.len() * per,
                    Plan::MAX_REPLY_BYTES,
                    &mut replies,
                );
                tokio::time::timeout(deadline, sent)
                    .await
                    .map_err(|_| RedisCallError::Timeout(deadline))?
                    .map_err(|e| ReadError::Node(host.clone(), port, e))?;
                self.round_trips += 1;
                let set = self.replies.len();
                self.replies.push(replies);
                for (k, &j) in commands.iter().enumerate() {
                    self.redirected.insert(j, (set, k * per + per - 1));
                }
                candidates.extend(commands);
            }
        }
        Err(ReadError::Redirects)
    }

    /// The host whose reply command `j` has now (for a redirect that names no host).
    fn answered_by(&self, j: usize, primaries: &[Addr]) -> String {
        let share = self
            .split
            .as_ref()
            .and_then(|s| s.route.get(j))
            .map(|r| usize::from(r.share));
        share
            .and_then(|i| primaries.get(i))
            .map(|(h, _)| h.clone())
            .unwrap_or_default()
    }

    fn bytes_of(&self, j: usize) -> &[u8] {
        let Some(split) = self.split.as_ref() else {
            return &[];
        };
        match split.route.get(j) {
            Some(r) => &split.shares[usize::from(r.share)].packed[r.start as usize..r.end as usize],
            None => &[],
        }
    }
}

/// A connection to one node, with `REDIS_URL`'s password, database and TLS (`template`).
async fn connect_node(
    template: &redis::Client,
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeout: Duration,
    host: &str,
    port: u16,
) -> Result<WireConn, ReadError> {
    let client = crate::redis_target::with_addr(template, host.to_string(), port)
        .map_err(RedisCallError::from)?;
    let connecting = WireConn::connect(client.get_connection_info(), tls);
    tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| RedisCallError::Timeout(timeout))?
        .map_err(|e| ReadError::Node(host.to_string(), port, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_split_by_slot_and_read_back_in_order() {
        let discovered = super::super::Discovered {
            workers: (0..50).map(|i| format!("w{i}")).collect(),
            ..Default::default()
        };
        let plan = Plan::new(&[], &discovered);
        let half = shared::slot::SLOTS / 2;
        let map = SlotMap::from_ranges(&[
            (0, half - 1, ("a".to_string(), 1)),
            (half, u16::MAX, ("b".to_string(), 2)),
        ]);
        let split = Split::new(&plan, &map).unwrap();
        assert_eq!(split.route.len(), plan.command_count());
        assert_eq!(
            split.shares.iter().map(|s| s.count).sum::<usize>(),
            plan.command_count()
        );
        assert!(split.shares.iter().all(|s| s.count > 0));
        // Each command is in the share of its key's slot, and its bytes are the command.
        let mut j = 0;
        plan.each_command(|args| {
            let r = split.route[j];
            assert_eq!(usize::from(r.share), map.owner(key_slot(args[1])).unwrap());
            let mut one = Vec::new();
            encode(&mut one, args);
            let share = &split.shares[usize::from(r.share)];
            assert_eq!(&share.packed[r.start as usize..r.end as usize], &one[..]);
            j += 1;
        });
        let uncovered = SlotMap::from_ranges(&[(0, 10, ("a".to_string(), 1))]);
        assert!(matches!(
            Split::new(&plan, &uncovered),
            Err(ReadError::Uncovered(_))
        ));
    }

    #[test]
    fn redirects_say_where_to_ask() {
        assert_eq!(
            redirect(Reply::Error(b"MOVED 3999 127.0.0.1:6381"), "x"),
            Some((false, ("127.0.0.1".to_string(), 6381)))
        );
        assert_eq!(
            redirect(Reply::Error(b"ASK 3999 :6381"), "seed"),
            Some((true, ("seed".to_string(), 6381)))
        );
        assert_eq!(redirect(Reply::Error(b"WRONGTYPE no"), "x"), None);
        assert_eq!(redirect(Reply::Error(b"MOVED 1 nowhere"), "x"), None);
        assert_eq!(redirect(Reply::Int(1), "x"), None);
    }
}
