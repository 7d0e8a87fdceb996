//! SPEC §6 end to end: real redis-server, real servers, a real local HTTP server for Telegram.

mod common;

use std::time::{Duration, Instant};

use common::{alerting_config, idle_render, FakeTelegram, Redis, Server, ServerProcess};
use redis::AsyncCommands;

/// The alert state's keys, after `agent-office:{alerts}:`.
const ALERT_KEYS: [&str; 7] = [
    "leader",
    "memory",
    "outbox",
    "sending",
    "recent",
    "batches",
    "generation",
];

async fn leader_of<'a>(servers: &'a [&'a Server]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for (i, s) in servers.iter().enumerate() {
            if s.metric("agent_office_alerts_leader").await == 1.0 {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no replica took the alert lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_are_told_once_each_across_a_restart() {
    let redis = Redis::start().await;
    let tg = FakeTelegram::start().await;
    let mut c = redis.conn().await;
    idle_render(&mut c, &["image-render", "insta-render"]).await;
    // video-render was never started and has no trace: no alert about it, ever.
    // music-render is already down at first start, with work waiting: told once.
    let _: () = c.rpush("queue:music-render", "job").await.unwrap();

    let a = Server::start(alerting_config(&redis.url(), tg.channel())).await;
    leader_of(&[&a]).await;
    tg.expect_once("🔴 [music-render] worker down").await;

    let _: () = c.del("worker:image-render:heartbeat").await.unwrap();
    tg.expect_once("🔴 [image-render] worker down").await;

    // A restart of the server neither repeats nor forgets — even from an earlier version, which
    // kept this state under names without the `{alerts}` hash tag: the server moves it.
    drop(a);
    for key in ALERT_KEYS {
        let _: redis::RedisResult<()> = redis::cmd("RENAME")
            .arg(format!("agent-office:{{alerts}}:{key}"))
            .arg(format!("agent-office:alerts:{key}"))
            .query_async(&mut c)
            .await;
    }
    let b = Server::start(alerting_config(&redis.url(), tg.channel())).await;
    leader_of(&[&b]).await;
    for key in ALERT_KEYS {
        let old: bool = c
            .exists(format!("agent-office:alerts:{key}"))
            .await
            .unwrap();
        assert!(!old, "agent-office:alerts:{key} was moved");
    }
    let memory: bool = c.exists("agent-office:{alerts}:memory").await.unwrap();
    assert!(memory);
    idle_render(&mut c, &["image-render"]).await;
    tg.expect_once("🟢 [image-render] worker recovered").await;
    let _: () = c
        .rpush("dead_letter:queue:insta-render", &["x", "y"])
        .await
        .unwrap();
    tg.expect_once("❌ [insta-render] 2 failed jobs (dead-letter)")
        .await;

    let all = tg.delivered();
    assert!(
        all.iter()
            .all(|t| !t.contains("video-render") && !t.contains("ai_trade")),
        "{all:?}"
    );
    assert_eq!(
        all.iter().filter(|t| t.contains("music-render")).count(),
        1,
        "{all:?}"
    );
    assert!(tg
        .seen
        .lock()
        .unwrap()
        .iter()
        .all(|s| s.path == "/bot123:test-token/sendMessage"));
    let api: serde_json::Value = b
        .get("/api/agent-office/alerts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(api["enabled"], true);
    let recent = api["recent"].as_array().unwrap();
    assert!(recent.len() >= 3, "{api}");
    assert_eq!(recent[0]["delivery"]["telegram"], "sent", "{api}");
    let page = b.get("/infra").await.text().await.unwrap();
    assert!(
        page.contains("Recent alerts") && page.contains("🔴 [image-render] worker down"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_send_each_event_once_and_fail_over() {
    let redis = Redis::start().await;
    let tg = FakeTelegram::start().await;
    let mut c = redis.conn().await;
    idle_render(&mut c, &["image-render"]).await;
    let a = ServerProcess::start(&redis.url(), &tg).await;
    let b = ServerProcess::start(&redis.url(), &tg).await;
    let first = leader_of(&[&a.server, &b.server]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let _: () = c.del("worker:image-render:heartbeat").await.unwrap();
    // The binary's default language: the plan's Korean messages.
    tg.expect_once("🔴 [image-render] 워커 다운").await;

    // SIGKILL the leader: no lease release; the other takes over within a lease period.
    let (leader, survivor) = if first == 0 { (a, b) } else { (b, a) };
    leader.kill();
    let killed_at = Instant::now();
    leader_of(&[&survivor.server]).await;
    assert!(
        killed_at.elapsed() < Duration::from_secs(3),
        "took over in {:?}",
        killed_at.elapsed()
    );
    idle_render(&mut c, &["image-render"]).await;
    tg.expect_once("🟢 [image-render] 워커 복구").await;
    assert_eq!(tg.delivered().len(), 2, "{:?}", tg.delivered());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_plans_three_messages_and_english_when_asked() {
    for (env, down, recovered, dead) in [
        (
            None,
            "🔴 [image-render] 워커 다운",
            "🟢 [image-render] 워커 복구",
            "❌ [insta-render] 실패 누적 2건 (dead-letter)",
        ),
        (
            Some("en"),
            "🔴 [image-render] worker down",
            "🟢 [image-render] worker recovered",
            "❌ [insta-render] 2 failed jobs (dead-letter)",
        ),
    ] {
        let redis = Redis::start().await;
        let tg = FakeTelegram::start().await;
        let mut c = redis.conn().await;
        idle_render(&mut c, &["image-render", "insta-render"]).await;
        let extra: Vec<(&str, &str)> = env.map(|l| ("ALERT_LANGUAGE", l)).into_iter().collect();
        let server = ServerProcess::start_with(&redis.url(), &tg, &extra).await;
        leader_of(&[&server.server]).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _: () = c.del("worker:image-render:heartbeat").await.unwrap();
        tg.expect_once(down).await;
        idle_render(&mut c, &["image-render"]).await;
        tg.expect_once(recovered).await;
        let _: () = c
            .rpush("dead_letter:queue:insta-render", &["x", "y"])
            .await
            .unwrap();
        tg.expect_once(dead).await;
        let sent = tg.delivered();
        assert_eq!(
            sent,
            [down, recovered, dead],
            "{env:?}: exactly these, nothing else"
        );
        if env.is_none() {
            assert!(
                sent.iter().any(|t| t.contains("다운")),
                "the plan's own assertion"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_rate_limits_and_errors_lose_nothing() {
    let redis = Redis::start().await;
    let tg = FakeTelegram::start().await;
    tg.script.lock().unwrap().extend([
        (429, r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#.to_string()),
        (500, r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#.to_string()),
    ]);
    let mut c = redis.conn().await;
    idle_render(&mut c, &["image-render"]).await;
    let a = Server::start(alerting_config(&redis.url(), tg.channel())).await;
    leader_of(&[&a]).await;
    let _: () = c.del("worker:image-render:heartbeat").await.unwrap();
    tg.expect_once("🔴 [image-render] worker down").await;
    let seen = tg.seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|s| s.status).collect::<Vec<_>>(),
        [429, 500, 200]
    );
    assert!(
        seen[1].at - seen[0].at >= Duration::from_secs(1),
        "retry_after was honoured"
    );
    assert_eq!(
        a.metric("agent_office_alerts_retried_total{channel=\"telegram\"}")
            .await,
        2.0
    );
    assert_eq!(
        a.metric("agent_office_alerts_sent_total{channel=\"telegram\"}")
            .await,
        1.0
    );

    // A blocked bot is permanent: dropped and counted, and the next alert still goes out.
    tg.script.lock().unwrap().push_back((
        403,
        r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#
            .into(),
    ));
    idle_render(&mut c, &["image-render"]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while a
        .metric("agent_office_alerts_failed_total{channel=\"telegram\"}")
        .await
        < 1.0
    {
        assert!(Instant::now() < deadline, "the 403 was not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(tg.delivered().iter().all(|t| !t.contains("recovered")));
    let _: () = c.del("worker:image-render:heartbeat").await.unwrap();
    assert_eq!(
        tg.delivered()
            .iter()
            .filter(|t| t.contains("worker down"))
            .count(),
        1
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while tg
        .delivered()
        .iter()
        .filter(|t| t.contains("worker down"))
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "delivery stopped after a 403");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_is_one_alert_not_one_per_worker() {
    let redis = Redis::start().await;
    let tg = FakeTelegram::start().await;
    let mut c = redis.conn().await;
    idle_render(&mut c, &["music-render", "image-render", "insta-render"]).await;
    let a = Server::start(alerting_config(&redis.url(), tg.channel())).await;
    leader_of(&[&a]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    redis.pause();
    tg.expect_once("Redis unreachable").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.resume();
    tg.expect_once("Redis reachable again").await;
    let all = tg.delivered();
    assert_eq!(all.len(), 2, "no per-worker alerts while blind: {all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_channel_gets_each_batch_as_json() {
    let redis = Redis::start().await;
    let hook = FakeTelegram::start().await;
    let mut c = redis.conn().await;
    idle_render(&mut c, &["image-render", "insta-render"]).await;
    let channel = server::alerts::Channel::Webhook {
        url: format!("{}/hooks/agent-office", hook.base),
    };
    let a = Server::start(alerting_config(&redis.url(), channel)).await;
    leader_of(&[&a]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Two changes in one evaluation travel as one message.
    let mut pipe = redis::pipe();
    pipe.del("worker:image-render:heartbeat").ignore();
    pipe.rpush("dead_letter:queue:insta-render", "x").ignore();
    let _: () = pipe.query_async(&mut c).await.unwrap();
    hook.expect_once(
        "🔴 [image-render] worker down\n❌ [insta-render] 1 failed jobs (dead-letter)",
    )
    .await;
    assert!(hook
        .seen
        .lock()
        .unwrap()
        .iter()
        .all(|s| s.path == "/hooks/agent-office"));
    assert_eq!(
        a.metric("agent_office_alerts_sent_total{channel=\"webhook\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_records_once_and_the_outbox_stays_bounded() {
    use server::alerts::store::{Committed, Store, OUTBOX};
    use server::alerts::{Alert, AlertKind, BatchRecord, Delivery, Memory};

    let redis = Redis::start().await;
    let mut store = Store {
        conn: redis.conn().await,
        timeout: Duration::from_secs(1),
        outbox_cap: 3,
    };
    let lease = Duration::from_secs(5);
    assert!(store.hold_lease("a", lease).await.unwrap());
    assert!(
        !store.hold_lease("b", lease).await.unwrap(),
        "one holder at a time"
    );
    assert!(
        store.hold_lease("a", lease).await.unwrap(),
        "the holder renews"
    );

    let record = BatchRecord {
        id: "b1".into(),
        created_at: "2026-11-23T12:00:00Z".into(),
        alerts: vec![Alert {
            kind: AlertKind::WorkerDown,
            worker: Some("w".into()),
            text: "🔴 [w] worker down".into(),
        }],
        delivery: [(
            "telegram".to_string(),
            shared::alerts::DeliveryState::Pending,
        )]
        .into(),
    };
    let deliveries: Vec<Delivery> = (0..5)
        .map(|i| Delivery {
            batch: "b1".into(),
            channel: "telegram".into(),
            text: format!("part {i}"),
            created_at: record.created_at.clone(),
        })
        .collect();
    let memory = Memory::default();
    assert_eq!(
        store
            .commit("b", 0, &memory, Some((&record, &deliveries)))
            .await
            .unwrap(),
        Committed::NotLeader
    );
    let mut c = redis.conn().await;
    let len: usize = c.llen(OUTBOX).await.unwrap();
    assert_eq!(len, 0, "a replica without the lease writes nothing");

    assert_eq!(
        store
            .commit("a", 0, &memory, Some((&record, &deliveries)))
            .await
            .unwrap(),
        Committed::Done {
            generation: 1,
            dropped: 2
        }
    );
    let kept: Vec<String> = c.lrange(OUTBOX, 0, -1).await.unwrap();
    assert_eq!(kept.len(), 3);
    assert!(
        kept[0].contains("part 2") && kept[2].contains("part 4"),
        "the newest are kept: {kept:?}"
    );
    assert_eq!(
        store.load_memory().await.unwrap(),
        (Some(memory.clone()), 1)
    );
    assert_eq!(store.recent().await.unwrap(), vec![record.clone()]);

    // The same commit again (its reply was lost, the evaluator retries from what it read):
    // refused, nothing sent twice.
    let _: () = c.del(OUTBOX).await.unwrap();
    assert_eq!(
        store
            .commit("a", 0, &memory, Some((&record, &deliveries)))
            .await
            .unwrap(),
        Committed::Moved
    );
    let len: usize = c.llen(OUTBOX).await.unwrap();
    assert_eq!(len, 0, "a retried commit that had landed enqueues nothing");

    // A key of the wrong type fails the commit before anything is written: memory unchanged.
    let _: () = c.set(OUTBOX, "not a list").await.unwrap();
    let mut moved = memory.clone();
    moved.workers.insert("w".into(), Default::default());
    assert!(store
        .commit("a", 1, &moved, Some((&record, &deliveries)))
        .await
        .is_err());
    assert_eq!(
        store.load_memory().await.unwrap(),
        (Some(memory), 1),
        "a failed commit leaves the memory as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_lease_mid_retry_stops_and_the_message_goes_out_once() {
    let redis = Redis::start().await;
    let tg = FakeTelegram::start().await;
    let mut c = redis.conn().await;
    idle_render(&mut c, &["image-render"]).await;
    let a = Server::start(alerting_config(&redis.url(), tg.channel())).await;
    leader_of(&[&a]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Telegram is busy for a while: each attempt is told to come back in a second.
    let busy = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#;
    tg.script
        .lock()
        .unwrap()
        .extend((0..4).map(|_| (429, busy.to_string())));
    let _: () = c.del("worker:image-render:heartbeat").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tg.seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no attempt made");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another replica holds the lease for 3 s: the first must stop sending, then on taking
    // the lease back re-queue its half-done delivery — and the text still goes out once.
    let _: () = redis::cmd("SET")
        .arg(server::alerts::store::LEADER)
        .arg("another-replica")
        .arg("PX")
        .arg(3000)
        .query_async(&mut c)
        .await
        .unwrap();
    tg.expect_once("🔴 [image-render] worker down").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = tg
        .delivered()
        .iter()
        .filter(|t| t.contains("[image-render] worker down"))
        .count();
    assert_eq!(n, 1, "{:?}", tg.delivered());
}
