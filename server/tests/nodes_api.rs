//! Contract 2 end to end: real redis-server, real server, HTTP answers checked field by field.

mod common;

use std::io::Read;

use common::{heartbeat, one_idle_worker, set_beat, Redis, Server};
use redis::AsyncCommands;
use shared::{LinkStatus, WorkerKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_of_the_contract_reads_back_field_by_field() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    // healthy and busy, with work queued and in flight on two consumers
    set_beat(
        &mut c,
        "music-render",
        &heartbeat("music-render", "render", "busy", 3),
    )
    .await;
    let _: () = c
        .rpush("queue:music-render", &["a", "b", "c", "d"])
        .await
        .unwrap();
    let _: () = c
        .rpush("processing:queue:music-render:host-1", "e")
        .await
        .unwrap();
    let _: () = c
        .rpush("processing:queue:music-render:host-2", &["f", "g"])
        .await
        .unwrap();
    // video-render: no heartbeat at all → down
    // image-render paused (the global flag is set by the watcher)
    set_beat(
        &mut c,
        "image-render",
        &heartbeat("image-render", "render", "paused", 1),
    )
    .await;
    let _: () = c.set_ex("queue:paused", "1", 30).await.unwrap();
    // insta-render idle with dead letters → degraded
    set_beat(
        &mut c,
        "insta-render",
        &heartbeat("insta-render", "render", "idle", 2),
    )
    .await;
    let _: () = c
        .rpush("dead_letter:queue:insta-render", &["x", "y", "z"])
        .await
        .unwrap();
    // the watcher says why it paused; the trader is open
    let watcher = r#"{"name":"task-watcher","kind":"watcher","state":"trading","ts":"TS","last_job_at":null,"jobs_done":0,"jobs_failed":0,"mode":"earnings"}"#
        .replace("TS", &shared::time::format_ts(chrono::Utc::now()));
    set_beat(&mut c, "task-watcher", &watcher).await;
    set_beat(
        &mut c,
        "ai_trade",
        &heartbeat("ai_trade", "trader", "market_open", 4),
    )
    .await;
    // unregistered workers: one valid, one garbage, one huge, one of the wrong key type
    set_beat(&mut c, "gpu-7", &heartbeat("gpu-7", "render", "idle", 0)).await;
    set_beat(&mut c, "broken", "{{{ not json").await;
    set_beat(&mut c, "huge", &"x".repeat(100_000)).await;
    let _: () = c.rpush("worker:listy:heartbeat", "oops").await.unwrap();
    // noise the collector must ignore
    let _: () = c
        .set("queue:video-render", "a string where a list belongs")
        .await
        .unwrap();

    let server = Server::start(Server::fast_config(&redis.url())).await;
    let snap = server
        .wait_for("discovered workers", |s| {
            s.redis_ok && s.workers.len() == 10
        })
        .await;

    assert!(snap.paused);
    assert_eq!(snap.paused_reason.as_deref(), Some("earnings"));
    assert!(snap.generated_at.ends_with('Z'));
    assert_eq!(snap.stale_since, None);
    let w = |n: &str| {
        snap.workers
            .iter()
            .find(|w| w.name == n)
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    let link = |to: &str| snap.links.iter().find(|l| l.to == to).map(|l| l.status);

    let music = w("music-render");
    assert!(music.alive && music.registered);
    assert_eq!(
        (music.kind, music.state.as_ref().map(|s| s.as_str())),
        (WorkerKind::Render, Some("busy"))
    );
    assert_eq!(
        (music.queue_depth, music.processing, music.dead_letter),
        (4, 3, 0)
    );
    assert_eq!((music.jobs_done, music.jobs_failed), (42, 1));
    assert_eq!(music.last_job_at.as_deref(), Some("2026-11-23T10:00:00Z"));
    assert!(
        matches!(music.last_beat_age_s, Some(3..=5)),
        "{:?}",
        music.last_beat_age_s
    );
    assert_eq!(link("music-render"), Some(LinkStatus::Healthy));

    let video = w("video-render");
    assert!(!video.alive && video.error.is_none());
    assert_eq!(
        (
            video.state.as_ref(),
            video.last_beat_age_s,
            video.queue_depth
        ),
        (None, None, 0),
        "the plan's nulls for a worker without a heartbeat"
    );
    assert_eq!(link("video-render"), Some(LinkStatus::Down));

    assert_eq!(w("image-render").state, Some("paused".into()));
    assert_eq!(link("image-render"), Some(LinkStatus::Paused));
    assert_eq!(w("insta-render").dead_letter, 3);
    assert_eq!(link("insta-render"), Some(LinkStatus::Degraded));

    let watcher = w("task-watcher");
    assert_eq!(
        (watcher.kind, watcher.mode.as_deref()),
        (WorkerKind::Watcher, Some("earnings"))
    );
    assert!(snap
        .links
        .iter()
        .all(|l| l.from != "task-watcher" && l.to != "task-watcher"));
    let trader = snap.links.iter().find(|l| l.from == "ai_trade").unwrap();
    assert_eq!(
        (trader.to.as_str(), trader.status),
        ("nas-stock", LinkStatus::Healthy)
    );

    let gpu = w("gpu-7");
    assert!(gpu.alive && !gpu.registered);
    assert_eq!(link("gpu-7"), Some(LinkStatus::Healthy));
    let broken = w("broken");
    assert!(!broken.alive && broken.error.as_deref().unwrap().contains("not JSON"));
    assert_eq!(broken.kind, WorkerKind::Unknown);
    assert!(w("huge").error.as_deref().unwrap().contains("limit"));
    assert!(!w("listy").alive);

    // The same document, byte for byte, as the raw JSON the contract fixes.
    let raw: serde_json::Value = server
        .get("/api/agent-office/nodes")
        .await
        .json()
        .await
        .unwrap();
    let first = &raw["workers"][0];
    for field in [
        "name",
        "kind",
        "alive",
        "state",
        "last_beat_age_s",
        "queue_depth",
        "dead_letter",
        "processing",
        "jobs_done",
        "jobs_failed",
        "last_job_at",
    ] {
        assert!(first.get(field).is_some(), "worker field {field} missing");
    }
    let video = raw["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "video-render")
        .unwrap();
    assert!(
        video["state"].is_null() && video["last_beat_age_s"].is_null(),
        "{video}"
    );
    assert_eq!(raw["links"][0]["type"], "redis-queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_heartbeat_shows_without_restart() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    let server = Server::start(Server::fast_config(&redis.url())).await;
    server.wait_for("redis", |s| s.redis_ok).await;
    set_beat(
        &mut c,
        "image-render",
        &heartbeat("image-render", "render", "busy", 0),
    )
    .await;
    server
        .wait_for("image-render busy", |s| {
            s.workers
                .iter()
                .any(|w| w.name == "image-render" && w.state == Some("busy".into()))
        })
        .await;
    let _: () = c.del("worker:image-render:heartbeat").await.unwrap();
    server
        .wait_for("image-render down", |s| {
            s.workers
                .iter()
                .any(|w| w.name == "image-render" && !w.alive)
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_and_coming_back_is_seen_by_the_same_process() {
    let mut redis = Redis::start().await;
    let mut c = redis.conn().await;
    set_beat(
        &mut c,
        "ai_trade",
        &heartbeat("ai_trade", "trader", "market_closed", 0),
    )
    .await;
    let server = Server::start(Server::fast_config(&redis.url())).await;
    let before = server.wait_for("redis up", |s| s.redis_ok).await;
    assert_eq!(server.get("/readyz").await.status(), 200);

    redis.stop();
    let stale = server.wait_for("redis down", |s| !s.redis_ok).await;
    let since = stale
        .stale_since
        .clone()
        .expect("stale_since is set while Redis is away");
    assert!(
        since >= before.generated_at,
        "stale since the last good read"
    );
    assert!(
        stale
            .workers
            .iter()
            .any(|w| w.name == "ai_trade" && w.alive),
        "last good data kept"
    );
    assert_eq!(server.get("/readyz").await.status(), 503);
    assert_eq!(server.get("/healthz").await.status(), 200);

    redis.restart().await;
    let mut c = redis.conn().await;
    set_beat(
        &mut c,
        "ai_trade",
        &heartbeat("ai_trade", "trader", "market_open", 0),
    )
    .await;
    let back = server
        .wait_for("redis back", |s| {
            s.redis_ok
                && s.workers
                    .iter()
                    .any(|w| w.name == "ai_trade" && w.state == Some("market_open".into()))
        })
        .await;
    assert_eq!(back.stale_since, None);
    assert_eq!(server.get("/readyz").await.status(), 200);
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("agent_office_redis_errors_total{task=\"collector\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_gzip_metrics_and_the_server_rendered_page() {
    let (_redis, _c, server) = one_idle_worker("insta-render").await;

    let r = server
        .http
        .get(format!("{}/api/agent-office/nodes", server.base))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["content-type"], "application/json");
    let body = r.bytes().await.unwrap();
    let mut json = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut json)
        .unwrap();
    let snap: shared::NodesSnapshot = serde_json::from_str(&json).unwrap();
    assert!(snap.redis_ok);

    // The first cycle also connects; from then on a cycle is a single round trip.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let metrics = loop {
        let text = server.get("/metrics").await.text().await.unwrap();
        if text.contains("agent_office_collector_round_trips 1\n")
            || std::time::Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    for name in [
        "agent_office_collector_cycle_seconds_count",
        "agent_office_collector_round_trips 1",
        "agent_office_workers_alive 1",
        "agent_office_http_requests_total{route=\"/api/agent-office/nodes\",status=\"200\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }

    let root = server
        .http
        .get(format!("{}/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 307);
    assert_eq!(root.headers()["location"], "/infra");
    let page = server.get("/infra").await.text().await.unwrap();
    assert!(
        page.contains("<title>Infra — NODE PIPELINE</title>"),
        "{page}"
    );
    assert!(
        page.contains(r#"data-worker="insta-render" data-status="healthy""#),
        "{page}"
    );
    assert!(
        page.contains(r#"data-worker="video-render" data-status="down""#),
        "{page}"
    );
    assert!(page.contains("🔴 down") && page.contains("🟢 idle"));
    assert!(
        page.contains("Alerts are off"),
        "a server without channels says so: {page}"
    );
    let alerts: serde_json::Value = server
        .get("/api/agent-office/alerts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alerts["enabled"], false);
}

/// The collector reads workers on a connection of its own: the URL's password (with or
/// without a user name) and database number must reach it as they reach every other task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_user_and_database_in_the_url_are_used() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "ops", "on", ">0ps-pw", "~*", "&*", "+@all"])
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "requirepass", "s3cret"])
        .query_async(&mut c)
        .await
        .unwrap();
    let in_db3 = format!("redis://:s3cret@127.0.0.1:{}/3", redis.port);
    let mut c3 = redis::Client::open(in_db3.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    common::idle_render(&mut c3, &["image-render"]).await;
    let _: () = c3.rpush("queue:image-render", &["a", "b"]).await.unwrap();

    for url in [
        in_db3.clone(),
        format!("redis://ops:0ps-pw@127.0.0.1:{}/3", redis.port),
    ] {
        let server = Server::start(Server::fast_config(&url)).await;
        server
            .wait_for("image-render read from database 3", |s| {
                s.redis_ok
                    && s.workers
                        .iter()
                        .any(|w| w.name == "image-render" && w.alive && w.queue_depth == 2)
            })
            .await;
    }

    // A wrong password is Redis unreachable, said plainly, never a panic or a silent empty fleet.
    let wrong = format!("redis://:nope@127.0.0.1:{}/3", redis.port);
    let server = Server::start(Server::fast_config(&wrong)).await;
    // Cycles that ran and failed, not the state before the first cycle.
    let failed = r#"agent_office_redis_errors_total{task="collector"}"#;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.metric(failed).await < 2.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no failed collector cycle counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let snap = server.nodes().await;
    assert!(!snap.redis_ok, "{snap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_snapshot_read_already_counts_work_in_flight() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    set_beat(
        &mut c,
        "music-render",
        &heartbeat("music-render", "render", "busy", 1),
    )
    .await;
    let _: () = c
        .rpush("processing:queue:music-render:host-1", &["a", "b", "c"])
        .await
        .unwrap();
    let server = Server::start(Server::fast_config(&redis.url())).await;
    // The very first snapshot that read Redis: it waited for discovery's first pass, so it
    // says 3 jobs in flight, not 0 for a list not scanned yet.
    let first = server.wait_for("the first read", |s| s.redis_ok).await;
    let music = first
        .workers
        .iter()
        .find(|w| w.name == "music-render")
        .unwrap();
    assert_eq!(music.processing, 3, "{music:?}");
}
