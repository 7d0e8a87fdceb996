//! The agent speaking Contract 3 to the real server: commands by pub/sub, on return after
//! being offline, and by polling in REST mode while its Redis is cut; the mode machine seen
//! from outside; the control plane going away and coming back.

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::agent_sim::{AGENT_TOKEN, OPERATOR_TOKEN};
use common::{Redis, Server};
use serde_json::{json, Value};
use shared::control::{CommandView, TargetState, Via};
use support::{free_port, llen, lpush, AgentProcess, CutProxy};

const YAML: &str = r#"
agent: { labels: { env: test } }
communication: { rest_after: 1s, stabilisation: 2s }
pipelines:
  - { id: image, queue: image-render, handler: ["sleep", "0.05"], concurrency: 2 }
"#;

fn env(redis_port: u16, server: &Server) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_HOST", "127.0.0.1".into()),
        ("REDIS_PORT", redis_port.to_string()),
        ("AGENT_ID", "agent-1".into()),
        ("CONTROL_PLANE_URL", server.base.clone()),
        ("AGENT_TOKEN", AGENT_TOKEN.into()),
        ("HEARTBEAT_INTERVAL", "1s".into()),
        ("COMMAND_POLL_INTERVAL", "500ms".into()),
    ]
}

async fn send_command(server: &Server, body: Value) -> String {
    let r = server
        .http
        .post(format!("{}/api/commands", server.base))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{v}");
    v["command_id"].as_str().unwrap().to_string()
}

async fn pipeline_command(server: &Server, kind: &str) -> String {
    send_command(
        server,
        json!({"type": kind, "pipeline_id": "image", "agent_id": "agent-1"}),
    )
    .await
}

/// Waits until the ledger shows the command's one target final, and returns that row.
async fn settled(server: &Server, id: &str) -> shared::control::TargetView {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: CommandView = server
            .get(&format!("/api/commands/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if v.targets[0].state.is_final() {
            return v.targets[0].clone();
        }
        assert!(Instant::now() < deadline, "not settled: {v:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server's view of agent-1, once `ready` holds.
async fn agent_view(server: &Server, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = server.get("/api/agents").await.json().await.unwrap();
        if let Some(a) = v["agents"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["agent_id"] == "agent-1"))
        {
            if ready(a) {
                return a.clone();
            }
        }
        assert!(Instant::now() < deadline, "agent-1 not as expected: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_arrive_by_pubsub_once_and_an_offline_agent_gets_them_on_return() {
    let redis = Redis::start().await;
    let server = Server::start(Server::with_tokens(&redis.url())).await;
    let mut c = redis.conn().await;
    let mut agent = AgentProcess::start(YAML, &env(redis.port, &server));
    let a = agent_view(&server, |a| {
        a["online"] == true && a["pipelines"][0]["id"] == "image"
    })
    .await;
    assert_eq!(a["labels"]["env"], "test");
    assert_eq!(a["communication_mode"], "redis");
    // Registered once per start: a heartbeat right after the registration (before the
    // server read it from the inbox) does not register again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let audit: Value = server
        .get("/api/audit?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let registrations = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "agent.register" && e["target"] == "agent-1")
        .count();
    assert_eq!(registrations, 1, "{audit:#}");

    let id = pipeline_command(&server, "pause_pipeline").await;
    let t = settled(&server, &id).await;
    assert_eq!(t.state, TargetState::Succeeded, "{t:?}");
    assert_eq!(t.via, Some(Via::Pubsub));
    agent
        .wait("/pipelines/image", Duration::from_secs(5), |v| {
            v["status"] == "paused"
        })
        .await;
    // paused: jobs wait, the worker's tube shows it
    lpush(
        &mut c,
        "queue:image-render",
        &["a".into(), "b".into(), "c".into()],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(llen(&mut c, "queue:image-render").await, 3);
    server
        .wait_for("the worker paused", |s| {
            s.workers
                .iter()
                .any(|w| w.name == "image-render" && w.state == Some("paused".into()))
        })
        .await;

    let id = pipeline_command(&server, "resume_pipeline").await;
    assert_eq!(settled(&server, &id).await.state, TargetState::Succeeded);
    support::eventually("the queue drained", Duration::from_secs(10), || {
        let mut c = c.clone();
        async move { llen(&mut c, "queue:image-render").await == 0 }
    })
    .await;

    // offline when the command is sent: it is applied on return, once
    assert_eq!(agent.terminate(Duration::from_secs(10)), Some(0));
    let id = pipeline_command(&server, "pause_pipeline").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    agent.spawn();
    let t = settled(&server, &id).await;
    assert_eq!(t.state, TargetState::Succeeded, "{t:?}");
    agent
        .wait("/pipelines/image", Duration::from_secs(5), |v| {
            v["status"] == "paused"
        })
        .await;
    // a restart reads the stream from its saved cursor: the old commands are not applied again
    let log = agent.log();
    assert_eq!(log.matches(&id).count(), 1, "{log}");

    // a bad update_config is a failed result and changes nothing
    let id = send_command(
        &server,
        json!({"type": "update_config", "pipeline_id": "image", "agent_id": "agent-1", "config": {"concurrency": 0}}),
    )
    .await;
    let t = settled(&server, &id).await;
    assert_eq!(t.state, TargetState::Failed);
    assert!(t.message.unwrap_or_default().contains("concurrency"));
    let id = send_command(
        &server,
        json!({"type": "update_config", "pipeline_id": "image", "agent_id": "agent-1", "config": {"concurrency": 4}}),
    )
    .await;
    assert_eq!(settled(&server, &id).await.state, TargetState::Succeeded);
    let p = agent.pipeline("image").await;
    assert_eq!(p["concurrency"], 4);

    // shutdown: a result, then a clean exit
    let id = send_command(&server, json!({"type": "shutdown", "agent_id": "agent-1"})).await;
    assert_eq!(settled(&server, &id).await.state, TargetState::Succeeded);
    assert_eq!(agent.wait_exit(Duration::from_secs(15)), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cut_goes_hybrid_then_rest_polls_commands_and_comes_back_losing_no_job() {
    let redis = Redis::start().await;
    let server = Server::start(Server::with_tokens(&redis.url())).await;
    let mut c = redis.conn().await;
    let proxy = CutProxy::start(redis.port).await;
    let agent = AgentProcess::start(YAML, &env(proxy.port, &server));
    agent_view(&server, |a| a["online"] == true).await;
    let jobs: Vec<String> = (0..20).map(|i| format!("j{i}")).collect();
    lpush(&mut c, "queue:image-render", &jobs[..10]).await;

    proxy.cut(true);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.last().map(String::as_str) != Some("rest") {
        assert!(
            Instant::now() < deadline,
            "modes seen: {seen:?}\n{}",
            agent.log()
        );
        if let Some(s) = agent.get("/status").await {
            let m = s["communication_mode"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if seen.last() != Some(&m) {
                seen.push(m);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, ["redis", "hybrid", "rest"]);
    // heartbeats go on over REST
    agent_view(&server, |a| {
        a["communication_mode"] == "rest" && a["online"] == true
    })
    .await;
    let metrics = agent.text("/metrics").await;
    assert!(
        metrics.contains("agent_communication_mode{mode=\"rest\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("agent_redis_connected 0"));

    // commands by polling
    let id = pipeline_command(&server, "pause_pipeline").await;
    let t = settled(&server, &id).await;
    assert_eq!(t.state, TargetState::Succeeded, "{t:?}");
    assert_eq!(t.via, Some(Via::Poll));
    lpush(&mut c, "queue:image-render", &jobs[10..]).await;

    proxy.cut(false);
    let s = agent
        .wait("/status", Duration::from_secs(15), |s| {
            s["communication_mode"] == "redis"
        })
        .await;
    assert_eq!(s["redis_healthy"], true);
    let id = pipeline_command(&server, "resume_pipeline").await;
    let t = settled(&server, &id).await;
    assert_eq!(t.via, Some(Via::Pubsub));
    let p = agent
        .wait("/pipelines/image", Duration::from_secs(30), |v| {
            v["processed_count"] == 20
        })
        .await;
    assert_eq!(p["error_count"], 0);
    assert_eq!(llen(&mut c, "queue:image-render").await, 0);
    assert_eq!(
        llen(&mut c, "processing:queue:image-render:agent-1").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_control_plane_pipelines_go_on_and_the_agent_registers_again() {
    let redis = Redis::start().await;
    let port = free_port();
    let server = Server::start_on(Server::with_tokens(&redis.url()), port).await;
    let mut c = redis.conn().await;
    let agent = AgentProcess::start(YAML, &env(redis.port, &server));
    agent_view(&server, |a| a["online"] == true).await;

    drop(server);
    // the server is gone and its registry lost
    let _: () = redis::cmd("DEL")
        .arg(shared::control::keys::AGENTS)
        .query_async(&mut c)
        .await
        .unwrap();
    let jobs: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    lpush(&mut c, "queue:image-render", &jobs).await;
    agent
        .wait("/pipelines/image", Duration::from_secs(10), |v| {
            v["processed_count"] == 10
        })
        .await;

    tokio::time::sleep(Duration::from_millis(200)).await;
    let server = Server::start_on(Server::with_tokens(&redis.url()), port).await;
    let a = agent_view(&server, |a| a["online"] == true).await;
    assert_eq!(
        a["labels"]["env"], "test",
        "registered again with its labels"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_pipelines_starts_one_from_its_config_dir() {
    let redis = Redis::start().await;
    let server = Server::start(Server::with_tokens(&redis.url())).await;
    // The plan's agent.yaml shape: labels as a list, no pipelines.
    let yaml = "agent:\n  labels:\n    - \"env=test\"\n";
    let agent = AgentProcess::start(yaml, &env(redis.port, &server));
    let a = agent_view(&server, |a| a["online"] == true).await;
    assert_eq!(a["labels"]["env"], "test");
    assert_eq!(a["pipelines"].as_array().map(Vec::len), Some(0));
    // A pipeline file dropped into CONFIG_DIR/pipelines, then started by its id.
    std::fs::create_dir_all(agent.dir.join("pipelines")).unwrap();
    std::fs::write(
        agent.dir.join("pipelines/extra.yaml"),
        "queue: extra-render\nhandler: [\"true\"]\n",
    )
    .unwrap();
    let id = send_command(
        &server,
        json!({"type": "start_pipeline", "pipeline_id": "extra", "agent_id": "agent-1"}),
    )
    .await;
    let t = settled(&server, &id).await;
    assert_eq!(t.state, TargetState::Succeeded, "{t:?}");
    assert!(
        t.message.as_deref().unwrap_or("").contains("extra.yaml"),
        "{t:?}"
    );
    agent
        .wait("/pipelines/extra", Duration::from_secs(5), |v| {
            v["status"] == "running"
        })
        .await;
    // An id with no file is a failed result that says where it looked.
    let id = send_command(
        &server,
        json!({"type": "start_pipeline", "pipeline_id": "nope", "agent_id": "agent-1"}),
    )
    .await;
    let t = settled(&server, &id).await;
    assert_eq!(t.state, TargetState::Failed);
    assert!(
        t.message.as_deref().unwrap_or("").contains("nope.yaml"),
        "{t:?}"
    );
}
