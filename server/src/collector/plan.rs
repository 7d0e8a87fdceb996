//! What one collector cycle reads, and how its replies are decoded — all pure (the snapshot
//! they become: `snapshot.rs`).
//!
//! A [`Plan`] is rebuilt only when the registry or the discovered keys change. Each cycle sends
//! [`Plan::packed`] as a single pipelined round trip: a bounded `GETRANGE` of `queue:paused`
//! and of every heartbeat key (one byte over the size limit: a 100 MB value costs the cycle
//! what a small one does), then `LLEN` of every queue, dead-letter and processing list.

use std::collections::{BTreeMap, HashMap};

use shared::heartbeat::{WorkerKind, MAX_HEARTBEAT_BYTES};
use shared::keys;
use shared::registry::WorkerSpec;

use super::wire::{encode, Reply};

/// Keys found by the background discovery SCAN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovered {
    /// Names of workers with a heartbeat key (registered or not), sorted.
    pub workers: Vec<String>,
    /// `processing:queue:<q>:<consumer>` keys, by queue name.
    pub processing: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedWorker {
    pub name: String,
    /// The registry's kind; discovered workers take theirs from the heartbeat.
    pub kind: Option<WorkerKind>,
    /// Index into [`Plan::queues`].
    pub queue: Option<usize>,
    pub registered: bool,
}

/// The keys a cycle reads, in reply order, and the commands that read them, encoded once per
/// plan (at 10,000 workers 50,000 commands, about 2 MB).
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub workers: Vec<PlannedWorker>,
    /// Distinct queue names `<q>`.
    pub queues: Vec<String>,
    /// Processing lists as (queue index, key).
    pub processing: Vec<(usize, String)>,
    packed: bytes::Bytes,
}

/// The decoded replies of one cycle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reading<'a> {
    pub paused: bool,
    /// The raw heartbeat value per planned worker (`None`: no such string key), borrowed from
    /// the bytes read.
    pub heartbeats: Vec<Option<&'a [u8]>>,
    pub queue_len: Vec<u64>,
    pub dead_len: Vec<u64>,
    /// Summed over the queue's processing lists.
    pub processing_len: Vec<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplyError {
    #[error("expected {expected} replies, got {got}")]
    Count { expected: usize, got: usize },
    #[error("MGET answered {0}, not an array")]
    NotArray(String),
}

impl Plan {
    /// Registered workers first, in registry order, then discovered ones by name.
    pub fn new(registry: &[WorkerSpec], discovered: &Discovered) -> Self {
        let mut queues: Vec<String> = Vec::new();
        let mut queue_index: HashMap<String, usize> = HashMap::new();
        let mut queue_of = |q: &str| -> usize {
            *queue_index.entry(q.to_string()).or_insert_with(|| {
                queues.push(q.to_string());
                queues.len() - 1
            })
        };
        let mut workers: Vec<PlannedWorker> = registry
            .iter()
            .map(|spec| PlannedWorker {
                name: spec.name.clone(),
                kind: Some(spec.kind),
                queue: spec.queue.as_deref().map(&mut queue_of),
                registered: true,
            })
            .collect();
        let registered: std::collections::HashSet<&str> =
            registry.iter().map(|s| s.name.as_str()).collect();
        // An unregistered worker is assumed to consume `queue:<its name>`, as render workers do;
        // an empty list reads as 0, so guessing costs one LLEN and shows nothing false.
        for name in discovered
            .workers
            .iter()
            .filter(|n| !registered.contains(n.as_str()))
        {
            workers.push(PlannedWorker {
                name: name.clone(),
                kind: None,
                queue: Some(queue_of(name)),
                registered: false,
            });
        }
        let processing = discovered
            .processing
            .iter()
            .filter_map(|(q, keys)| queue_index.get(q).map(|&i| (i, keys)))
            .flat_map(|(i, keys)| keys.iter().map(move |k| (i, k.clone())))
            .collect();
        let mut plan = Self {
            workers,
            queues,
            processing,
            packed: Default::default(),
        };
        plan.packed = plan.encode().into();
        plan
    }

    /// The cycle's commands in RESP, to send as they are (a handle to the bytes, not a copy).
    pub fn packed(&self) -> bytes::Bytes {
        self.packed.clone()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.each_command(|args| encode(&mut out, args));
        out
    }

    /// Each of the cycle's commands in reply order, as its arguments; the key is always the
    /// second (a Cluster routes each command by it: `collector::cluster`).
    pub fn each_command(&self, mut f: impl FnMut(&[&[u8]])) {
        // A key of the wrong type answers an error; it reads as "nothing there".
        f(&[b"GETRANGE", keys::PAUSED.as_bytes(), b"0", b"1"]);
        // One byte past the limit is enough to know a value is too large.
        let limit = MAX_HEARTBEAT_BYTES.to_string();
        for w in &self.workers {
            let key = keys::heartbeat(&w.name);
            f(&[b"GETRANGE", key.as_bytes(), b"0", limit.as_bytes()]);
        }
        for q in &self.queues {
            f(&[b"LLEN", keys::queue(q).as_bytes()]);
        }
        for q in &self.queues {
            f(&[b"LLEN", keys::dead_letter(q).as_bytes()]);
        }
        for (_, key) in &self.processing {
            f(&[b"LLEN", key.as_bytes()]);
        }
    }

    /// The longest reply the cycle asks for (a heartbeat's `GETRANGE`); anything longer is not
    /// a reply to these commands.
    pub const MAX_REPLY_BYTES: usize = MAX_HEARTBEAT_BYTES + 1;

    /// How many commands a cycle sends.
    pub fn command_count(&self) -> usize {
        self.reply_count()
    }

    fn reply_count(&self) -> usize {
        self.heartbeats_end() + 2 * self.queues.len() + self.processing.len()
    }

    /// How many replies come before the lists' lengths: `queue:paused`'s and the heartbeats'.
    pub fn heartbeats_end(&self) -> usize {
        1 + self.workers.len()
    }

    /// The heartbeat values alone, from the first [`heartbeats_end`](Self::heartbeats_end)
    /// replies (the rest of the cycle may not be read yet).
    pub fn heartbeats<'a>(
        &self,
        replies: impl Iterator<Item = Reply<'a>>,
    ) -> Vec<Option<&'a [u8]>> {
        let mut it = replies.skip(1);
        self.workers.iter().map(|_| heartbeat(it.next())).collect()
    }

    /// Decodes the pipeline's replies. Per-key oddities (a list where a string belongs, a
    /// `WRONGTYPE` error) read as "nothing there"; only a reply of the wrong count or shape fails.
    pub fn read<'a>(
        &self,
        replies: impl ExactSizeIterator<Item = Reply<'a>>,
    ) -> Result<Reading<'a>, ReplyError> {
        if replies.len() != self.reply_count() {
            return Err(ReplyError::Count {
                expected: self.reply_count(),
                got: replies.len(),
            });
        }
        let mut it = replies;
        let mut next = || it.next().unwrap_or(Reply::Nil);
        let paused = matches!(next(), Reply::Bytes(b"1"));
        let heartbeats = self
            .workers
            .iter()
            .map(|_| heartbeat(Some(next())))
            .collect();
        let queue_len = self.queues.iter().map(|_| int(next())).collect();
        let dead_len = self.queues.iter().map(|_| int(next())).collect();
        let mut processing_len = vec![0; self.queues.len()];
        for (q, _) in &self.processing {
            processing_len[*q] += int(next());
        }
        Ok(Reading {
            paused,
            heartbeats,
            queue_len,
            dead_len,
            processing_len,
        })
    }
}

/// `GETRANGE` answers "" for a missing key: an empty value reads as no heartbeat.
fn heartbeat(v: Option<Reply<'_>>) -> Option<&[u8]> {
    match v {
        Some(Reply::Bytes(b)) if !b.is_empty() => Some(b),
        _ => None,
    }
}

fn int(v: Reply<'_>) -> u64 {
    match v {
        Reply::Int(n) => u64::try_from(n).unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::build_snapshot;
    use crate::collector::snapshot::tests::now;
    use shared::registry::default_fleet;
    use shared::status::LinkStatus;

    /// A reply as Redis sends it, owned by the test.
    #[derive(Clone)]
    enum Value {
        Nil,
        Okay,
        Int(i64),
        BulkString(Vec<u8>),
        Error(&'static str),
    }

    fn as_replies(v: &[Value]) -> impl ExactSizeIterator<Item = Reply<'_>> {
        v.iter().map(|v| match v {
            Value::Nil => Reply::Nil,
            Value::Okay => Reply::Bytes(b"OK"),
            Value::Int(n) => Reply::Int(*n),
            Value::BulkString(b) => Reply::Bytes(b),
            Value::Error(e) => Reply::Error(e.as_bytes()),
        })
    }

    fn beat(name: &str, kind: &str, state: &str) -> Value {
        Value::BulkString(
            format!(
                r#"{{"name":"{name}","kind":"{kind}","state":"{state}","ts":"2026-11-23T11:59:55Z","last_job_at":null,"jobs_done":7,"jobs_failed":2}}"#
            )
            .into_bytes(),
        )
    }

    fn discovered() -> Discovered {
        let mut processing = BTreeMap::new();
        processing.insert(
            "image-render".to_string(),
            vec![
                "processing:queue:image-render:a".to_string(),
                "processing:queue:image-render:b".to_string(),
            ],
        );
        processing.insert(
            "elsewhere".to_string(),
            vec!["processing:queue:elsewhere:x".to_string()],
        );
        Discovered {
            workers: vec!["image-render".into(), "zz-new".into()],
            processing,
        }
    }

    #[test]
    fn plan_lists_registered_then_discovered_and_dedups_queues() {
        let plan = Plan::new(&default_fleet(), &discovered());
        let names: Vec<_> = plan.workers.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names.last(), Some(&"zz-new"));
        assert_eq!(
            plan.workers.len(),
            7,
            "image-render is registered, not listed twice"
        );
        assert_eq!(
            plan.queues,
            [
                "music-render",
                "video-render",
                "image-render",
                "insta-render",
                "zz-new"
            ]
        );
        assert_eq!(
            plan.processing.len(),
            2,
            "lists of unwatched queues are not read"
        );
        assert_eq!(plan.reply_count(), 1 + 7 + 10 + 2, "a GETRANGE per worker");
        let cmds = plan.packed().windows(3).filter(|w| w == b"\r\n*").count() + 1;
        assert_eq!(cmds, plan.reply_count());
    }

    #[test]
    fn replies_become_the_contract_snapshot() {
        let plan = Plan::new(&default_fleet(), &discovered());
        let mut replies = vec![
            Value::BulkString(b"1".to_vec()),
            beat("music-render", "render", "busy"),
            // GETRANGE of a missing key.
            Value::BulkString(Vec::new()),
            beat("image-render", "render", "idle"),
                Value::BulkString(b"{garbage".to_vec()),
                Value::BulkString(
                    br#"{"name":"task-watcher","kind":"watcher","state":"trading","ts":"2026-11-23T11:59:59Z","last_job_at":null,"jobs_done":0,"jobs_failed":0,"mode":"trading"}"#.to_vec(),
                ),
            beat("ai_trade", "trader", "market_open"),
            beat("zz-new", "render", "paused"),
        ];
        replies.extend([3, 0, 5, 0, 1].map(Value::Int)); // queue lengths
        replies.extend([0, 0, 2, 0, 0].map(Value::Int)); // dead letters
                                                         // A processing "list" that is really a string answers WRONGTYPE: it counts as empty.
        let wrongtype = Value::Error("WRONGTYPE Operation against a key");
        replies.extend([Value::Int(1), wrongtype]);
        let snap = build_snapshot(&plan, &plan.read(as_replies(&replies)).unwrap(), now());
        assert!(snap.redis_ok && snap.paused);
        assert_eq!(snap.paused_reason.as_deref(), Some("trading"));
        let w = |n: &str| snap.workers.iter().find(|w| w.name == n).unwrap();
        assert_eq!(
            (
                w("music-render").state.as_ref().map(|s| s.as_str()),
                w("music-render").queue_depth
            ),
            (Some("busy"), 3)
        );
        assert_eq!(w("music-render").last_beat_age_s, Some(5));
        assert_eq!(w("music-render").jobs_done, 7);
        assert!(!w("video-render").alive && w("video-render").error.is_none());
        assert_eq!(w("video-render").state, None, "the plan's null");
        assert_eq!(
            (w("image-render").dead_letter, w("image-render").processing),
            (2, 1)
        );
        assert!(!w("insta-render").alive);
        assert!(w("insta-render")
            .error
            .as_deref()
            .unwrap()
            .contains("not JSON"));
        assert_eq!(w("zz-new").kind, WorkerKind::Render);
        assert!(!w("zz-new").registered && w("zz-new").alive);
        let status = |to: &str| snap.links.iter().find(|l| l.to == to).unwrap().status;
        assert_eq!(status("music-render"), LinkStatus::Healthy);
        assert_eq!(status("video-render"), LinkStatus::Down);
        assert_eq!(status("image-render"), LinkStatus::Degraded);
        assert_eq!(status("zz-new"), LinkStatus::Paused);
        assert_eq!(status("nas-stock"), LinkStatus::Healthy);
        assert_eq!(snap.links.len(), 6, "five render links and the trader's");
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let plan = Plan::new(&default_fleet(), &Discovered::default());
        assert!(matches!(
            plan.read(as_replies(&[])),
            Err(ReplyError::Count { .. })
        ));
        let mut replies = vec![Value::Okay];
        replies.extend(std::iter::repeat_n(Value::Int(1), 6));
        replies.extend(std::iter::repeat_n(Value::Int(-3), 8));
        let reading = plan.read(as_replies(&replies)).unwrap();
        assert!(!reading.paused);
        assert!(reading.heartbeats.iter().all(Option::is_none));
        assert!(
            reading.queue_len.iter().all(|&n| n == 0),
            "negative lengths read as 0"
        );
    }

    #[test]
    fn a_heartbeat_cannot_lie() {
        let plan = Plan::new(&default_fleet(), &Discovered::default());
        let stale = br#"{"name":"music-render","kind":"render","state":"idle","ts":"2026-11-23T10:00:00Z","last_job_at":null,"jobs_done":1,"jobs_failed":0}"#;
        let mut replies = vec![
            Value::Nil,
            Value::BulkString(stale.to_vec()),
            beat("image-render", "render", "idle"), // stored under video-render's key
        ];
        replies.extend(std::iter::repeat_n(Value::BulkString(Vec::new()), 4));
        replies.extend(std::iter::repeat_n(Value::Int(0), 8));
        let snap = build_snapshot(&plan, &plan.read(as_replies(&replies)).unwrap(), now());
        let music = &snap.workers[0];
        // A beat two hours old, read once: whether its key has a TTL is asked next cycle (and
        // decides, see snapshot::tests::liveness_never_compares_two_clocks); until then the
        // old ts is said, not trusted.
        assert!(music.alive, "{music:?}");
        assert_eq!(music.last_beat_age_s, Some(7200));
        assert!(music
            .error
            .as_deref()
            .unwrap()
            .contains("7200s behind the server's"));
        let video = &snap.workers[1];
        assert!(!video.alive, "another worker's beat is not this worker's");
        assert!(video
            .error
            .as_deref()
            .unwrap()
            .contains(r#"names "image-render""#));
    }

    #[test]
    fn a_huge_value_is_read_only_up_to_the_limit() {
        let plan = Plan::new(&default_fleet(), &Discovered::default());
        let mut first = Vec::new();
        encode(&mut first, &[b"GETRANGE", b"queue:paused", b"0", b"1"]);
        let beat = b"*4\r\n$8\r\nGETRANGE\r\n$29\r\nworker:music-render:heartbeat\r\n$1\r\n0\r\n$4\r\n8192\r\n";
        assert!(
            plan.packed()[first.len()..].starts_with(beat),
            "GETRANGE key 0 limit"
        );
        let mut replies = vec![
            Value::Nil,
            Value::BulkString(vec![b'x'; MAX_HEARTBEAT_BYTES + 1]),
        ];
        replies.extend(std::iter::repeat_n(Value::BulkString(Vec::new()), 5));
        replies.extend(std::iter::repeat_n(Value::Int(0), 8));
        let snap = build_snapshot(&plan, &plan.read(as_replies(&replies)).unwrap(), now());
        assert!(snap.workers[0]
            .error
            .as_deref()
            .unwrap()
            .contains("too large"));
        assert!(
            snap.workers[1].error.is_none(),
            "missing: no heartbeat, no error"
        );
    }

    #[test]
    fn an_empty_registry_still_reads_the_pause_flag() {
        let plan = Plan::new(&[], &Discovered::default());
        let one = [Value::BulkString(b"1".to_vec())];
        let reading = plan.read(as_replies(&one)).unwrap();
        let snap = build_snapshot(&plan, &reading, now());
        assert!(snap.paused && snap.workers.is_empty() && snap.links.is_empty());
    }
}
