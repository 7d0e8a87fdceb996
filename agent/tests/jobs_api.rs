//! Contract 4 through the real server, fed by a real `pipeline-agent`: a job's detail with its
//! attempts, search by id, id prefix, payload, stderr; a dead letter retried by an operator
//! until it succeeds; a running job's output followed live; the events stream.

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::agent_sim::OPERATOR_TOKEN;
use common::{Redis, Server};
use serde_json::Value;
use support::{llen, lpush, AgentProcess};

fn env(redis: &Redis) -> Vec<(&'static str, String)> {
    support::redis_env(redis.port, "agent-1")
}

async fn get(server: &Server, path: &str) -> (u16, Value) {
    let r = server.get(path).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls `path` until `ready` holds (10 s).
async fn wait(server: &Server, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, v) = get(server, path).await;
        if ready(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path}: {v:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_a_dead_letter_read_why_retry_it_and_watch_it_succeed() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    let server = Server::start(Server::with_tokens(&redis.url())).await;
    let broken = std::env::temp_dir().join(format!("broken-{}", common::free_port()));
    std::fs::write(&broken, "").unwrap();
    let _agent = AgentProcess::start(
        &format!(
            r#"
pipelines:
  - id: image
    queue: image-render
    handler: ["sh", "-c", "read frame; echo \"rendering $frame\"; if [ -e {} ]; then echo 'GPU melted' >&2; exit 2; fi"]
    max_retries: 1
"#,
            broken.display()
        ),
        &env(&redis),
    );
    lpush(
        &mut c,
        "queue:image-render",
        &[
            r#"{"id":"render-7","payload":"frame seven"}"#.into(),
            "plain item eight".into(),
        ],
    )
    .await;
    let v = wait(&server, "/api/jobs?status=dead", |v| ids(v).len() == 2).await;
    let row = &v["jobs"][0];
    assert_eq!(row["queue"], "image-render");
    assert_eq!(row["attempts"], 2);
    assert_eq!(row["exit_code"], 2);
    assert!(row["reason"].as_str().unwrap().contains("GPU melted"));

    // the detail: every attempt with its exit code and output
    let (s, d) = get(&server, "/api/jobs/render-7").await;
    assert_eq!(s, 200);
    assert_eq!(d["payload"], "frame seven");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(d["attempts"][1]["stderr_tail"], "GPU melted\n");
    assert_eq!(d["attempts"][1]["stdout_tail"], "rendering frame seven\n");
    assert_eq!(d["attempts"][0]["outcome"], "failed");
    assert_eq!(get(&server, "/api/jobs/no-such-job").await.0, 404);
    assert_eq!(get(&server, "/api/jobs/bad%20id").await.0, 400);

    // search: id, id prefix, payload substring, stderr substring (any case), filters
    let plain = shared::jobs::hashed_id(b"plain item eight");
    assert_eq!(
        ids(&get(&server, "/api/jobs?q=render-7").await.1),
        ["render-7"]
    );
    assert_eq!(
        ids(&get(&server, "/api/jobs?q=render-").await.1),
        ["render-7"]
    );
    assert_eq!(
        ids(&get(&server, "/api/jobs?q=item%20eight").await.1),
        vec![plain.clone()]
    );
    assert_eq!(
        ids(&get(&server, "/api/jobs?q=gpu%20MELTED").await.1).len(),
        2
    );
    assert_eq!(
        ids(&get(&server, &format!("/api/jobs?q={}", &plain[..6]))
            .await
            .1),
        vec![plain.clone()]
    );
    assert!(ids(&get(&server, "/api/jobs?q=nothing-like-this").await.1).is_empty());
    assert!(ids(&get(&server, "/api/jobs?queue=other").await.1).is_empty());
    assert_eq!(get(&server, "/api/jobs?status=sleeping").await.0, 400);
    assert_eq!(get(&server, "/api/jobs?limit=0").await.0, 400);
    let one = get(&server, "/api/jobs?limit=1").await.1;
    assert_eq!(ids(&one).len(), 1);
    let rest = get(
        &server,
        &format!(
            "/api/jobs?limit=1&cursor={}",
            one["next_cursor"].as_str().unwrap()
        ),
    )
    .await
    .1;
    assert_eq!(ids(&rest).len(), 1);
    assert_ne!(ids(&rest), ids(&one));

    // retry: refused without the operator token and while not dead; then back on its queue
    let retry = |token: Option<&'static str>, id: &'static str| {
        let mut r = server
            .http
            .post(format!("{}/api/jobs/{id}/retry", server.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(retry(None, "render-7").await.unwrap().status(), 401);
    assert_eq!(llen(&mut c, "dead_letter:queue:image-render").await, 2);
    std::fs::remove_file(&broken).unwrap();
    let r = retry(Some(OPERATOR_TOKEN), "render-7").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["moved"], 1);
    assert_eq!(
        llen(&mut c, "dead_letter:queue:image-render").await,
        1,
        "the dead letter loses exactly that item"
    );
    let d = wait(&server, "/api/jobs/render-7", |v| {
        v["status"] == "succeeded"
    })
    .await;
    assert_eq!(
        d["attempts"].as_array().unwrap().len(),
        3,
        "the earlier attempts are kept"
    );
    assert_eq!(d["attempts"][2]["outcome"], "succeeded");
    let again = retry(Some(OPERATOR_TOKEN), "render-7").await.unwrap();
    assert_eq!(again.status(), 409, "a succeeded job is not retried");
    let audit = get(&server, "/api/audit").await.1.to_string();
    assert!(audit.contains("job.retry"), "{audit}");
    let _ = std::fs::remove_file(&broken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_jobs_output_follows_live_and_events_stream() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    let server = Server::start(Server::fast_config(&redis.url())).await;
    let _agent = AgentProcess::start(
        r#"
pipelines:
  - id: slow
    queue: slow
    handler: ["sh", "-c", "for i in 1 2 3; do echo \"line $i\"; sleep 1; done"]
"#,
        &env(&redis),
    );
    let mut events = server
        .http
        .get(format!("{}/api/events", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    lpush(&mut c, "queue:slow", &[r#"{"id":"slow-1"}"#.into()]).await;
    wait(&server, "/api/jobs/slow-1", |v| v["status"] == "running").await;
    let mut log = server
        .http
        .get(format!("{}/api/jobs/slow-1/log", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(log.status(), 200);
    // each line arrives while the job still runs, about a second apart
    let mut arrived = Vec::new();
    let mut text = String::new();
    let started = Instant::now();
    while !text.contains("event: end") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), log.chunk())
            .await
            .unwrap()
            .unwrap();
        let Some(chunk) = chunk else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
        for n in 1..=3 {
            if text.contains(&format!("line {n}")) && arrived.len() < n {
                arrived.push(started.elapsed());
            }
        }
    }
    assert_eq!(arrived.len(), 3, "{text}");
    assert!(
        arrived[2] - arrived[0] > Duration::from_millis(1200),
        "{arrived:?}: lines came together"
    );
    assert!(text.contains("\"status\":\"succeeded\""), "{text}");

    // a finished job's log: its stored tails, then the end
    let done = server
        .get("/api/jobs/slow-1/log")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        done.contains("line 1") && done.contains("line 3") && done.contains("event: end"),
        "{done}"
    );

    let mut seen = String::new();
    while !seen.contains("job.succeeded") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        seen.contains("event: job.started") && seen.contains("\"job_id\":\"slow-1\""),
        "{seen}"
    );
}
