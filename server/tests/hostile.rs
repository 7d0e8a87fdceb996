//! Hostile or broken fleets (issue "Trust under hostile input"): each test reproduces what a
//! user would see, against a real redis-server and the real server or binary.

mod common;

use common::{heartbeat, one_idle_worker, set_beat};
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_heartbeat_value_costs_the_cycle_nothing() {
    let (_redis, mut conn, server) = one_idle_worker("image-render").await;
    // 100 MB under one worker's key: read whole every cycle, it would blow the 300 ms deadline.
    let _: () = redis::cmd("SETRANGE")
        .arg("worker:video-render:heartbeat")
        .arg(100_000_000)
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    let snap = server
        .wait_for("video-render too large", |s| {
            s.workers.iter().any(|w| {
                w.name == "video-render"
                    && w.error.as_deref().is_some_and(|e| e.contains("too large"))
            })
        })
        .await;
    assert!(snap.redis_ok);
    // What Redis sends over ten cycles: bounded reads move kilobytes, not 100 MB a cycle.
    let before = net_output(&mut conn).await;
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(
            server.get("/readyz").await.status(),
            200,
            "Redis stays readable"
        );
        let s = server.nodes().await;
        assert!(
            s.redis_ok
                && s.workers
                    .iter()
                    .any(|w| w.name == "image-render" && w.alive)
        );
    }
    let sent = net_output(&mut conn).await - before;
    assert!(sent < 5_000_000, "Redis sent {sent} bytes in ten cycles");
}

async fn net_output(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_without_ttl_or_under_the_wrong_name_does_not_pass_for_alive() {
    let (_redis, mut conn, server) = one_idle_worker("image-render").await;
    set_beat(
        &mut conn,
        "music-render",
        &heartbeat("music-render", "render", "idle", 7200),
    )
    .await;
    let _: () = conn.persist("worker:music-render:heartbeat").await.unwrap();
    set_beat(
        &mut conn,
        "video-render",
        &heartbeat("image-render", "render", "idle", 0),
    )
    .await;
    let snap = server
        .wait_for("both flagged", |s| {
            // The TTL is asked of the old beat in the cycle after it is first seen.
            s.workers
                .iter()
                .filter(|w| {
                    !w.alive
                        && w.error.is_some()
                        && (w.name == "music-render" || w.name == "video-render")
                })
                .count()
                == 2
        })
        .await;
    let w = |n: &str| snap.workers.iter().find(|w| w.name == n).unwrap().clone();
    let music = w("music-render");
    assert!(!music.alive && music.state.is_none(), "{music:?}");
    assert!(music.last_beat_age_s.unwrap() >= 7200);
    assert!(music.error.unwrap().contains("old (over 600s)"));
    let video = w("video-render");
    assert!(!video.alive, "another worker's beat is not this one's");
    assert!(video.error.unwrap().contains("image-render"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_clock_or_the_plans_fixed_date_never_calls_a_live_worker_down() {
    let (_redis, mut conn, server) = one_idle_worker("image-render").await;
    // A host whose clock runs five minutes slow, beating with EX 45.
    set_beat(
        &mut conn,
        "music-render",
        &heartbeat("music-render", "render", "busy", 300),
    )
    .await;
    // The plan's own test fixture: a fixed date, written with EX 45; the plan asserts
    // `alive is True and state == "idle"` (and counters may be missing).
    set_beat(
        &mut conn,
        "video-render",
        r#"{"name": "video-render", "kind": "render", "state": "idle", "ts": "2026-06-29T00:00:00Z", "last_job_at": null}"#,
    )
    .await;
    // A state its kind does not list: alive, as written, named in `error`.
    set_beat(
        &mut conn,
        "insta-render",
        &heartbeat("insta-render", "render", "starting", 0),
    )
    .await;
    // Wait past the TTL question (asked of old or still values, answered the next cycle).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let snap = server
        .wait_for("all three read", |s| {
            s.workers
                .iter()
                .filter(|w| w.error.is_some() && w.alive)
                .count()
                == 3
        })
        .await;
    let w = |n: &str| snap.workers.iter().find(|w| w.name == n).unwrap().clone();
    let music = w("music-render");
    assert!(
        music.alive && music.state == Some("busy".into()),
        "{music:?}"
    );
    assert!(music.error.unwrap().contains("behind the server's"));
    let video = w("video-render");
    assert!(
        video.alive && video.state == Some("idle".into()),
        "{video:?}"
    );
    assert_eq!((video.jobs_done, video.jobs_failed), (0, 0));
    let insta = w("insta-render");
    assert!(
        insta.alive && insta.state == Some("starting".into()),
        "{insta:?}"
    );
    assert!(insta
        .error
        .as_deref()
        .unwrap()
        .contains(r#"unknown state "starting""#));
    assert_eq!(insta.status(), shared::LinkStatus::Healthy);
}

#[test]
fn a_redis_url_that_does_not_parse_never_prints_its_password() {
    for url in [
        "redis://:hunter2secret@[::1",
        "redis://host:port?password=hunter2secret",
        "rediss://:hunter2secret@[::1:6380",
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_agent-office"))
            .env("REDIS_URL", url)
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("REDIS_URL"), "{text}");
        assert!(!text.contains("hunter2secret"), "{text}");
    }
}

#[test]
fn a_server_without_its_bundle_says_which_setting_is_wrong() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agent-office"))
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("LEPTOS_OUTPUT_NAME", "agent-office")
        .env("LEPTOS_SITE_ROOT", "/nonexistent/site")
        .env("LEPTOS_SITE_PKG_DIR", "pkg")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env_remove("LEPTOS_HASH_FILES")
        .env_remove("API_ONLY")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a page that never hydrates must not be served silently"
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("LEPTOS_SITE_ROOT") && text.contains(".wasm"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_clock_is_flagged_without_calling_the_worker_down() {
    let (_redis, mut conn, server) = one_idle_worker("image-render").await;
    set_beat(
        &mut conn,
        "image-render",
        &heartbeat("image-render", "render", "busy", -7200),
    )
    .await;
    let snap = server
        .wait_for("the skew flagged", |s| {
            s.workers
                .iter()
                .any(|w| w.name == "image-render" && w.error.is_some())
        })
        .await;
    let w = snap
        .workers
        .iter()
        .find(|w| w.name == "image-render")
        .unwrap();
    assert!(w.alive && w.state == Some("busy".into()), "{w:?}");
    assert!(
        w.error
            .as_deref()
            .unwrap()
            .contains("ahead of the server's (over the 60s allowed)"),
        "{w:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_name_cannot_forge_an_alert_line_and_a_flood_cannot_bury_a_real_one() {
    let redis = common::Redis::start().await;
    let tg = common::FakeTelegram::start().await;
    let mut c = redis.conn().await;
    common::idle_render(&mut c, &["image-render", "music-render"]).await;
    let server = common::Server::start(common::alerting_config(&redis.url(), tg.channel())).await;
    server
        .wait_for("both alive", |s| {
            s.workers.iter().filter(|w| w.alive).count() == 2
        })
        .await;
    let forged = "worker:x] ok\n🟢 [music-render] worker recovered\n🔴 [y:heartbeat";
    let _: () = c.set_ex(forged, "x", 600).await.unwrap();
    let _: () = redis::cmd("EVAL")
        .arg("for i=1,2000 do redis.call('SET','worker:j'..i..':heartbeat','x','EX',600) end")
        .arg(0)
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = c.del("worker:image-render:heartbeat").await.unwrap();
    tg.expect_once("🔴 [image-render] worker down").await;
    tg.expect_once("2000 unregistered heartbeat keys").await;
    let snap = server.nodes().await;
    assert!(
        snap.workers
            .iter()
            .all(|w| shared::keys::is_valid_name(&w.name)),
        "a name breaking the rule is listed"
    );
    let all = tg.delivered().join("\n");
    assert!(!all.contains("🟢 [music-render]"), "forged: {all}");
    assert!(!all.contains("x] ok"), "{all}");
    assert!(
        all.lines().count() < 10,
        "one summary, not a line per junk key: {all}"
    );
}

/// The release binary under `ulimit -n <nofile>`, configured by env as the README deploys it.
struct Limited {
    child: std::process::Child,
    base: String,
    port: u16,
}

impl Limited {
    async fn start(redis_url: &str, nofile: u32, env: &[(&str, &str)]) -> Self {
        let port = common::free_port();
        let mut wrapper = std::process::Command::new("bash");
        wrapper
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\""))
            .arg(common::server_binary());
        let child = common::server_command(wrapper, redis_url, port)
            .envs(env.iter().copied())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while reqwest::get(format!("{base}/healthz")).await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Self { child, base, port }
    }

    /// Opens a raw connection, sends `request` and reads the status code (None: no answer
    /// within `wait`). The connection is returned open.
    async fn status(
        &self,
        request: &str,
        wait: std::time::Duration,
    ) -> (Option<u16>, tokio::net::TcpStream) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut buf = [0u8; 12];
        let code = match tokio::time::timeout(wait, s.read_exact(&mut buf)).await {
            Ok(Ok(_)) => std::str::from_utf8(&buf[9..12])
                .ok()
                .and_then(|c| c.parse().ok()),
            _ => None,
        };
        (code, s)
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const STREAM: &str = "GET /api/agent-office/nodes/stream HTTP/1.1\r\nHost: t\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_256_open_files_300_streams_get_a_clear_503_and_the_api_keeps_answering() {
    use std::time::Duration;
    let (redis, _conn, _server) = one_idle_worker("image-render").await;
    let srv = Limited::start(&redis.url(), 256, &[]).await;
    let mut open = Vec::new();
    let (mut ok, mut busy) = (0, 0);
    for _ in 0..300 {
        let (code, s) = srv.status(STREAM, Duration::from_secs(5)).await;
        match code {
            Some(200) => {
                ok += 1;
                open.push(s);
            }
            Some(503) => busy += 1, // dropped: the client goes away, as a page would poll
            other => panic!("a stream got {other:?}"),
        }
    }
    // 256 open files: 192 connections, 96 streams (README "Bounded clients")
    assert_eq!((ok, busy), (96, 204));
    let health = reqwest::get(format!("{}/healthz", srv.base)).await.unwrap();
    assert_eq!(health.status(), 200);
    let nodes = reqwest::get(format!("{}/api/agent-office/nodes", srv.base))
        .await
        .unwrap();
    assert_eq!(nodes.status(), 200);
    let body: shared::NodesSnapshot = nodes.json().await.unwrap();
    assert!(body.redis_ok, "the collector's Redis connection works");
    drop(open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_dropped_and_cannot_hold_shutdown_past_its_deadline() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncReadExt;
    let redis = common::Redis::start().await;
    let mut srv = Limited::start(
        &redis.url(),
        1024,
        &[
            ("IDLE_TIMEOUT", "2s"),
            ("SHUTDOWN_DEADLINE", "1s"),
            ("HEADER_READ_TIMEOUT", "1s"),
        ],
    )
    .await;
    // a slowloris client is never idle (a header line every 300 ms) but it is late: cut at
    // the header deadline
    let (_, mut trickle) = srv
        .status("GET /healthz HTTP/1.1\r\n", Duration::from_millis(10))
        .await;
    let t = Instant::now();
    let cut = loop {
        use tokio::io::AsyncWriteExt;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if trickle.write_all(b"X-Slow: y\r\n").await.is_err()
            || t.elapsed() > Duration::from_secs(6)
        {
            break t.elapsed();
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(1), trickle.read(&mut probe)).await
        {
            break t.elapsed();
        }
    };
    assert!(
        cut < Duration::from_secs(3),
        "a trickling client held on for {cut:?}"
    );
    // half a request, then silence: closed after the idle timeout
    let (code, mut s) = srv
        .status("GET /healthz HTTP/1.1\r\n", Duration::from_millis(100))
        .await;
    assert_eq!(code, None);
    let t = Instant::now();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
    let waited = t.elapsed();
    assert!(waited < Duration::from_secs(5), "held {waited:?}");

    // a stream and a half-sent request open at SIGTERM: the process still exits in time
    let (code, _stream) = srv.status(STREAM, Duration::from_secs(5)).await;
    assert_eq!(code, Some(200));
    let (_, _slow) = srv
        .status("GET /healthz HTTP/1.1\r\n", Duration::from_millis(100))
        .await;
    let t = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .unwrap();
    let status = srv.child.wait().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "shutdown took {:?}",
        t.elapsed()
    );
    assert!(status.success(), "{status:?}");
}
