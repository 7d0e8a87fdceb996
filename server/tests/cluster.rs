//! The server on a real three-primary Redis Cluster (SPEC §12), started by
//! `scripts/redis-cluster.sh`: the collector's read — 10,000 workers spread over every slot read
//! back exactly, one round trip per primary; a slot migrated between reads (ASK while it moves,
//! MOVED after) followed, the read after that back to one round trip per primary; discovery
//! scanning every primary; and the server as a user runs it (`REDIS_CLUSTER_NODES`): `/nodes`
//! equal to the same fleet on one Redis, alerts and trends on the Cluster, and what does not run
//! on a Cluster yet (control plane, jobs, schedules) answering so.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use common::cluster::ClusterSet;
use common::heartbeat;
use server::collector::cluster::ClusterReader;
use server::collector::{
    Collector, CollectorConfig, Discovered, Discovery, Plan, Published, Reading,
};
use server::redis_target::{ClusterNodes, SlotMap, Target};
use shared::keys;
use shared::slot::key_slot;

const DEADLINE: Duration = Duration::from_secs(5);

/// What the test wrote for one worker.
struct Written {
    beat: Option<String>,
    queue: u64,
    dead: u64,
    processing: u64,
}

/// The commands that write a fleet, each with its key.
struct Fleet {
    writes: Vec<(String, redis::Cmd)>,
    discovered: Discovered,
    written: HashMap<String, Written>,
}

impl Fleet {
    fn add(&mut self, key: &str, cmd: redis::Cmd) {
        self.writes.push((key.to_string(), cmd));
    }
}

/// `n` workers: most with a heartbeat, queues of 0–3 items, some dead letters, every 50th with
/// two consumers' processing lists; `queue:paused` set. Written to each key's own primary.
async fn write_fleet(set: &ClusterSet, n: usize) -> (Discovered, HashMap<String, Written>) {
    let fleet = fleet(n);
    let map = SlotMap::fetch(&set.addrs(), &client(set), DEADLINE)
        .await
        .unwrap();
    let mut pipes: Vec<redis::Pipeline> = map.primaries.iter().map(|_| redis::pipe()).collect();
    for (key, cmd) in &fleet.writes {
        let at = map.owner(key_slot(key.as_bytes())).unwrap();
        pipes[at].add_command(cmd.clone()).ignore();
    }
    for ((_, port), pipe) in map.primaries.iter().zip(&pipes) {
        // A key sent to the wrong primary would answer MOVED and fail here.
        let () = pipe.query_async(&mut set.node(*port).await).await.unwrap();
    }
    (fleet.discovered, fleet.written)
}

/// The same fleet's commands (see [`write_fleet`]).
fn fleet(n: usize) -> Fleet {
    let mut f = Fleet {
        writes: Vec::new(),
        discovered: Discovered::default(),
        written: HashMap::new(),
    };
    f.add(keys::PAUSED, redis::Cmd::set(keys::PAUSED, "1"));
    for i in 0..n {
        let name = format!("w{i}");
        let beat = (i % 7 != 0).then(|| heartbeat(&name, "render", "idle", 0));
        if let Some(b) = &beat {
            let key = keys::heartbeat(&name);
            f.add(&key, redis::Cmd::set(&key, b));
        }
        let queue = (i % 4) as u64;
        for _ in 0..queue {
            let key = keys::queue(&name);
            f.add(&key, redis::Cmd::rpush(&key, "{}"));
        }
        let dead = if i % 3 == 0 { 2 } else { 0 };
        for _ in 0..dead {
            let key = keys::dead_letter(&name);
            f.add(&key, redis::Cmd::rpush(&key, "{}"));
        }
        let mut processing = 0;
        if i % 50 == 0 {
            let lists: Vec<String> = ["c1", "c2"]
                .iter()
                .map(|c| keys::processing(&name, c))
                .collect();
            for (k, key) in lists.iter().enumerate() {
                for _ in 0..=k {
                    f.add(key, redis::Cmd::rpush(key, "{}"));
                    processing += 1;
                }
            }
            f.discovered.processing.insert(name.clone(), lists);
        }
        f.discovered.workers.push(name.clone());
        f.written.insert(
            name,
            Written {
                beat,
                queue,
                dead,
                processing,
            },
        );
    }
    f.discovered.workers.sort();
    f
}

fn client(set: &ClusterSet) -> redis::Client {
    redis::Client::open(format!("redis://127.0.0.1:{}", set.ports[0])).unwrap()
}

fn reader(set: &ClusterSet) -> ClusterReader {
    ClusterReader::new(set.addrs(), client(set), None, DEADLINE)
}

/// The reading says exactly what was written, worker by worker.
fn check(plan: &Plan, reading: &Reading<'_>, fleet: &HashMap<String, Written>) {
    assert!(reading.paused);
    assert_eq!(reading.heartbeats.len(), fleet.len());
    for (w, beat) in plan.workers.iter().zip(&reading.heartbeats) {
        let written = &fleet[&w.name];
        assert_eq!(
            beat.map(|b| String::from_utf8_lossy(b).into_owned()),
            written.beat,
            "{}",
            w.name
        );
        let q = w.queue.unwrap();
        assert_eq!(reading.queue_len[q], written.queue, "{}", w.name);
        assert_eq!(reading.dead_len[q], written.dead, "{}", w.name);
        assert_eq!(reading.processing_len[q], written.processing, "{}", w.name);
    }
}

async fn read_and_check(
    reader: &mut ClusterReader,
    plan: &Plan,
    fleet: &HashMap<String, Written>,
) -> usize {
    reader.read(plan, DEADLINE).await.unwrap();
    let reading = plan.read(reader.replies()).unwrap();
    check(plan, &reading, fleet);
    reader.round_trips()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_workers_over_every_slot_read_exactly_one_round_trip_per_primary() {
    let set = ClusterSet::start();
    let (discovered, fleet) = write_fleet(&set, 10_000).await;
    let plan = Plan::new(&[], &discovered);
    // The keys really are spread: every primary holds some.
    let mut per_node = BTreeMap::new();
    for port in &set.ports {
        let size: u64 = redis::cmd("DBSIZE")
            .query_async(&mut set.node(*port).await)
            .await
            .unwrap();
        per_node.insert(*port, size);
    }
    assert!(per_node.values().all(|&n| n > 5_000), "{per_node:?}");
    let mut reader = reader(&set);
    assert_eq!(read_and_check(&mut reader, &plan, &fleet).await, 3);
    assert_eq!(reader.primaries().len(), 3);
    // The next read reuses the connections and the split: still one round trip per primary.
    assert_eq!(read_and_check(&mut reader, &plan, &fleet).await, 3);
}

/// `CLUSTER MYID` of the node on `port`.
async fn id_of(set: &ClusterSet, port: u16) -> String {
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(&mut set.node(port).await)
        .await
        .unwrap()
}

async fn setslot(set: &ClusterSet, port: u16, slot: u16, how: &str, id: &str) {
    let () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg(how)
        .arg(id)
        .query_async(&mut set.node(port).await)
        .await
        .unwrap();
}

/// Moves every key of `slot` from the node on `from` to the node on `to`.
async fn migrate_keys(set: &ClusterSet, slot: u16, from: u16, to: u16) {
    let mut src = set.node(from).await;
    let keys: Vec<String> = redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(slot)
        .arg(1000)
        .query_async(&mut src)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let () = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(to)
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("KEYS")
        .arg(&keys)
        .query_async(&mut src)
        .await
        .unwrap();
}

/// `slot` is owned by `to` from now on, as every node is told.
async fn give_slot(set: &ClusterSet, slot: u16, to: u16) {
    let id = id_of(set, to).await;
    setslot(set, to, slot, "NODE", &id).await;
    for port in set.ports.iter().filter(|p| **p != to) {
        setslot(set, *port, slot, "NODE", &id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_migrating_between_reads_is_followed_with_ask_then_moved() {
    let set = ClusterSet::start();
    let (discovered, fleet) = write_fleet(&set, 2_000).await;
    let plan = Plan::new(&[], &discovered);
    let map = SlotMap::fetch(&set.addrs(), &client(&set), DEADLINE)
        .await
        .unwrap();
    let port_of = |key: &str| map.primaries[map.owner(key_slot(key.as_bytes())).unwrap()].1;
    let mut reader = reader(&set);
    assert_eq!(read_and_check(&mut reader, &plan, &fleet).await, 3);

    // w8's heartbeat slot moves from its primary to the next one: ASK while it moves.
    let slot = key_slot(keys::heartbeat("w8").as_bytes());
    let from = port_of(&keys::heartbeat("w8"));
    let to = *set.ports.iter().find(|p| **p != from).unwrap();
    setslot(&set, to, slot, "IMPORTING", &id_of(&set, from).await).await;
    setslot(&set, from, slot, "MIGRATING", &id_of(&set, to).await).await;
    migrate_keys(&set, slot, from, to).await;
    let trips = read_and_check(&mut reader, &plan, &fleet).await;
    assert!(
        trips > 3,
        "the moved keys were asked of their new node: {trips}"
    );
    give_slot(&set, slot, to).await;
    // The slot map is read again after a redirect: back to one round trip per primary.
    assert_eq!(read_and_check(&mut reader, &plan, &fleet).await, 3);
    assert_eq!(read_and_check(&mut reader, &plan, &fleet).await, 3);

    // w11's queue slot moves at once between two reads: the old owner answers MOVED.
    let key = keys::queue("w11");
    let slot = key_slot(key.as_bytes());
    let from = port_of(&key);
    let to = *set.ports.iter().rev().find(|p| **p != from).unwrap();
    setslot(&set, to, slot, "IMPORTING", &id_of(&set, from).await).await;
    setslot(&set, from, slot, "MIGRATING", &id_of(&set, to).await).await;
    migrate_keys(&set, slot, from, to).await;
    give_slot(&set, slot, to).await;
    let trips = read_and_check(&mut reader, &plan, &fleet).await;
    assert!(trips > 3, "the moved keys were re-sent: {trips}");
    assert_eq!(read_and_check(&mut reader, &plan, &fleet).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_that_do_not_answer_are_named() {
    let port = common::free_port();
    let seeds = vec![("127.0.0.1".to_string(), port)];
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut reader = ClusterReader::new(seeds, client, None, Duration::from_millis(300));
    let plan = Plan::new(&[], &Discovered::default());
    let e = reader.read(&plan, DEADLINE).await.unwrap_err().to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_scans_every_primary() {
    let set = ClusterSet::start();
    let (mut written, fleet) = write_fleet(&set, 3_000).await;
    // Discovery finds workers by their heartbeat key; every seventh has none.
    written.workers.retain(|w| fleet[w].beat.is_some());
    let config = fast_collector();
    let target = Target::Cluster(Arc::new(
        ClusterNodes::new(set.addrs(), client(&set), None).unwrap(),
    ));
    let metrics = Arc::new(server::metrics::Metrics::new());
    let (discovery, mut found, _first) = Discovery::new(config, target, metrics);
    // No collector: discovery's calls run back to back.
    let (_, cycles) = tokio::sync::watch::channel(Arc::new(Published::new(
        shared::NodesSnapshot::empty(chrono::Utc::now()),
    )));
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(discovery.run(stop.clone(), cycles));
    let seen = tokio::time::timeout(
        Duration::from_secs(20),
        found.wait_for(|d| !d.workers.is_empty()),
    )
    .await
    .expect("a discovery pass")
    .unwrap()
    .clone();
    stop.cancel();
    task.await.unwrap();
    assert_eq!(seen.workers.len(), written.workers.len());
    assert!(*seen == written, "discovery found other workers or lists");
}

/// The collector's and discovery's settings for a test: fast, no registered workers.
fn fast_collector() -> Arc<CollectorConfig> {
    Arc::new(CollectorConfig {
        collect_interval: Duration::from_millis(200),
        discover_interval: Duration::from_millis(200),
        redis_timeout: DEADLINE,
        forget_after: Duration::from_secs(60),
        workers: Vec::new(),
        tls: None,
    })
}

/// Discovery and the collector run on `target` until they publish `workers` workers read from
/// Redis; that snapshot, and the collector's round trips then.
async fn collect(target: Target, workers: usize) -> (serde_json::Value, i64) {
    let config = fast_collector();
    let metrics = Arc::new(server::metrics::Metrics::new());
    let (discovery, discovered, first_pass) =
        Discovery::new(config.clone(), target.clone(), metrics.clone());
    let (collector, mut nodes, _agents) =
        Collector::new(config, target, discovered, metrics.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let tasks = [
        tokio::spawn(discovery.run(stop.clone(), nodes.clone())),
        tokio::spawn(collector.run(stop.clone(), first_pass)),
    ];
    let published = tokio::time::timeout(
        Duration::from_secs(20),
        nodes.wait_for(|p| p.snapshot.redis_ok && p.snapshot.workers.len() == workers),
    )
    .await
    .expect("a snapshot of every worker")
    .unwrap()
    .snapshot
    .clone();
    let trips = metrics.round_trips.get();
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    (timeless(serde_json::to_value(&*published).unwrap()), trips)
}

/// `v` without what depends on the moment it was read (ages, the time it was made).
fn timeless(mut v: serde_json::Value) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| !k.ends_with("_age_s") && k != "generated_at");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// A Cluster and one Redis holding the same fleet of `n` workers; how many of them beat.
async fn the_fleet_twice(n: usize) -> (ClusterSet, common::Redis, usize) {
    let set = ClusterSet::start();
    let one = common::Redis::start().await;
    let f = fleet(n);
    let mut pipe = redis::pipe();
    for (_, cmd) in &f.writes {
        pipe.add_command(cmd.clone()).ignore();
    }
    let () = pipe.query_async(&mut one.conn().await).await.unwrap();
    write_fleet(&set, n).await;
    let workers = f.written.values().filter(|w| w.beat.is_some()).count();
    (set, one, workers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_on_a_cluster_publishes_what_one_redis_gives() {
    let (set, one, workers) = the_fleet_twice(2_000).await;

    let single = Target::from(redis::Client::open(one.url()).unwrap());
    let cluster = Target::Cluster(Arc::new(
        ClusterNodes::new(set.addrs(), client(&set), None).unwrap(),
    ));
    let (on_one, _) = collect(single, workers).await;
    let (on_cluster, trips) = collect(cluster, workers).await;
    assert_eq!(trips, 3, "one round trip per primary");
    assert!(on_one == on_cluster, "the same snapshot on both");
    assert_eq!(on_cluster["workers"].as_array().unwrap().len(), workers);
}

/// The server as a user runs it on a Cluster (`REDIS_CLUSTER_NODES`): `/nodes` equal to the same
/// fleet on one Redis, one round trip per primary, alerts told once, trends kept, the acting
/// half's pages and API answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_on_a_cluster_serves_the_fleet_one_redis_would() {
    let (set, one, workers) = the_fleet_twice(2_000).await;

    let tg = common::FakeTelegram::start().await;
    let mut config = common::alerting_config(&client_url(&set), tg.channel());
    config.cluster = Some(set.addrs());
    let on_cluster = common::Server::start(config).await;
    let on_one = common::Server::start(common::Server::fast_config(&one.url())).await;
    let every = |s: &shared::NodesSnapshot| {
        s.redis_ok && s.workers.iter().filter(|w| w.name.starts_with('w')).count() == workers
    };
    on_cluster
        .wait_for("every worker on the Cluster", every)
        .await;
    on_one.wait_for("every worker on one Redis", every).await;
    assert!(
        nodes_of(&on_cluster).await == nodes_of(&on_one).await,
        "the same /nodes on the Cluster as on one Redis"
    );
    assert_eq!(
        on_cluster
            .metric("agent_office_collector_round_trips")
            .await,
        3.0
    );

    // Alerts run on the Cluster: w8 goes down, told once.
    let map = SlotMap::fetch(&set.addrs(), &client(&set), DEADLINE)
        .await
        .unwrap();
    let owner = |key: &str| map.primaries[map.owner(key_slot(key.as_bytes())).unwrap()].1;
    let beat = keys::heartbeat("w8");
    let () = redis::cmd("DEL")
        .arg(&beat)
        .query_async(&mut set.node(owner(&beat)).await)
        .await
        .unwrap();
    tg.expect_once("[w8] worker down").await;
    // Trends too: the trends lease is held on the primary of its slot.
    let lease = "agent-office:{trends}:lease";
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let held: bool = redis::cmd("EXISTS")
            .arg(lease)
            .query_async(&mut set.node(owner(lease)).await)
            .await
            .unwrap();
        if held {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no trends lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The acting half answers on the Cluster too (`agent/tests/cluster.rs` drives it with a
    // real agent: commands, jobs, queue actions, schedules).
    assert_eq!(on_cluster.get("/api/jobs").await.status(), 200);
    assert_eq!(on_cluster.get("/api/schedules").await.status(), 200);
    assert_eq!(on_cluster.get("/schedules").await.status(), 200);
}

/// `GET /api/agent-office/nodes`, without what depends on the moment.
async fn nodes_of(s: &common::Server) -> serde_json::Value {
    timeless(s.get("/api/agent-office/nodes").await.json().await.unwrap())
}

fn client_url(set: &ClusterSet) -> String {
    format!("redis://127.0.0.1:{}", set.ports[0])
}

/// `REDIS_CLUSTER_NODES` naming a Redis that is no Cluster node stops the server at start,
/// naming it, never a silently empty dashboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_is_no_cluster_node_stops_the_server_naming_it() {
    let one = common::Redis::start().await;
    let mut config = common::Server::fast_config(&one.url());
    config.cluster = Some(vec![("127.0.0.1".to_string(), one.port)]);
    let text = common::refused_at_start(config).await;
    assert!(
        text.contains(&format!("REDIS_CLUSTER_NODES 127.0.0.1:{}", one.port))
            && text.contains("not a node of a Redis Cluster"),
        "{text}"
    );
}
