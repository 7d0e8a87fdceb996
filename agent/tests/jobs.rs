//! Jobs you can follow (SPEC §10), as the agent writes them: history with every attempt's
//! output, the results stream, deadlines, dependencies and malformed envelopes — the real
//! `pipeline-agent` binary against a real `redis-server`, with real handler processes.

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use common::Redis;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use shared::jobs::{keys, record, JobDetail, JobStatus};
use support::{eventually, llen, lpush, AgentProcess};

fn env(redis: &Redis, id: &str) -> Vec<(&'static str, String)> {
    support::redis_env(redis.port, id)
}

async fn detail(c: &mut MultiplexedConnection, id: &str) -> Option<JobDetail> {
    let f: HashMap<String, Vec<u8>> = c.hgetall(keys::record(id)).await.unwrap();
    record::detail(id, &f)
}

async fn status(c: &mut MultiplexedConnection, id: &str) -> Option<JobStatus> {
    detail(c, id).await.map(|d| d.status)
}

async fn wait_status(
    c: &mut MultiplexedConnection,
    id: &str,
    want: JobStatus,
    limit: Duration,
) -> JobDetail {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let d = detail(c, id).await;
        if d.as_ref().is_some_and(|d| d.status == want) {
            return d.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id}: wanted {want:?}, have {d:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One `XREADGROUP` of group `orchestrator`, consumer `consumer-1`: (entry id, fields).
async fn read_group(
    c: &mut MultiplexedConnection,
    from: &str,
) -> Vec<(String, HashMap<String, String>)> {
    let v: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("orchestrator")
        .arg("consumer-1")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(keys::RESULTS)
        .arg(from)
        .query_async(c)
        .await
        .unwrap();
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("{other:?}"),
    };
    let redis::Value::Array(streams) = v else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in streams {
        let redis::Value::Array(pair) = s else {
            panic!()
        };
        let redis::Value::Array(entries) = &pair[1] else {
            panic!()
        };
        for e in entries {
            let redis::Value::Array(e) = e else { panic!() };
            let redis::Value::Array(flat) = &e[1] else {
                panic!()
            };
            let fields = flat
                .chunks(2)
                .map(|kv| (text(&kv[0]), text(&kv[1])))
                .collect();
            out.push((text(&e[0]), fields));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_keeps_every_attempt_and_a_big_output_is_capped() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    // Each attempt says which it is on stderr; "big" writes 1 MB to stdout and succeeds.
    let agent = AgentProcess::start(
        r#"
pipelines:
  - id: image
    queue: image-render
    handler: ["sh", "-c", "read job; case $job in big) head -c 1048576 /dev/zero | tr '\\0' x; echo END; exit 0;; esac; echo \"out of $JOB_ID\"; echo \"attempt $JOB_ATTEMPT failed\" >&2; exit 3"]
    max_retries: 2
"#,
        &env(&redis, "agent-1"),
    );
    // A consumer group made before any result: it must read each final job exactly once.
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(keys::RESULTS)
        .arg("orchestrator")
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut events = redis::Client::open(redis.url())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    events.subscribe(keys::EVENTS).await.unwrap();

    lpush(
        &mut c,
        "queue:image-render",
        &[r#"{"id":"job-1","payload":"frame 1"}"#.into(), "big".into()],
    )
    .await;
    let d = wait_status(&mut c, "job-1", JobStatus::Dead, Duration::from_secs(30)).await;
    assert_eq!(d.queue, "image-render");
    assert_eq!(d.payload.as_deref(), Some("frame 1"));
    assert_eq!(d.attempts.len(), 3, "{d:#?}");
    for (i, a) in d.attempts.iter().enumerate() {
        assert_eq!(a.n as usize, i + 1);
        assert_eq!(a.exit_code, Some(3));
        assert_eq!(a.outcome, record::Outcome::Failed);
        assert_eq!(a.stderr_tail, format!("attempt {} failed\n", i + 1));
        assert_eq!(a.stdout_tail, "out of job-1\n");
        assert_eq!(a.agent_id, "agent-1");
    }
    assert!(d.reason.unwrap().contains("exit status 3"));
    assert_eq!(d.exit_code, Some(3));
    assert_eq!(llen(&mut c, "dead_letter:queue:image-render").await, 1);
    // the agent's own API lists its recent jobs
    let recent = agent.get("/pipelines/image/jobs").await.unwrap();
    let mine = recent["jobs"].as_array().unwrap();
    assert!(
        mine.iter()
            .any(|j| j["id"] == "job-1" && j["status"] == "dead" && j["attempts"] == 3),
        "{recent}"
    );

    let big = shared::jobs::hashed_id(b"big");
    let b = wait_status(&mut c, &big, JobStatus::Succeeded, Duration::from_secs(30)).await;
    assert_eq!(b.attempts[0].stdout_tail.len(), record::TAIL_CAP);
    assert!(b.attempts[0].stdout_tail.ends_with("xEND\n"));

    // the results stream: each final job once, through a consumer group, across a restart
    // of the consumer (what it read and acknowledged is not read again)
    let first = read_group(&mut c, ">").await;
    assert_eq!(first.len(), 1);
    // a consumer that restarts reads its pending entries first (id 0), acknowledges them…
    let pending = read_group(&mut c, "0").await;
    assert_eq!(pending, first);
    let acked: i64 = redis::cmd("XACK")
        .arg(keys::RESULTS)
        .arg("orchestrator")
        .arg(&first[0].0)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(acked, 1);
    // …then reads on: the other job, and nothing after
    let second = read_group(&mut c, ">").await;
    assert_eq!(second.len(), 1);
    let third = read_group(&mut c, ">").await;
    assert!(third.is_empty(), "read twice: {third:?}");
    let mut results: Vec<(String, String)> = first
        .iter()
        .chain(&second)
        .map(|(_, f)| (f["job_id"].clone(), f["status"].clone()))
        .collect();
    results.sort();
    let mut want = vec![
        ("job-1".to_string(), "dead".to_string()),
        (big.clone(), "succeeded".to_string()),
    ];
    want.sort();
    assert_eq!(results, want);
    let dead = first
        .iter()
        .chain(&second)
        .find(|(_, f)| f["job_id"] == "job-1")
        .unwrap();
    assert_eq!(dead.1["attempts"], "3");
    assert_eq!(dead.1["queue"], "image-render");
    assert_eq!(dead.1["agent_id"], "agent-1");
    assert!(dead.1["reason"].contains("exit status 3"));
    let total: u64 = redis::cmd("XLEN")
        .arg(keys::RESULTS)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(total, 2, "one entry per final job, not per attempt");

    // events: started, retrying, dead for job-1 (in order)
    let mut seen: Vec<String> = Vec::new();
    let mut stream = events.on_message();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    use futures::StreamExt;
    while !seen.iter().any(|t| t == "job.dead") {
        let m = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events")
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(m.get_payload_bytes()).unwrap();
        if v["job_id"] == "job-1" {
            seen.push(v["type"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        seen,
        [
            "job.started",
            "job.retrying",
            "job.started",
            "job.retrying",
            "job.started",
            "job.dead"
        ]
    );
    drop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_malformed_jobs_never_run_and_say_why() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    let marks = std::env::temp_dir().join(format!("ran-{}", common::free_port()));
    let agent = AgentProcess::start(
        &format!(
            r#"
pipelines:
  - id: image
    queue: image-render
    handler: ["sh", "-c", "echo \"$JOB_ID\" >> {}"]
"#,
            marks.display()
        ),
        &env(&redis, "agent-1"),
    );
    let long_id = format!(r#"{{"id":"{}"}}"#, "x".repeat(129));
    let huge_id = format!(r#"{{"id":"{}"}}"#, "y".repeat(1024 * 1024));
    lpush(
        &mut c,
        "queue:image-render",
        &[
            r#"{"id":"late","deadline":"2020-01-01T00:00:00Z"}"#.into(),
            r#"{"id":"deps-not-list","depends_on":"a"}"#.into(),
            r#"{"id":"bad-deadline","deadline":"tomorrow"}"#.into(),
            long_id.clone(),
            huge_id.clone(),
            r#"{"id":"ok","deadline":"2099-01-01T00:00:00Z"}"#.into(),
        ],
    )
    .await;
    let late = wait_status(&mut c, "late", JobStatus::Expired, Duration::from_secs(20)).await;
    assert!(late
        .reason
        .unwrap()
        .contains("deadline 2020-01-01T00:00:00Z passed"));
    assert!(late.attempts.is_empty());
    let d = wait_status(
        &mut c,
        "deps-not-list",
        JobStatus::Dead,
        Duration::from_secs(20),
    )
    .await;
    assert!(d.reason.unwrap().contains("depends_on: not a list"));
    let d = wait_status(
        &mut c,
        "bad-deadline",
        JobStatus::Dead,
        Duration::from_secs(20),
    )
    .await;
    assert!(d.reason.unwrap().contains("deadline: not an RFC 3339 time"));
    // ids that break the rule: plain items, run as they are
    wait_status(&mut c, "ok", JobStatus::Succeeded, Duration::from_secs(20)).await;
    for item in [&long_id, &huge_id] {
        let id = shared::jobs::hashed_id(item.as_bytes());
        let d = wait_status(&mut c, &id, JobStatus::Succeeded, Duration::from_secs(20)).await;
        assert!(d.payload_cut == (item.len() > record::PAYLOAD_SHOWN));
    }
    let ran = std::fs::read_to_string(&marks).unwrap_or_default();
    assert!(
        !ran.contains("late") && !ran.contains("bad-deadline") && !ran.contains("deps-not-list"),
        "{ran}"
    );
    assert_eq!(ran.lines().count(), 3, "{ran}");
    let mut dead: Vec<String> = c
        .lrange("dead_letter:queue:image-render", 0, -1)
        .await
        .unwrap();
    dead.sort();
    assert_eq!(
        dead.len(),
        3,
        "expired and malformed envelopes are dead letters, never lost"
    );
    assert!(agent
        .text("/metrics")
        .await
        .contains("agent_jobs_total{queue=\"image-render\",status=\"expired\"} 1"));
    let _ = std::fs::remove_file(&marks);
}

/// A chain A → B → C pushed in reverse order runs in order under three agents; an agent
/// SIGKILLed while B waits loses nothing and runs nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_runs_in_order_across_agents_and_a_killed_agent_loses_no_waiting_job() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    let marks = std::env::temp_dir().join(format!("chain-{}", common::free_port()));
    let yaml = format!(
        r#"
pipelines:
  - id: chain
    queue: chain
    handler: ["sh", "-c", "sleep 0.3; echo \"$JOB_ID\" >> {}"]
    concurrency: 2
"#,
        marks.display()
    );
    let mut agents: Vec<AgentProcess> = (1..=3)
        .map(|i| AgentProcess::start(&yaml, &env(&redis, &format!("agent-{i}"))))
        .collect();
    let job = |id: &str, deps: &[&str]| {
        serde_json::json!({"id": id, "payload": id, "depends_on": deps}).to_string()
    };
    // LPUSH one at a time: c, then b, then a — consumers take the oldest first, so c is
    // taken (and must wait) before a has even been pushed.
    lpush(&mut c, "queue:chain", &[job("c", &["b"])]).await;
    wait_status(&mut c, "c", JobStatus::Waiting, Duration::from_secs(20)).await;
    lpush(&mut c, "queue:chain", &[job("b", &["a"])]).await;
    let b = wait_status(&mut c, "b", JobStatus::Waiting, Duration::from_secs(20)).await;
    assert_eq!(b.reason.as_deref(), Some("waiting for a"));
    assert_eq!(b.depends_on, ["a"]);
    // Waiting holds no slot and sits in Redis, not in any agent: kill one.
    agents[0].kill();
    assert_eq!(llen(&mut c, keys::waiting("chain").as_str()).await, 2);
    lpush(&mut c, "queue:chain", &[job("a", &[])]).await;
    wait_status(&mut c, "c", JobStatus::Succeeded, Duration::from_secs(30)).await;
    let ran = std::fs::read_to_string(&marks).unwrap();
    assert_eq!(ran, "a\nb\nc\n", "in order, each once");
    assert_eq!(llen(&mut c, keys::waiting("chain").as_str()).await, 0);
    assert_eq!(llen(&mut c, "queue:chain").await, 0);

    // a dead A ends B and C dead, with the dependency named; they never run
    agents[0].spawn();
    lpush(
        &mut c,
        "queue:chain",
        &[job("c2", &["b2"]), job("b2", &["a2"])],
    )
    .await;
    wait_status(&mut c, "b2", JobStatus::Waiting, Duration::from_secs(20)).await;
    lpush(
        &mut c,
        "queue:chain",
        &[r#"{"id":"a2","deadline":"2020-01-01T00:00:00Z"}"#.to_string()],
    )
    .await;
    let b2 = wait_status(&mut c, "b2", JobStatus::Dead, Duration::from_secs(20)).await;
    assert_eq!(b2.reason.as_deref(), Some("dependency failed: a2"));
    let c2 = wait_status(&mut c, "c2", JobStatus::Dead, Duration::from_secs(20)).await;
    assert_eq!(c2.reason.as_deref(), Some("dependency failed: b2"));
    let ran = std::fs::read_to_string(&marks).unwrap();
    assert_eq!(ran, "a\nb\nc\n", "nothing of a dead chain ran");
    eventually("the dead letters", Duration::from_secs(5), || {
        let mut c = c.clone();
        async move { llen(&mut c, "dead_letter:queue:chain").await == 3 }
    })
    .await;
    assert_eq!(status(&mut c, "a2").await, Some(JobStatus::Expired));
    let _ = std::fs::remove_file(&marks);
}
