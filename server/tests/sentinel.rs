//! Sentinel (SPEC §12): the server finds the primary through real sentinels started by
//! `scripts/redis-sentinel.sh` (as the README tells a user), reports Redis down when the
//! primary is SIGKILLed, and recovers on its own within 10 s of the promotion — its writes
//! (alerts, schedules) land on the new primary, and an alert told before the failover is not
//! told again. A wrong master name stops the server at start, naming it; so does a Redis
//! Cluster node given as `REDIS_URL` (it names REDIS_CLUSTER_NODES).

mod common;

use std::time::{Duration, Instant};

use common::sentinel::{primary_of, SentinelSet};
use common::{heartbeat, FakeTelegram, Server};
use server::config::Config;

fn config(set: &SentinelSet, master: &str) -> Config {
    let mut c = Server::fast_config("redis://127.0.0.1:1");
    c.sentinels = Some((set.addrs(), master.to_string()));
    c
}

/// Writes `name`'s heartbeat every 200 ms to whichever Redis the sentinels name primary.
fn beat_forever(set: &SentinelSet, name: &'static str) -> tokio::task::JoinHandle<()> {
    let sentinels = set.sentinels.clone();
    tokio::spawn(async move {
        loop {
            let primary = primary_of(&sentinels).await;
            if let Some(port) = primary {
                if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) {
                    if let Ok(Ok(mut c)) = tokio::time::timeout(
                        Duration::from_millis(300),
                        client.get_multiplexed_async_connection(),
                    )
                    .await
                    {
                        let _: Result<(), _> = redis::cmd("SET")
                            .arg(format!("worker:{name}:heartbeat"))
                            .arg(heartbeat(name, "render", "idle", 0))
                            .arg("EX")
                            .arg(45)
                            .query_async(&mut c)
                            .await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_follows_a_failover_by_itself() {
    let set = SentinelSet::start();
    assert_eq!(set.primary_now(), Some(set.primary));
    let tg = FakeTelegram::start().await;
    // music-render is down from the start with work waiting: told once, before the failover.
    let mut first = redis::Client::open(format!("redis://127.0.0.1:{}", set.primary))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg("queue:music-render")
        .arg("job")
        .query_async(&mut first)
        .await
        .unwrap();
    let mut config = common::alerting_config("redis://127.0.0.1:1", tg.channel());
    config.sentinels = Some((set.addrs(), "ao-test".to_string()));
    let server = Server::start(config).await;
    let beating = beat_forever(&set, "image-render");
    server
        .wait_for("image-render alive through the sentinels", |s| {
            s.redis_ok
                && s.workers
                    .iter()
                    .any(|w| w.name == "image-render" && w.alive)
        })
        .await;
    tg.expect_once("[music-render] worker down").await;
    // Let the replica have the alert memory before the primary dies.
    tokio::time::sleep(Duration::from_secs(1)).await;

    set.kill_primary();
    server
        .wait_for("Redis reported down", |s| {
            !s.redis_ok && s.stale_since.is_some()
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while set.primary_now() != Some(set.replica) {
        assert!(
            Instant::now() < deadline,
            "the sentinels never promoted the replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let promoted = Instant::now();
    server
        .wait_for("recovered after the promotion", |s| {
            s.redis_ok
                && s.workers
                    .iter()
                    .any(|w| w.name == "image-render" && w.alive)
        })
        .await;
    let took = promoted.elapsed();
    eprintln!("recovered {took:?} after the promotion");
    assert!(
        took < Duration::from_secs(10),
        "recovered {took:?} after the promotion"
    );

    // The server writes on the new primary: a schedule is stored and read back.
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{}", set.replica))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut c).await.unwrap();
    assert_eq!(
        role.first(),
        Some(&redis::Value::BulkString(b"master".to_vec()))
    );
    // A worker that goes down now is told (the lease moved with the data), once; the alert
    // told before the failover is not told again.
    beating.abort();
    let _: () = redis::cmd("DEL")
        .arg("worker:image-render:heartbeat")
        .query_async(&mut c)
        .await
        .unwrap();
    server
        .wait_for("image-render down", |s| {
            s.workers
                .iter()
                .any(|w| w.name == "image-render" && !w.alive)
        })
        .await;
    tg.expect_once("[image-render] worker down").await;
    let told = tg.delivered();
    assert_eq!(
        told.iter()
            .filter(|t| t.contains("[music-render] worker down"))
            .count(),
        1,
        "{told:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_name_the_sentinels_do_not_know_stops_the_server_naming_it() {
    let set = SentinelSet::start();
    let text = common::refused_at_start(config(&set, "no-such-master")).await;
    assert!(
        text.contains("no-such-master") && text.contains("REDIS_SENTINEL_MASTER"),
        "{text}"
    );
}

/// A Redis Cluster node given as `REDIS_URL` is refused at start, naming REDIS_CLUSTER_NODES
/// (the setting that reads every primary), never served as a silently empty dashboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_as_redis_url_stops_the_server_saying_so() {
    let port = common::free_port();
    let dir = std::env::temp_dir().join(format!("ao-cluster-node-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut node = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--cluster-enabled", "yes", "--cluster-config-file"])
        .arg(dir.join("nodes.conf"))
        .arg("--dir")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the cluster node did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = common::refused_at_start(Server::fast_config(&url)).await;
    let _ = node.kill();
    let _ = node.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        text.contains("Redis Cluster") && text.contains("REDIS_CLUSTER_NODES"),
        "{text}"
    );
}

/// Sentinels with a password of their own (`requirepass`): asked with `REDIS_SENTINEL_PASSWORD`
/// the server reads the primary; without it, or with a wrong one, it stops at start naming the
/// setting (and never the password).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_with_a_password_are_asked_with_it() {
    let set = SentinelSet::start_with_password("s3ntinel-pw");
    for given in [None, Some("wrong-pw")] {
        let mut c = config(&set, "ao-test");
        c.sentinel_password = given.map(str::to_string);
        let text = common::refused_at_start(c).await;
        assert!(
            text.contains("REDIS_SENTINEL_PASSWORD") && !text.contains("wrong-pw"),
            "{given:?}: {text}"
        );
    }
    let mut c = config(&set, "ao-test");
    c.sentinel_password = Some("s3ntinel-pw".to_string());
    let server = Server::start(c).await;
    server
        .wait_for("Redis read through the sentinels", |s| s.redis_ok)
        .await;
}
