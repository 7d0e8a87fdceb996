//! Pipelines on reliable queues, end to end: the real `pipeline-agent` binary against a real
//! `redis-server`, with real handler processes.

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use common::Redis;
use redis::AsyncCommands;
use support::{llen, lpush, AgentProcess};

fn redis_env(redis: &Redis) -> Vec<(&'static str, String)> {
    support::redis_env(redis.port, "agent-1")
}

fn jobs(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_succeed_or_retry_then_dead_letter_and_the_worker_beats() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    // bad jobs fail every time; good ones succeed
    let agent = AgentProcess::start(
        r#"
pipelines:
  - id: image
    queue: image-render
    handler: ["sh", "-c", "read job; case $job in bad*) echo nope >&2; exit 1;; esac"]
    max_retries: 2
    concurrency: 3
    on_failure: image-compensate
"#,
        &redis_env(&redis),
    );
    let mut all = jobs("good", 30);
    all.extend(jobs("bad", 2));
    lpush(&mut c, "queue:image-render", &all).await;

    let p = agent
        .wait("/pipelines/image", Duration::from_secs(30), |v| {
            v["processed_count"] == 30 && v["dead_lettered_count"] == 2
        })
        .await;
    assert_eq!(p["error_count"], 6, "each bad job: 1 try + 2 retries");
    assert_eq!(llen(&mut c, "queue:image-render").await, 0);
    assert_eq!(
        llen(&mut c, "processing:queue:image-render:agent-1").await,
        0
    );
    let mut dead: Vec<String> = c
        .lrange("dead_letter:queue:image-render", 0, -1)
        .await
        .unwrap();
    dead.sort();
    assert_eq!(dead, ["bad-0", "bad-1"]);
    let comp: Vec<String> = c.lrange("queue:image-compensate", 0, -1).await.unwrap();
    assert_eq!(comp.len(), 2, "a compensation job per dead letter");
    let retries: i64 = c
        .hlen("agent-office:retries:queue:image-render")
        .await
        .unwrap();
    assert_eq!(retries, 0, "counts are forgotten once a job is settled");

    // Contract 1: the worker beats with its counts
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let beat = loop {
        let v: Option<String> = c.get("worker:image-render:heartbeat").await.unwrap();
        let v = v.unwrap_or_default();
        if v.contains("\"jobs_done\":30") {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "heartbeat: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let hb = shared::parse_heartbeat(beat.as_bytes(), chrono::Utc::now()).unwrap();
    assert_eq!(hb.kind, shared::WorkerKind::Render);
    // Every failed attempt, as the plan's workers count (2 jobs × 3 attempts), not the 2 dead
    // letters.
    assert_eq!(hb.jobs_failed, 6);
    assert!(hb.last_job_at.is_some());
    let ttl: i64 = c.ttl("worker:image-render:heartbeat").await.unwrap();
    assert!((1..=45).contains(&ttl), "{ttl}");
    let metrics = agent.text("/metrics").await;
    assert!(
        metrics.contains("pipeline_events_processed_total{pipeline_id=\"image\"} 30"),
        "{metrics}"
    );
    assert!(metrics.contains("pipeline_events_failed_total{pipeline_id=\"image\"} 6"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_handler_is_killed_with_its_children_retried_then_dead_lettered() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    let marker = format!("pa-hang-{}", std::process::id());
    let agent = AgentProcess::start(
        &format!(
            r#"
pipelines:
  - id: hang
    queue: hang
    handler: ["bash", "-c", "(exec -a {marker} sleep 300) & exec -a {marker} sleep 300"]
    timeout: 300ms
    max_retries: 1
"#
        ),
        &redis_env(&redis),
    );
    lpush(&mut c, "queue:hang", &["stuck".to_string()]).await;
    let p = agent
        .wait("/pipelines/hang", Duration::from_secs(20), |v| {
            v["dead_lettered_count"] == 1
        })
        .await;
    assert_eq!(p["error_count"], 2);
    assert_eq!(p["processed_count"], 0);
    assert_eq!(llen(&mut c, "dead_letter:queue:hang").await, 1);
    // the server's nodes view agrees: the worker is alive, degraded by its dead letter
    let server = common::Server::start(common::Server::fast_config(&redis.url())).await;
    let snap = server
        .wait_for("the beat after the dead letter", |s| {
            // Its two failed attempts (the plan's count).
            s.workers
                .iter()
                .any(|w| w.name == "hang" && w.alive && w.jobs_failed == 2)
        })
        .await;
    let w = snap.workers.iter().find(|w| w.name == "hang").unwrap();
    assert_eq!(w.dead_letter, 1);
    assert_eq!(w.status(), shared::LinkStatus::Degraded);
    let left = std::process::Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "handler processes left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// Starts an agent whose jobs take `job_s`, gives it `jobs`, SIGTERMs it with two in hand,
/// and returns what is left on the queue (sorted) once it exited 0.
async fn sigterm_with_two_in_hand(
    redis: &Redis,
    grace: &str,
    job_s: &str,
    jobs: &[String],
) -> Vec<String> {
    let mut c = redis.conn().await;
    let mut agent = AgentProcess::start(
        &format!(
            "agent: {{ shutdown_grace: {grace} }}\npipelines:\n  - {{ id: slow, queue: slow, handler: [\"sleep\", \"{job_s}\"], concurrency: 2 }}\n"
        ),
        &redis_env(redis),
    );
    lpush(&mut c, "queue:slow", jobs).await;
    agent
        .wait("/pipelines/slow", Duration::from_secs(10), |v| {
            v["in_flight"] == 2
        })
        .await;
    assert_eq!(agent.terminate(Duration::from_secs(10)), Some(0));
    assert_eq!(llen(&mut c, "processing:queue:slow:agent-1").await, 0);
    let mut q: Vec<String> = c.lrange("queue:slow", 0, -1).await.unwrap();
    q.sort();
    q
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_jobs_in_hand_finish_or_gives_them_back() {
    let redis = Redis::start().await;
    // short jobs finish within the grace
    let left = sigterm_with_two_in_hand(&redis, "5s", "1", &jobs("s", 2)).await;
    assert!(left.is_empty(), "both finished: {left:?}");
    // long jobs are given back when the grace is over
    let left = sigterm_with_two_in_hand(&redis, "500ms", "60", &jobs("l", 3)).await;
    assert_eq!(left, ["l-0", "l-1", "l-2"], "nothing lost, nothing doubled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_recovers_its_processing_list_with_a_cap_per_job() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    // what a killed run left behind: one job, already failed twice
    let _: () = c
        .lpush("processing:queue:rec:agent-1", "left-behind")
        .await
        .unwrap();
    let _: () = c
        .hset("agent-office:retries:queue:rec", "j:poison", 2)
        .await
        .unwrap();
    let _: () = c
        .lpush("processing:queue:rec:agent-1", "poison")
        .await
        .unwrap();
    let agent = AgentProcess::start(
        r#"
pipelines:
  - { id: rec, queue: rec, handler: ["true"], max_retries: 2 }
"#,
        &redis_env(&redis),
    );
    let p = agent
        .wait("/pipelines/rec", Duration::from_secs(10), |v| {
            v["processed_count"] == 1 && v["dead_lettered_count"] == 1
        })
        .await;
    assert_eq!(p["processed_count"], 1, "the left-behind job ran again");
    let dead: Vec<String> = c.lrange("dead_letter:queue:rec", 0, -1).await.unwrap();
    assert_eq!(
        dead,
        ["poison"],
        "a job that keeps killing its worker stops at the cap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_cannot_start_is_restarted_then_paused_and_said_why() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    let agent = AgentProcess::start(
        r#"
pipelines:
  - { id: broken, queue: broken, handler: ["/no/such/handler"], max_restarts: 2 }
"#,
        &redis_env(&redis),
    );
    lpush(&mut c, "queue:broken", &["j".to_string()]).await;
    let p = agent
        .wait("/pipelines/broken", Duration::from_secs(20), |v| {
            v["status"] == "paused"
        })
        .await;
    assert_eq!(p["restarts"], 3);
    let why = p["last_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("max_restarts 2") && why.contains("/no/such/handler"),
        "{why}"
    );
    assert_eq!(
        llen(&mut c, "queue:broken").await,
        1,
        "the job was given back"
    );
    assert_eq!(p["error_count"], 0, "not the job's fault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_bounds_the_jobs_in_flight_across_pipelines() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    let agent = AgentProcess::start(
        r#"
agent: { max_concurrent: 3 }
pipelines:
  - { id: a, queue: qa, handler: ["sleep", "0.3"], concurrency: 2 }
  - { id: b, queue: qb, handler: ["sleep", "0.3"], concurrency: 2 }
"#,
        &redis_env(&redis),
    );
    lpush(&mut c, "queue:qa", &jobs("a", 8)).await;
    lpush(&mut c, "queue:qb", &jobs("b", 8)).await;
    let mut most = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = agent.get("/pipelines").await.unwrap_or_default();
        let list = v["pipelines"].as_array().cloned().unwrap_or_default();
        let in_flight: u64 = list
            .iter()
            .map(|p| p["in_flight"].as_u64().unwrap_or(0))
            .sum();
        let done: u64 = list
            .iter()
            .map(|p| p["processed_count"].as_u64().unwrap_or(0))
            .sum();
        most = most.max(in_flight);
        assert!(
            in_flight <= 3,
            "{in_flight} jobs in flight with max_concurrent 3: {v}"
        );
        if done == 16 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not done: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(most, 3, "the bound is reached, not just respected");
}
