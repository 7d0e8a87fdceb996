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
