//! A fleet of 100,000 workers against a real redis-server: the whole snapshot keeps Contract 2,
//! and the filters, paging and summary of `/api/agent-office/nodes` answer correctly.

mod common;

use std::time::{Duration, Instant};

use common::{Redis, Server};
use serde_json::Value;

const N: usize = 100_000;

fn name(i: usize) -> String {
    format!("fleet-{:03}-{:02}", i / 100, i % 100)
}

/// Every tenth worker down (a stale beat without a TTL), every 50th with a dead letter
/// (degraded), every 20th paused; the rest idle. Written in pipelined batches.
async fn populate(redis: &Redis) {
    let mut conn = redis.conn().await;
    for chunk in (0..N).collect::<Vec<_>>().chunks(10_000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            let n = name(i);
            let (state, age) = match i {
                i if i % 10 == 9 => ("idle", 7200),
                i if i % 20 == 0 => ("paused", 0),
                _ => ("idle", 0),
            };
            let beat = common::heartbeat(&n, "render", state, age);
            let key = format!("worker:{n}:heartbeat");
            if age > 0 {
                pipe.cmd("SET").arg(&key).arg(beat).ignore();
            } else {
                pipe.cmd("SET")
                    .arg(&key)
                    .arg(beat)
                    .arg("EX")
                    .arg(600)
                    .ignore();
            }
            if i % 50 == 1 {
                pipe.cmd("RPUSH")
                    .arg(format!("dead_letter:queue:{n}"))
                    .arg("job")
                    .ignore();
            }
        }
        pipe.query_async::<()>(&mut conn).await.unwrap();
    }
}

/// What `populate` wrote, counted the way the server must count it.
fn expected(status: &str) -> u64 {
    (0..N)
        .filter(|&i| {
            let s = if i % 10 == 9 {
                "down"
            } else if i % 20 == 0 {
                "paused"
            } else if i % 50 == 1 {
                "degraded"
            } else {
                "healthy"
            };
            s == status
        })
        .count() as u64
}

async fn get_json(server: &Server, path: &str) -> (u16, Value) {
    let r = server.get(path).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn names(v: &Value) -> Vec<String> {
    v["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_workers_filter_page_and_add_up() {
    let redis = Redis::start().await;
    populate(&redis).await;
    let mut config = Server::fast_config(&redis.url());
    // A debug build decodes 400,000 replies a cycle: give it time, and no back-to-back cycles.
    config.collect_interval = Duration::from_secs(1);
    config.redis_timeout = Duration::from_secs(20);
    config.discover_interval = Duration::from_secs(1);
    let server = Server::start(config).await;

    let registered = 6; // the default registry's fleet
    let deadline = Instant::now() + Duration::from_secs(180);
    let summary = loop {
        let (_, page) = get_json(&server, "/api/agent-office/nodes?limit=1").await;
        // Every worker listed, and the two-hour-old beats in keys without a TTL read as down
        // (their TTL is asked in the cycles after they are first seen).
        let down = page["summary"]["by_status"]["down"].as_u64().unwrap_or(0);
        if page["summary"]["total"].as_u64() == Some((N + registered) as u64)
            && down == expected("down") + registered as u64
        {
            break page["summary"].clone();
        }
        assert!(Instant::now() < deadline, "not all workers listed: {page}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // The summary adds up, and its counts are the ones written (the registry's six workers
    // have no heartbeat here: down).
    let by = |s: &str| summary["by_status"][s].as_u64().unwrap_or(0);
    assert_eq!(by("down"), expected("down") + registered as u64);
    assert_eq!(by("paused"), expected("paused"));
    assert_eq!(by("degraded"), expected("degraded"));
    assert_eq!(by("healthy"), expected("healthy"));
    let sum: u64 = ["down", "paused", "degraded", "healthy"]
        .iter()
        .map(|s| by(s))
        .sum();
    assert_eq!(sum, summary["total"].as_u64().unwrap());
    assert_eq!(
        summary["alive"].as_u64().unwrap(),
        N as u64 - expected("down")
    );
    let groups: u64 = summary["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .sum();
    assert_eq!(groups, summary["total"].as_u64().unwrap());

    // Filters: status, and a page of it.
    let (_, down) = get_json(&server, "/api/agent-office/nodes?status=down&limit=25").await;
    assert_eq!(down["workers"].as_array().unwrap().len(), 25);
    assert!(down["workers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["alive"] == false));
    assert_eq!(
        down["page"]["matched"],
        expected("down") + registered as u64
    );

    // A name prefix (case does not matter), in name order.
    let (_, pre) = get_json(&server, "/api/agent-office/nodes?q=FLEET-042-&order=name").await;
    let want: Vec<String> = (4200..4300).map(name).collect();
    assert_eq!(names(&pre), want);
    assert_eq!(pre["page"]["matched"], 100);

    // A group, and problems first: its down worker (…-09) leads, then degraded, paused.
    let (_, g) = get_json(
        &server,
        "/api/agent-office/nodes?group=fleet-777&order=problems&limit=3",
    )
    .await;
    let first = names(&g);
    assert_eq!(first[0], "fleet-777-09", "{first:?}");
    assert_eq!(g["page"]["matched"], 100);

    // Paging walks the fleet without gaps or repeats.
    let (_, a) = get_json(
        &server,
        "/api/agent-office/nodes?order=name&limit=1000&offset=5000",
    )
    .await;
    let (_, b) = get_json(
        &server,
        "/api/agent-office/nodes?order=name&limit=1000&offset=6000",
    )
    .await;
    let (a, b) = (names(&a), names(&b));
    assert_eq!(a.len() + b.len(), 2000);
    assert!(a.last().unwrap() < b.first().unwrap());
    let (_, tail) = get_json(
        &server,
        "/api/agent-office/nodes?order=name&limit=1000&offset=99999",
    )
    .await;
    assert_eq!(
        tail["workers"].as_array().unwrap().len(),
        7,
        "the last 7 of 100,006"
    );

    // A bad parameter is a clear 400, never an unfiltered answer.
    let (code, err) = get_json(&server, "/api/agent-office/nodes?status=dead").await;
    assert_eq!(code, 400);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("healthy, paused, degraded, down"),
        "{err}"
    );

    // Existing clients still get every worker, in Contract 2's shape.
    let (code, whole) = get_json(&server, "/api/agent-office/nodes").await;
    assert_eq!(code, 200);
    assert_eq!(whole["workers"].as_array().unwrap().len(), N + registered);
    assert!(whole.get("page").is_none());
    for field in ["redis_ok", "paused", "generated_at", "links", "summary"] {
        assert!(whole.get(field).is_some(), "{field}");
    }
}
