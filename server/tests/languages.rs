//! Korean and English on the server-rendered pages: the language from `Accept-Language`, the
//! cookie the switch leaves and `?lang=` (in that order of strength), the plan's words
//! verbatim in Korean, and `<html lang>` saying which.

mod common;

use common::{heartbeat, set_beat, Redis, Server};

async fn page(server: &Server, path: &str, headers: &[(&str, &str)]) -> (String, Option<String>) {
    let mut req = server.http.get(format!("{}{path}", server.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    (r.text().await.unwrap(), cookie)
}

const KO_LABELS: [&str; 6] = [
    "🔴 다운",
    "⏸ 작업중(트레이딩)",
    "⚙️ 처리 중",
    "📈 장중",
    "🌙 휴장",
    "🟢 대기",
];
const EN_LABELS: [&str; 6] = [
    "🔴 down",
    "⏸ paused (trading)",
    "⚙️ processing",
    "📈 market open",
    "🌙 market closed",
    "🟢 idle",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_speaks_the_browsers_language_and_keeps_a_choice() {
    let mut redis = Redis::start().await;
    let mut c = redis.conn().await;
    // video-render has no heartbeat: down.
    let beats = [
        ("image-render", "render", "paused"),
        ("music-render", "render", "busy"),
        ("ai_trade", "trader", "market_open"),
        ("night-trader", "trader", "market_closed"),
        ("insta-render", "render", "idle"),
    ];
    for (name, kind, state) in beats {
        set_beat(&mut c, name, &heartbeat(name, kind, state, 1)).await;
    }
    let server = Server::start(Server::fast_config(&redis.url())).await;
    server
        .wait_for("every state", |s| {
            s.redis_ok && s.workers.iter().filter(|w| w.alive).count() == beats.len()
        })
        .await;

    let (ko, _) = page(
        &server,
        "/infra",
        &[("accept-language", "ko-KR,ko;q=0.9,en;q=0.8")],
    )
    .await;
    assert!(ko.contains(r#"<html lang="ko""#), "{ko}");
    for label in KO_LABELS {
        assert!(ko.contains(label), "{label} missing in Korean:\n{ko}");
    }
    for label in &EN_LABELS[1..] {
        assert!(!ko.contains(label), "{label} in the Korean page");
    }
    let (en, _) = page(&server, "/infra", &[("accept-language", "en-US,en;q=0.9")]).await;
    assert!(en.contains(r#"<html lang="en""#));
    for label in EN_LABELS {
        assert!(en.contains(label), "{label} missing in English");
    }
    // The JSON does not change with the language.
    let snap = server.nodes().await;
    assert!(snap
        .workers
        .iter()
        .any(|w| w.state == Some("market_closed".into())));

    // The cookie wins over the header; `?lang=` wins over both and leaves the cookie.
    let (by_cookie, _) = page(
        &server,
        "/infra",
        &[
            ("accept-language", "ko-KR"),
            ("cookie", "agent-office-lang=en"),
        ],
    )
    .await;
    assert!(by_cookie.contains("🟢 idle") && !by_cookie.contains("🟢 대기"));
    let (by_query, set) = page(
        &server,
        "/infra?lang=ko",
        &[
            ("accept-language", "en-US"),
            ("cookie", "agent-office-lang=en"),
        ],
    )
    .await;
    assert!(by_query.contains("🟢 대기"));
    let set = set.expect("the switch leaves a cookie");
    assert!(
        set.starts_with("agent-office-lang=ko;") && set.contains("Path=/"),
        "{set}"
    );

    // Every page has the switch, and /agents speaks Korean too.
    let (agents, _) = page(&server, "/agents", &[("accept-language", "ko")]).await;
    assert!(
        agents.contains("<title>에이전트 — 컨트롤 플레인</title>"),
        "{agents}"
    );
    for p in [&ko, &agents] {
        assert!(p.contains(r#"href="/infra?lang=en""#) || p.contains(r#"href="/agents?lang=en""#));
    }

    // The plan's banner when the aggregator cannot read Redis.
    redis.stop();
    server.wait_for("Redis gone", |s| !s.redis_ok).await;
    let (ko, _) = page(&server, "/infra", &[("accept-language", "ko-KR")]).await;
    assert!(ko.contains("집계 서버/Redis 연결 끊김"), "{ko}");
    let (en, _) = page(&server, "/infra", &[("accept-language", "en-US")]).await;
    assert!(en.contains("aggregator / Redis disconnected"));
}

/// The jobs pages render on the server in both languages, with a job's record read from Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_pages_render_in_both_languages() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    let attempt = r#"{"n":1,"agent_id":"a1","started_at":"2026-12-07T00:00:00Z","finished_at":"2026-12-07T00:00:01Z","exit_code":3,"outcome":"failed"}"#;
    let _: () = redis::cmd("HSET")
        .arg("agent-office:{jobs}:job:j-1")
        .arg(&[
            ("id", "j-1"),
            ("queue", "image-render"),
            ("status", "dead"),
            ("reason", "exit status 3: disk on fire"),
            ("attempts", "1"),
            ("item", r#"{"id":"j-1","payload":"frame 1"}"#),
            ("a:1", attempt),
            ("e:1", "disk on fire"),
        ])
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("ZADD")
        .arg("agent-office:{jobs}:all")
        .arg(1)
        .arg("j-1")
        .query_async(&mut c)
        .await
        .unwrap();
    let server = Server::start(Server::fast_config(&redis.url())).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (list, _) = page(&server, "/jobs?lang=en", &[]).await;
        if list.contains("data-job=\"j-1\"") {
            assert!(list.contains("Jobs — history and search"));
            assert!(list.contains("Problems — dead, expired, retrying"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (ko, _) = page(&server, "/jobs?lang=ko", &[]).await;
    assert!(
        ko.contains("작업 — 기록과 검색") && ko.contains("❌ 실패 (dead)"),
        "{ko}"
    );
    let (job, _) = page(&server, "/jobs/j-1?lang=ko", &[]).await;
    assert!(
        job.contains("끝난 이유") && job.contains("exit status 3: disk on fire"),
        "{job}"
    );
    assert!(
        job.contains("frame 1") && job.contains("1번째 시도 · a1"),
        "{job}"
    );
    let (en, _) = page(&server, "/jobs/j-1?lang=en", &[]).await;
    assert!(
        en.contains("Why it ended") && en.contains("attempt 1 · a1"),
        "{en}"
    );
    let (missing, _) = page(&server, "/jobs/nope?lang=en", &[]).await;
    assert!(missing.contains("No such job in the history"), "{missing}");
}
