//! Contract 3 end to end: a real redis-server, the real server, and simulated agents that
//! speak the contract over Redis and over REST.

mod common;

use std::time::{Duration, Instant};

use common::agent_sim::{
    self, register_redis, register_rest, SimAgent, AGENT_TOKEN, OPERATOR_TOKEN,
};
use common::{Redis, Server};
use redis::AsyncCommands;
use serde_json::{json, Value};
use shared::control::{CommandView, TargetState, Via};

fn config(redis: &Redis, tokens: bool) -> server::config::Config {
    let mut c = if tokens {
        Server::with_tokens(&redis.url())
    } else {
        Server::fast_config(&redis.url())
    };
    c.control.requeue_grace = Duration::from_secs(2);
    c
}

async fn setup(tokens: bool) -> (Redis, Server) {
    let redis = Redis::start().await;
    let server = Server::start(config(&redis, tokens)).await;
    (redis, server)
}

async fn send(
    server: &Server,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", server.base);
    let mut req = match method {
        "POST" => server.http.post(url),
        "PUT" => server.http.put(url),
        "DELETE" => server.http.delete(url),
        _ => server.http.get(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn op(server: &Server, method: &str, path: &str, body: Value) -> (u16, Value) {
    send(server, Some(OPERATOR_TOKEN), method, path, Some(body)).await
}

async fn command(server: &Server, id: &str) -> CommandView {
    let (s, v) = send(server, None, "GET", &format!("/api/commands/{id}"), None).await;
    assert_eq!(s, 200, "{v}");
    serde_json::from_value(v).unwrap()
}

/// Polls the ledger until every target of `id` is in `state`, failing after 10 s.
async fn wait_state(server: &Server, id: &str, state: TargetState) -> CommandView {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = command(server, id).await;
        if c.targets.iter().all(|t| t.state == state) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {state:?}: {c:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `GET /api/agents` lists `n` agents (the collector has read the registry).
async fn wait_agents(server: &Server, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = send(server, None, "GET", "/api/agents", None).await;
        if v["agents"].as_array().map_or(0, Vec::len) == n {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} agents: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn pause(server: &Server, agent: &str) -> String {
    let (s, v) = op(
        server,
        "POST",
        "/api/commands",
        json!({"type": "pause_pipeline", "pipeline_id": "image", "agent_id": agent}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["targets"], json!([agent]));
    v["command_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_reaches_an_online_agent_once_by_pubsub() {
    let (redis, server) = setup(true).await;
    let mut conn = redis.conn().await;
    register_redis(&mut conn, "a1", json!({"env": "prod"})).await;
    let agents = wait_agents(&server, 1).await;
    let agent = SimAgent::redis(&redis.url(), "a1").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !send(&server, None, "GET", "/api/agents", None).await.1["agents"][0]["online"]
        .as_bool()
        .unwrap_or(false)
    {
        assert!(Instant::now() < deadline, "agent never online: {agents}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = pause(&server, "a1").await;
    let c = wait_state(&server, &id, TargetState::Succeeded).await;
    assert_eq!(c.targets[0].via, Some(Via::Pubsub));
    assert_eq!(c.targets[0].message.as_deref(), Some("ok"));
    assert_eq!(c.sent_by.split('@').next(), Some("operator"));
    assert_eq!(agent.applied(), vec![id.clone()]);
    assert_eq!(agent.received(), vec![id], "one delivery, by pub/sub");

    let (_, list) = send(&server, None, "GET", "/api/agents", None).await;
    let a = &list["agents"][0];
    assert_eq!(a["communication_mode"], "redis");
    assert_eq!(a["labels"], json!({"env": "prod"}));
    assert_eq!(a["pipelines"][0]["processed"], 5);

    // A failing command reports its message.
    let (s, v) = op(
        &server,
        "POST",
        "/api/commands",
        json!({"type": "start_pipeline", "pipeline_id": "broken", "agent_id": "a1"}),
    )
    .await;
    assert_eq!(s, 201);
    let c = wait_state(
        &server,
        v["command_id"].as_str().unwrap(),
        TargetState::Failed,
    )
    .await;
    assert_eq!(
        c.targets[0].message.as_deref(),
        Some("no such pipeline: broken")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_offline_at_send_time_gets_it_on_return_and_rest_agents_poll() {
    let (redis, server) = setup(true).await;
    register_rest(&server.http, &server.base, "sleepy", json!({})).await;
    register_rest(&server.http, &server.base, "resty", json!({})).await;
    wait_agents(&server, 2).await;
    let first = pause(&server, "sleepy").await;
    let second = pause(&server, "sleepy").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        command(&server, &first).await.targets[0].state,
        TargetState::Queued,
        "nobody listening yet"
    );
    let agent = SimAgent::redis(&redis.url(), "sleepy").await;
    wait_state(&server, &first, TargetState::Succeeded).await;
    wait_state(&server, &second, TargetState::Succeeded).await;
    assert_eq!(agent.applied(), vec![first, second], "in order, each once");

    let rest = SimAgent::rest(&server.base, "resty").await;
    let id = pause(&server, "resty").await;
    let c = wait_state(&server, &id, TargetState::Succeeded).await;
    assert_eq!(c.targets[0].via, Some(Via::Poll));
    assert_eq!(c.targets[0].message.as_deref(), Some("done over rest"));
    assert_eq!(rest.applied(), vec![id.clone()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = send(&server, None, "GET", "/api/agents", None).await;
        let resty = list["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["agent_id"] == "resty")
            .unwrap()
            .clone();
        if resty["online"] == true {
            assert_eq!(resty["communication_mode"], "rest");
            break;
        }
        assert!(Instant::now() < deadline, "resty never online: {resty}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Filter the ledger by agent and state.
    let (_, l) = send(
        &server,
        None,
        "GET",
        "/api/commands?agent=resty&state=succeeded",
        None,
    )
    .await;
    assert_eq!(l["commands"].as_array().unwrap().len(), 1);
    assert_eq!(l["commands"][0]["command_id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_result_changes_nothing_and_silence_expires() {
    let (_redis, server) = setup(true).await;
    register_rest(&server.http, &server.base, "a1", json!({})).await;
    wait_agents(&server, 1).await;
    let id = pause(&server, "a1").await;
    let path = format!("/api/commands/{id}/results");
    let r1 = send(
        &server,
        Some(AGENT_TOKEN),
        "POST",
        &path,
        Some(json!({"agent_id": "a1", "status": "succeeded", "message": "first"})),
    )
    .await;
    let r2 = send(
        &server,
        Some(AGENT_TOKEN),
        "POST",
        &path,
        Some(json!({"agent_id": "a1", "status": "failed", "message": "second"})),
    )
    .await;
    assert_eq!((r1.0, r2.0), (204, 204));
    let c = command(&server, &id).await;
    assert_eq!(c.targets[0].state, TargetState::Succeeded);
    assert_eq!(c.targets[0].message.as_deref(), Some("first"));
    let stranger = send(
        &server,
        Some(AGENT_TOKEN),
        "POST",
        &path,
        Some(json!({"agent_id": "nobody", "status": "succeeded"})),
    )
    .await;
    assert_eq!(stranger.0, 404);

    let (s, v) = op(
        &server,
        "POST",
        "/api/commands",
        json!({"type": "shutdown", "agent_id": "a1", "deadline_s": 1}),
    )
    .await;
    assert_eq!(s, 201);
    let c = wait_state(
        &server,
        v["command_id"].as_str().unwrap(),
        TargetState::Expired,
    )
    .await;
    assert_eq!(c.targets[0].via, None);
    // A result after the deadline changes nothing.
    let late = format!("/api/commands/{}/results", c.command_id);
    send(
        &server,
        Some(AGENT_TOKEN),
        "POST",
        &late,
        Some(json!({"agent_id": "a1", "status": "succeeded"})),
    )
    .await;
    assert_eq!(
        command(&server, &c.command_id).await.targets[0].state,
        TargetState::Expired
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_resolve_once_and_explain_exclusions() {
    let (_redis, server) = setup(true).await;
    for (id, labels) in [
        ("gpu-big", json!({"env": "prod", "memory": "64"})),
        ("gpu-small", json!({"env": "prod", "memory": "8"})),
        ("odd", json!({"env": "prod", "memory": "lots"})),
        ("dev-1", json!({"env": "dev", "memory": "64"})),
    ] {
        register_rest(&server.http, &server.base, id, labels).await;
    }
    wait_agents(&server, 4).await;
    let selector = json!({"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "memory", "operator": "Gt", "values": ["16"]}]});
    let (s, dry) = op(
        &server,
        "POST",
        "/api/commands?dry_run=true",
        json!({"type": "shutdown", "selector": selector}),
    )
    .await;
    assert_eq!(s, 200, "{dry}");
    assert_eq!(dry["matched"], json!(["gpu-big"]));
    let reasons: Vec<(String, String)> = dry["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["agent_id"].as_str().unwrap().into(),
                e["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&(
            "odd".into(),
            "matchExpressions[0]: `memory` is not an integer (`lots`)".into()
        )),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&(
            "dev-1".into(),
            "matchLabels: `env` is `dev`, not `prod`".into()
        )),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(a, r)| a == "gpu-small" && r.contains("not greater than 16")),
        "{reasons:?}"
    );
    assert_eq!(
        send(&server, None, "GET", "/api/commands", None).await.1["commands"],
        json!([]),
        "a dry run creates nothing"
    );

    let (s, sent) = op(
        &server,
        "POST",
        "/api/commands",
        json!({"type": "pause_pipeline", "pipeline_id": "image", "selector": selector}),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(sent["targets"], json!(["gpu-big"]));
    let c = command(&server, sent["command_id"].as_str().unwrap()).await;
    assert_eq!(
        serde_json::to_value(&c.selector).unwrap(),
        selector,
        "the selector as sent"
    );

    let (s, e) = op(&server, "POST", "/api/commands", json!({"type": "shutdown", "selector": {"matchExpressions": [{"key": "memory", "operator": "Near", "values": ["1"]}]}})).await;
    assert_eq!(
        (s, e["field"].as_str()),
        (400, Some("selector.matchExpressions[0].operator")),
        "{e}"
    );
    let (s, e) = op(&server, "POST", "/api/commands", json!({"type": "shutdown", "selector": {"matchExpressions": [{"key": "memory", "operator": "In", "values": []}]}})).await;
    assert_eq!(
        (s, e["field"].as_str()),
        (400, Some("selector.matchExpressions[0].values"))
    );
    let (s, e) = op(
        &server,
        "POST",
        "/api/commands",
        json!({"type": "shutdown", "selector": {"matchLabels": {"env": "staging"}}}),
    )
    .await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(
        send(&server, None, "GET", "/api/commands", None).await.1["commands"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "a 422 creates nothing"
    );

    // Public list, filtered by selector.
    let q = urlencode(&json!({"matchLabels": {"env": "dev"}}).to_string());
    let (_, v) = send(
        &server,
        None,
        "GET",
        &format!("/api/agents?selector={q}"),
        None,
    )
    .await;
    assert_eq!(v["agents"].as_array().unwrap().len(), 1);
    assert_eq!(v["agents"][0]["agent_id"], "dev-1");
    let (s, e) = send(&server, None, "GET", "/api/agents?selector=%7Bnope", None).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("selector")));

    // Labels: replaced by an operator, kept across a re-registration, never duplicated.
    let (s, a) = op(
        &server,
        "PUT",
        "/api/agents/dev-1/labels",
        json!({"labels": {"env": "prod", "memory": "32"}}),
    )
    .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["labels"], json!({"env": "prod", "memory": "32"}));
    register_rest(&server.http, &server.base, "dev-1", json!({"env": "dev"})).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, all) = send(&server, None, "GET", "/api/agents", None).await;
    let dev: Vec<&Value> = all["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["agent_id"] == "dev-1")
        .collect();
    assert_eq!(dev.len(), 1);
    assert_eq!(dev[0]["labels"]["memory"], "32");
    let (s, e) = op(
        &server,
        "PUT",
        "/api/agents/dev-1/labels",
        json!({"labels": {"bad key": "x"}}),
    )
    .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("labels.bad key")));
    let (s, _) = op(
        &server,
        "PUT",
        "/api/agents/ghost/labels",
        json!({"labels": {}}),
    )
    .await;
    assert_eq!(s, 404);

    // Unregister by the agent; it leaves the list.
    let (s, _) = send(
        &server,
        Some(AGENT_TOKEN),
        "DELETE",
        "/api/agents/odd",
        None,
    )
    .await;
    assert_eq!(s, 204);
    wait_agents(&server, 3).await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_command_reaches_a_thousand_agents() {
    let (redis, server) = setup(true).await;
    let mut conn = redis.conn().await;
    for i in 0..1000 {
        register_redis(
            &mut conn,
            &format!("fleet-{i:04}"),
            json!({"role": "render"}),
        )
        .await;
    }
    wait_agents(&server, 1000).await;
    // One process answering for the whole fleet, over Redis, as each agent would.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .psubscribe("agent-office:agent:*:commands")
        .await
        .unwrap();
    let mut answer = redis.conn().await;
    let responder = tokio::spawn(async move {
        use futures::StreamExt;
        let mut messages = pubsub.into_on_message();
        while let Some(m) = messages.next().await {
            let channel = m.get_channel_name().to_string();
            let agent = channel.split(':').nth(2).unwrap().to_string();
            let cmd: Value = serde_json::from_str(&m.get_payload::<String>().unwrap()).unwrap();
            let msg =
                json!({"kind": "delivered", "agent_id": agent, "command_id": cmd["command_id"]});
            redis::cmd("XADD")
                .arg(shared::control::keys::INBOX)
                .arg("*")
                .arg("msg")
                .arg(msg.to_string())
                .query_async::<()>(&mut answer)
                .await
                .unwrap();
        }
    });
    let started = Instant::now();
    let (s, v) = op(&server, "POST", "/api/commands", json!({"type": "pause_pipeline", "pipeline_id": "image", "selector": {"matchLabels": {"role": "render"}}})).await;
    assert_eq!(s, 201);
    assert_eq!(v["targets"].as_array().unwrap().len(), 1000);
    let c = wait_state(
        &server,
        v["command_id"].as_str().unwrap(),
        TargetState::Delivered,
    )
    .await;
    assert!(c.targets.iter().all(|t| t.via == Some(Via::Pubsub)));
    eprintln!("1,000 targets delivered in {:?}", started.elapsed());
    responder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_right_token_nothing_changes_and_every_refusal_is_audited() {
    let (redis, server) = setup(true).await;
    register_rest(&server.http, &server.base, "a1", json!({})).await;
    wait_agents(&server, 1).await;
    let mut conn = redis.conn().await;
    let _: () = conn.lpush("dead_letter:queue:q1", "job").await.unwrap();
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/api/commands".into(),
            Some(json!({"type": "shutdown", "agent_id": "a1"})),
        ),
        (
            "PUT",
            "/api/agents/a1/labels".into(),
            Some(json!({"labels": {}})),
        ),
        ("DELETE", "/api/agents/a1".into(), None),
        (
            "POST",
            "/api/agents/register".into(),
            Some(agent_sim::registration("intruder", json!({}))),
        ),
        (
            "POST",
            "/api/agents/a1/heartbeat".into(),
            Some(agent_sim::beat_json("a1", "rest")),
        ),
        ("GET", "/api/agents/a1/commands".into(), None),
        (
            "POST",
            "/api/commands/1-x/results".into(),
            Some(json!({"agent_id": "a1", "status": "succeeded"})),
        ),
        ("POST", "/api/queues/q1/dead-letter/retry".into(), None),
        ("POST", "/api/queues/q1/dead-letter/purge".into(), None),
        ("POST", "/api/queues/q1/processing/a1/requeue".into(), None),
    ];
    let before = dump(&mut conn).await;
    let mut refusals = 0;
    for token in [None, Some("wrong-token-000000000000")] {
        for (method, path, body) in &calls {
            let (s, v) = send(&server, token, method, path, body.clone()).await;
            assert_eq!(s, 401, "{method} {path} with {token:?}: {v}");
            assert!(v["error"].is_string());
            refusals += 1;
        }
    }
    // The agent token is not an operator token, and the other way round.
    let (s, _) = send(
        &server,
        Some(AGENT_TOKEN),
        "POST",
        "/api/commands",
        Some(json!({"type": "shutdown", "agent_id": "a1"})),
    )
    .await;
    assert_eq!(s, 401);
    let (s, _) = send(
        &server,
        Some(OPERATOR_TOKEN),
        "POST",
        "/api/agents/register",
        Some(agent_sim::registration("x", json!({}))),
    )
    .await;
    assert_eq!(s, 401);
    refusals += 2;
    assert_eq!(
        dump(&mut conn).await,
        before,
        "Redis is unchanged but for the audit log"
    );
    let (_, audit) = send(&server, None, "GET", "/api/audit?limit=100", None).await;
    let entries = audit["entries"].as_array().unwrap();
    let refused: Vec<&Value> = entries
        .iter()
        .filter(|e| e["outcome"].as_str().unwrap().starts_with("refused (401)"))
        .collect();
    assert_eq!(refused.len(), refusals, "{audit:#}");
    assert!(refused
        .iter()
        .all(|e| e["remote"].as_str().unwrap().starts_with("127.0.0.1:")));
    let text = audit.to_string();
    assert!(
        !text.contains(OPERATOR_TOKEN)
            && !text.contains(AGENT_TOKEN)
            && !text.contains("wrong-token")
    );
}

/// Every key with its content, but the audit stream and the trends' keys (their lease and rings
/// are written by a task of their own whenever a snapshot comes, whatever the requests).
async fn dump(conn: &mut redis::aio::MultiplexedConnection) -> Vec<(String, String)> {
    let keys: Vec<String> = conn.keys("*").await.unwrap();
    let mut out = Vec::new();
    for k in keys
        .into_iter()
        .filter(|k| k != shared::control::keys::AUDIT && !k.starts_with("agent-office:{trends}:"))
    {
        let dump: Vec<u8> = redis::cmd("DUMP").arg(&k).query_async(conn).await.unwrap();
        out.push((k, format!("{dump:?}")));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_without_an_operator_token() {
    let (_redis, server) = setup(false).await;
    let (s, v) = send(
        &server,
        Some("anything-at-all-0000"),
        "POST",
        "/api/commands",
        Some(json!({"type": "shutdown", "agent_id": "a"})),
    )
    .await;
    assert_eq!(s, 403);
    assert!(v["error"].as_str().unwrap().contains("read-only"), "{v}");
    let (s, v) = send(
        &server,
        None,
        "POST",
        "/api/agents/register",
        Some(agent_sim::registration("a", json!({}))),
    )
    .await;
    assert_eq!(s, 403);
    assert!(v["error"].as_str().unwrap().contains("AGENT_TOKEN"), "{v}");
    let (s, _) = send(&server, None, "GET", "/api/commands", None).await;
    assert_eq!(s, 200, "reads stay public");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_get_a_4xx_never_a_500() {
    let (_redis, server) = setup(true).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let huge = format!(
        "{{\"type\":\"shutdown\",\"agent_id\":\"a\",\"config\":\"{}\"}}",
        "x".repeat(100_000)
    );
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"{".to_vec(),
        b"\xff\xfe{}".to_vec(),
        deep.into_bytes(),
        huge.into_bytes(),
        br#"{"type": 7}"#.to_vec(),
        br#"{"type": "shutdown", "agent_id": ["a"]}"#.to_vec(),
        br#"{"type": "shutdown", "agent_id": "a", "deadline_s": -1}"#.to_vec(),
        br#"{"agent_id": "a\u0000b", "ip": 1}"#.to_vec(),
        br#"{"labels": {"a": {"b": {}}}}"#.to_vec(),
        br#"{"agent_id": "a", "status": "maybe"}"#.to_vec(),
    ];
    let targets = [
        ("POST", "/api/commands", OPERATOR_TOKEN),
        ("POST", "/api/commands?dry_run=true", OPERATOR_TOKEN),
        ("PUT", "/api/agents/a/labels", OPERATOR_TOKEN),
        ("POST", "/api/agents/register", AGENT_TOKEN),
        ("POST", "/api/agents/a/heartbeat", AGENT_TOKEN),
        ("POST", "/api/commands/1-a/results", AGENT_TOKEN),
        ("POST", "/api/queues/q/dead-letter/retry", OPERATOR_TOKEN),
    ];
    for (method, path, token) in targets {
        for body in &bodies {
            let url = format!("{}{path}", server.base);
            let req = if method == "PUT" {
                server.http.put(url)
            } else {
                server.http.post(url)
            };
            let r = req
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            let text = r.text().await.unwrap();
            let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).to_string();
            // An empty body is a valid retry: "all of them".
            let fine = body.is_empty() && path.ends_with("/retry") && s == 200;
            assert!(
                (400..500).contains(&s) || fine,
                "{method} {path} {shown:?} → {s} {text}"
            );
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            assert!(
                fine || v["error"].is_string(),
                "{path}: JSON error body, got {text}"
            );
        }
    }
    for path in [
        "/api/agents/a%20b/heartbeat",
        "/api/agents/a:b/commands",
        &format!("/api/agents/{}/commands", "a".repeat(64)),
    ] {
        let (s, _) = send(
            &server,
            Some(AGENT_TOKEN),
            if path.ends_with("heartbeat") {
                "POST"
            } else {
                "GET"
            },
            path,
            Some(agent_sim::beat_json("a", "rest")),
        )
        .await;
        assert_eq!(s, 400, "{path}");
    }
    let (s, v) = send(
        &server,
        Some(AGENT_TOKEN),
        "GET",
        "/api/agents/a/commands?after=(0",
        None,
    )
    .await;
    assert_eq!((s, v["field"].as_str()), (400, Some("after")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_actions_move_exactly_the_right_jobs() {
    let (redis, server) = setup(true).await;
    let mut conn = redis.conn().await;
    for j in ["d1", "d2", "d3"] {
        let _: () = conn.lpush("dead_letter:queue:img", j).await.unwrap();
    }
    let _: () = conn.lpush("queue:img", "new").await.unwrap();
    let (s, v) = op(
        &server,
        "POST",
        "/api/queues/img/dead-letter/retry",
        json!({"count": 2}),
    )
    .await;
    assert_eq!(
        (s, v["moved"].as_u64(), v["remaining"].as_u64()),
        (200, Some(2), Some(1)),
        "{v}"
    );
    let queue: Vec<String> = conn.lrange("queue:img", 0, -1).await.unwrap();
    assert_eq!(
        queue,
        ["d2", "d1", "new"],
        "oldest dead letters first, to the back of the queue"
    );
    let (s, v) = op(
        &server,
        "POST",
        "/api/queues/img/dead-letter/purge",
        json!({}),
    )
    .await;
    assert_eq!((s, v["purged"].as_u64()), (200, Some(1)));
    assert!(!conn
        .exists::<_, bool>("dead_letter:queue:img")
        .await
        .unwrap());

    // An orphaned processing list (owner silent) goes back to the front, in order.
    for j in ["p1", "p2"] {
        let _: () = conn
            .lpush("processing:queue:img:gone-host", j)
            .await
            .unwrap();
    }
    let (s, v) = op(
        &server,
        "POST",
        "/api/queues/img/processing/gone-host/requeue",
        json!({}),
    )
    .await;
    assert_eq!((s, v["moved"].as_u64()), (200, Some(2)), "{v}");
    let queue: Vec<String> = conn.lrange("queue:img", 0, -1).await.unwrap();
    assert_eq!(
        queue,
        ["d2", "d1", "new", "p2", "p1"],
        "p1 was taken first and runs next"
    );

    // A live owner's list is refused and left alone.
    common::idle_render(&mut conn, &["live-host"]).await;
    let _: () = conn
        .lpush("processing:queue:img:live-host", "busy")
        .await
        .unwrap();
    let (s, v) = op(
        &server,
        "POST",
        "/api/queues/img/processing/live-host/requeue",
        json!({}),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    let left: Vec<String> = conn
        .lrange("processing:queue:img:live-host", 0, -1)
        .await
        .unwrap();
    assert_eq!(left, ["busy"]);
    // An agent that is online owns its list too.
    register_rest(&server.http, &server.base, "agent-host", json!({})).await;
    let mut c2 = redis.conn().await;
    agent_sim::set_beat(&mut c2, "agent-host", "redis").await;
    let _: () = conn
        .lpush("processing:queue:img:agent-host", "job")
        .await
        .unwrap();
    let (s, _) = op(
        &server,
        "POST",
        "/api/queues/img/processing/agent-host/requeue",
        json!({}),
    )
    .await;
    assert_eq!(s, 409);
    let (s, v) = op(
        &server,
        "POST",
        "/api/queues/bad%20name/dead-letter/purge",
        json!({}),
    )
    .await;
    assert_eq!((s, v["field"].as_str()), (400, Some("q")));
    // Every action is in the audit log.
    let (_, audit) = send(&server, None, "GET", "/api/audit", None).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "queue.dead_letter.retry",
        "queue.dead_letter.purge",
        "queue.processing.requeue",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_right_after_registering_is_not_refused() {
    let (_redis, server) = setup(true).await;
    register_rest(&server.http, &server.base, "fresh", json!({"env": "prod"})).await;
    // No wait for the collector: the registry in memory may not have it yet.
    let id = pause(&server, "fresh").await;
    assert_eq!(command(&server, &id).await.targets[0].agent_id, "fresh");
    let (s, v) = op(
        &server,
        "POST",
        "/api/commands?dry_run=true",
        json!({"type": "shutdown", "selector": {"matchLabels": {"env": "prod"}}}),
    )
    .await;
    assert_eq!((s, v["matched"].clone()), (200, json!(["fresh"])));
}
