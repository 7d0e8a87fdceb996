//! Trends (SPEC §11): a worker whose counters grow by known amounts, and reset once (a
//! restart), gives exact growth in `/api/series`; two replicas write one series, not two; the
//! series outlive the servers.

mod common;

use std::time::{Duration, Instant};

use common::{set_beat, Redis, Server};
use serde_json::Value;

fn beat(done: u64, failed: u64) -> String {
    serde_json::json!({
        "name": "image-render", "kind": "render", "state": "busy",
        "ts": shared::time::format_ts(chrono::Utc::now()),
        "last_job_at": null, "jobs_done": done, "jobs_failed": failed,
    })
    .to_string()
}

/// The sums of `done` and `failed` over a series' points.
async fn sums(server: &Server, query: &str) -> (u64, u64, usize) {
    let v: Value = server
        .get(&format!("/api/series?{query}"))
        .await
        .json()
        .await
        .unwrap();
    let points = v["points"].as_array().cloned().unwrap_or_default();
    let sum = |f: &str| points.iter().map(|p| p[f].as_u64().unwrap()).sum();
    (sum("done"), sum("failed"), points.len())
}

/// The sums of `done` and `failed` over a ring as Redis holds it.
async fn stored(c: &mut redis::aio::MultiplexedConnection, key: &str) -> (u64, u64) {
    let ring: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(c).await.unwrap();
    let ring = ring.unwrap_or_default();
    assert!(
        ring.is_empty() || ring.len() == 96 * 24 + 1,
        "a full ring: {}",
        ring.len()
    );
    ring.chunks_exact(24)
        .filter_map(|b| server::trends::fold::Point::from_bytes(b, shared::series::Range::Day))
        .fold((0, 0), |(d, f), p| (d + p.done, f + p.failed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_fold_into_exact_steps_once_across_replicas_and_restarts() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    let a = Server::start(Server::fast_config(&redis.url())).await;
    let b = Server::start(Server::fast_config(&redis.url())).await;
    // 10 is the baseline; then +5, a restart to 3 (+3), +5: 13 done; failures 1 → 2 → 0 → 1: 1 + 0 + 1
    for (done, failed) in [(10, 1), (15, 2), (3, 0), (8, 1)] {
        set_beat(&mut c, "image-render", &beat(done, failed)).await;
        a.wait_for("the beat", |s| {
            s.workers
                .iter()
                .any(|w| w.name == "image-render" && w.jobs_done == done)
        })
        .await;
        b.wait_for("the beat", |s| {
            s.workers
                .iter()
                .any(|w| w.name == "image-render" && w.jobs_done == done)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The holder writes every 10 s: wait for the writes in Redis, then one more write for any
    // double.
    let key = "agent-office:{trends}:ring:24h:w:image-render";
    let deadline = Instant::now() + Duration::from_secs(25);
    while stored(&mut c, key).await.0 < 13 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(server::trends::FLUSH_EVERY + Duration::from_secs(1)).await;
    assert_eq!(
        stored(&mut c, key).await,
        (13, 2),
        "two replicas, one series in Redis"
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        ttl > 86_000 && ttl <= 86_400,
        "lives as long as its range: {ttl}"
    );
    let got = sums(&a, "worker=image-render&range=24h").await;
    assert_eq!((got.0, got.1), (13, 2), "two replicas, one series: {got:?}");
    assert_eq!(sums(&b, "group=image&range=24h").await.0, 13);
    assert_eq!(sums(&a, "range=24h").await.0, 13, "the fleet");
    let (done_1h, _, n) = sums(&a, "worker=image-render&range=1h").await;
    assert_eq!(done_1h, 13);
    assert!((1..=2).contains(&n));
    let v: Value = a
        .get("/api/series?worker=image-render")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["step_s"], 60, "1h by default, in minutes");
    assert!(v["points"][0]["alive"].as_f64().unwrap() > 0.9);
    assert_eq!(a.get("/api/series?range=7d").await.status(), 400);
    assert_eq!(a.get("/api/series?worker=a&group=b").await.status(), 400);
    assert_eq!(a.get("/api/series?worker=a%20b").await.status(), 400);
    // the series live in Redis: a new server shows them at once
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = Server::start(Server::fast_config(&redis.url())).await;
    assert_eq!(sums(&fresh, "worker=image-render&range=24h").await.0, 13);
}

/// The cards' sparklines come from memory at once; a worker's page draws its series as SVG
/// without JavaScript and marks its alerts on the time axis and in a list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparklines_and_the_worker_page_with_its_alerts_marked() {
    let redis = Redis::start().await;
    let tg = common::FakeTelegram::start().await;
    let mut c = redis.conn().await;
    let a = Server::start(common::alerting_config(&redis.url(), tg.channel())).await;
    for done in [10, 14] {
        set_beat(&mut c, "image-render", &beat(done, 1)).await;
        a.wait_for("the beat", |s| {
            s.workers
                .iter()
                .any(|w| w.name == "image-render" && w.jobs_done == done && w.alive)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let sparks: Value = a
        .get("/api/sparklines?q=image-render")
        .await
        .json()
        .await
        .unwrap();
    let done = &sparks["workers"]["image-render"]["done"];
    assert_eq!(done.as_array().map(Vec::len), Some(60), "{sparks}");
    let sum: u64 = done
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(sum, 4, "{sparks}");
    assert!(
        sparks["workers"].get("video-render").is_none(),
        "idle workers are left out: {sparks}"
    );
    assert_eq!(a.get("/api/sparklines?limit=x").await.status(), 400);

    // It goes down: the alert is told, and drawn on its page.
    let _: () = redis::AsyncCommands::del(&mut c, "worker:image-render:heartbeat")
        .await
        .unwrap();
    tg.expect_once("[image-render] worker down").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = a
            .get("/infra/worker/image-render")
            .await
            .text()
            .await
            .unwrap();
        if page.contains("alerts-in-range\"") || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        page.contains("chart chart-jobs"),
        "the chart is in the HTML"
    );
    assert!(page.contains("class=\"done\""), "with its bars");
    assert!(
        page.contains("4 done, 0 failed") || page.contains("4 done, 1 failed"),
        "the step's numbers as a tooltip"
    );
    assert!(
        page.contains("class=\"mark\""),
        "the alert on the time axis"
    );
    assert!(
        page.contains("<ul class=\"alerts-in-range\"><li>"),
        "and listed"
    );
    assert!(page.contains("[image-render] worker down"));
    let day = a
        .get("/infra/worker/image-render?range=30d")
        .await
        .text()
        .await
        .unwrap();
    assert!(day.contains("data-range=\"30d\""));
    let stranger = a.get("/infra/worker/no%20such").await.text().await.unwrap();
    assert!(
        stranger.contains("chart-empty"),
        "a name no worker can have reads nothing"
    );
}
