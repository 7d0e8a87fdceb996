//! `pipeline-agent` on a real three-primary Redis Cluster (`scripts/redis-cluster.sh`, SPEC §12):
//! a hash-tagged queue runs to completion — successes, retries, dead letters with their
//! compensation jobs, a job that waits for another — with its history, results and heartbeats
//! on whichever primaries their slots live; a queue name without a hash tag, a seed that is no
//! Cluster node and a Cluster node given as one Redis each stop the agent at start, saying why.
//! And the server's acting half on the same Cluster: registry, commands, jobs, queue actions,
//! schedules.

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use common::agent_sim::AGENT_TOKEN;
use common::cluster::ClusterSet;
use redis::cluster_async::ClusterConnection;
use serde_json::{json, Value};
use support::{eventually, AgentProcess};

/// `{encode}`'s slot (1236) is on the first primary, `{jobs}`'s (9631) on the second.
const QUEUE: &str = "{encode}";
const GOOD: usize = 150;
const BAD: usize = 3;

async fn cluster(set: &ClusterSet) -> ClusterConnection {
    let urls: Vec<String> = set
        .ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    redis::cluster::ClusterClient::new(urls)
        .unwrap()
        .get_async_connection()
        .await
        .unwrap()
}

fn nodes_env(set: &ClusterSet) -> String {
    set.ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A fresh file the test's handler appends each job it ran to.
fn done_log(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pa-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let done = dir.join("done.log");
    let _ = std::fs::remove_file(&done);
    done
}

/// The server's settings on the Cluster, as `REDIS_CLUSTER_NODES` gives them.
fn on_cluster(set: &ClusterSet, mut config: server::config::Config) -> server::config::Config {
    config.cluster = Some(set.addrs());
    config
}

fn first_node(set: &ClusterSet) -> String {
    format!("redis://127.0.0.1:{}", set.ports[0])
}

async fn llen(c: &mut ClusterConnection, key: &str) -> i64 {
    redis::cmd("LLEN").arg(key).query_async(c).await.unwrap()
}

async fn status(c: &mut ClusterConnection, id: &str) -> Option<String> {
    redis::cmd("HGET")
        .arg(format!("agent-office:{{jobs}}:job:{id}"))
        .arg("status")
        .query_async(c)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_tagged_queue_runs_to_completion_on_a_cluster() {
    let set = ClusterSet::start();
    let mut c = cluster(&set).await;
    let slot = |key: &str| shared::slot::key_slot(key.as_bytes());
    assert!(slot(QUEUE) < 5461 && (5461..10923).contains(&slot("{jobs}")));

    let done = done_log("cluster");
    let yaml = format!(
        r#"
pipelines:
  - id: encode
    queue: "{QUEUE}"
    on_failure: "{QUEUE}-undo"
    heartbeat_name: encode-w
    handler: ["bash", "-c", "read j; case \"$j\" in bad*) exit 3;; esac; echo \"$j\" >> {log}"]
    timeout: 10s
    max_retries: 1
    concurrency: 3
"#,
        log = done.display()
    );
    let env = [
        ("REDIS_CLUSTER_NODES", nodes_env(&set)),
        ("AGENT_ID", "cl-1".to_string()),
    ];
    let agent = AgentProcess::start(&yaml, &env);

    // The job that waits comes first: it is parked until g000 has succeeded.
    let job = |id: &str, deps: &[&str]| {
        serde_json::json!({"id": id, "payload": id, "depends_on": deps}).to_string()
    };
    let queue = format!("queue:{QUEUE}");
    let _: () = redis::cmd("LPUSH")
        .arg(&queue)
        .arg(job("after", &["g000"]))
        .query_async(&mut c)
        .await
        .unwrap();
    let mut jobs: Vec<String> = (0..GOOD).map(|i| job(&format!("g{i:03}"), &[])).collect();
    jobs.extend((0..BAD).map(|i| job(&format!("bad{i}"), &[])));
    let _: () = redis::cmd("LPUSH")
        .arg(&queue)
        .arg(&jobs)
        .query_async(&mut c)
        .await
        .unwrap();

    let ran = || {
        std::fs::read_to_string(&done)
            .unwrap_or_default()
            .lines()
            .count()
    };
    eventually(
        "every good job to run once",
        Duration::from_secs(60),
        || {
            let n = ran();
            async move { n > GOOD }
        },
    )
    .await;
    let dead = format!("dead_letter:queue:{QUEUE}");
    let undo = format!("queue:{QUEUE}-undo");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while llen(&mut c, &dead).await < BAD as i64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the bad jobs never reached the dead letter\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines = std::fs::read_to_string(&done).unwrap();
    let mut seen: Vec<&str> = lines.lines().collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), GOOD + 1, "a job ran twice or not at all");
    assert_eq!(llen(&mut c, &queue).await, 0);
    assert_eq!(
        llen(&mut c, &format!("processing:queue:{QUEUE}:cl-1")).await,
        0
    );
    assert_eq!(llen(&mut c, &dead).await, BAD as i64);
    assert_eq!(llen(&mut c, &undo).await, BAD as i64);

    // The history on `{jobs}`'s primary, the results stream on its own slot.
    assert_eq!(status(&mut c, "g000").await.as_deref(), Some("succeeded"));
    assert_eq!(status(&mut c, "after").await.as_deref(), Some("succeeded"));
    assert_eq!(status(&mut c, "bad0").await.as_deref(), Some("dead"));
    let results: i64 = redis::cmd("XLEN")
        .arg("agent-office:results")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(results >= (GOOD + 1 + BAD) as i64, "results: {results}");
    // The worker's heartbeat (Contract 1) and the agent's own beat and inbox.
    let beat: Option<String> = redis::cmd("GET")
        .arg("worker:encode-w:heartbeat")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(beat.is_some_and(|b| b.contains("encode-w")));
    let inbox: i64 = redis::cmd("XLEN")
        .arg("agent-office:{ctl}:inbox")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(inbox >= 1, "the agent never registered");
    let p = agent.pipeline("encode").await;
    assert_eq!(p["processed_count"], (GOOD + 1) as u64, "{p}");
    assert_eq!(p["dead_lettered_count"], BAD as u64, "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_cluster_setting_stops_the_agent_at_start() {
    let set = ClusterSet::start();
    let exit = |yaml: &str, env: Vec<(&'static str, String)>| {
        let mut a = AgentProcess::start(yaml, &env);
        let code = a.wait_exit(Duration::from_secs(15));
        (code, a.log())
    };
    let tagged = "pipelines:\n  - { id: e, queue: \"{encode}\", handler: [\"true\"] }\n";

    // A queue name without a hash tag: its keys would fall in different slots.
    let (code, log) = exit(
        "pipelines:\n  - { id: e, queue: encode, handler: [\"true\"] }\n",
        vec![("REDIS_CLUSTER_NODES", nodes_env(&set))],
    );
    assert_ne!(code, Some(0), "{log}");
    assert!(
        log.contains("pipelines[0].queue") && log.contains("hash tag") && log.contains("{encode}"),
        "{log}"
    );

    // A seed that is a Redis without cluster mode.
    let plain = common::Redis::start().await;
    let (code, log) = exit(
        tagged,
        vec![("REDIS_CLUSTER_NODES", format!("127.0.0.1:{}", plain.port))],
    );
    assert_ne!(code, Some(0), "{log}");
    assert!(
        log.contains("redis.cluster_nodes") && log.contains("without cluster mode"),
        "{log}"
    );

    // A Cluster node given as one Redis: most keys would answer MOVED.
    let (code, log) = exit(
        tagged,
        vec![
            ("REDIS_HOST", "127.0.0.1".into()),
            ("REDIS_PORT", set.ports[0].to_string()),
        ],
    );
    assert_ne!(code, Some(0), "{log}");
    assert!(log.contains("REDIS_CLUSTER_NODES"), "{log}");
}

/// Polls `GET path` until `ready` holds (20 s).
async fn until(server: &common::Server, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = server.get(path).await.json().await.unwrap_or(Value::Null);
        if ready(&v) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{path}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The server's acting half on a Cluster, driven through its API the way an operator does: the
/// agent registers and obeys a command, its jobs are listed and found, a dead letter goes back
/// to a tagged queue (an untagged one is refused, saying why), a schedule fires into the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_jobs_and_schedules_run_on_a_cluster() {
    let set = ClusterSet::start();
    let mut c = cluster(&set).await;
    let config = on_cluster(&set, common::Server::with_tokens(&first_node(&set)));
    let server = common::Server::start(config).await;
    let done = done_log("cluster-act");
    let yaml = format!(
        r#"
pipelines:
  - id: encode
    queue: "{QUEUE}"
    handler: ["bash", "-c", "read j; case \"$j\" in *bad*) echo 'codec missing' >&2; exit 3;; esac; echo \"$j\" >> {log}"]
    max_retries: 0
"#,
        log = done.display()
    );
    let env = [
        ("REDIS_CLUSTER_NODES", nodes_env(&set)),
        ("AGENT_ID", "cl-2".to_string()),
        ("CONTROL_PLANE_URL", server.base.clone()),
        ("AGENT_TOKEN", AGENT_TOKEN.to_string()),
        ("HEARTBEAT_INTERVAL", "1s".to_string()),
        ("COMMAND_POLL_INTERVAL", "500ms".to_string()),
    ];
    let agent = AgentProcess::start(&yaml, &env);

    // The registry and a command through the ledger, both on `{ctl}`'s primary.
    until(&server, "/api/agents", |v| {
        v["agents"].as_array().is_some_and(|a| {
            a.iter()
                .any(|a| a["agent_id"] == "cl-2" && a["online"] == true)
        })
    })
    .await;
    let (s, v) = server
        .operator_post(
            "/api/commands",
            json!({"type": "pause_pipeline", "pipeline_id": "encode", "agent_id": "cl-2"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["command_id"].as_str().unwrap().to_string();
    until(&server, &format!("/api/commands/{id}"), |v| {
        v["targets"][0]["state"] == "succeeded"
    })
    .await;
    assert_eq!(agent.pipeline("encode").await["status"], "paused");
    let (s, v) = server
        .operator_post(
            "/api/commands",
            json!({"type": "resume_pipeline", "pipeline_id": "encode", "agent_id": "cl-2"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // Jobs: the index finds them, the detail tells why one died.
    let queue = format!("queue:{QUEUE}");
    for item in [
        r#"{"id":"ok-1","payload":"fine"}"#,
        r#"{"id":"bad-1","payload":"bad"}"#,
    ] {
        let _: () = redis::cmd("LPUSH")
            .arg(&queue)
            .arg(item)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    until(&server, "/api/jobs?status=dead", |v| {
        v["jobs"]
            .as_array()
            .is_some_and(|j| j.len() == 1 && j[0]["id"] == "bad-1")
    })
    .await;
    let d = until(&server, "/api/jobs/ok-1", |v| v["status"] == "succeeded").await;
    assert_eq!(d["queue"], QUEUE);
    let d: Value = server.get("/api/jobs/bad-1").await.json().await.unwrap();
    assert!(
        d["reason"].as_str().unwrap_or("").contains("codec missing"),
        "{d}"
    );

    // A dead letter back to its queue: it runs (and dies) once more.
    let (s, v) = server
        .operator_post("/api/queues/%7Bencode%7D/dead-letter/retry", json!({}))
        .await;
    assert_eq!((s, &v["moved"]), (200, &json!(1)), "{v}");
    let dead_twice = || async { agent.pipeline("encode").await["dead_lettered_count"] == 2 };
    eventually(
        "the retried dead letter to run again",
        Duration::from_secs(20),
        dead_twice,
    )
    .await;
    // One job retried by its id: its record keeps counting attempts.
    until(&server, "/api/jobs/bad-1", |v| v["status"] == "dead").await;
    let (s, v) = server
        .operator_post("/api/jobs/bad-1/retry", json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    until(&server, "/api/jobs/bad-1", |v| {
        v["status"] == "dead" && v["attempts"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    // Without a hash tag the lists are in different slots: refused, nothing moved.
    let (s, v) = server
        .operator_post("/api/queues/plain/dead-letter/retry", json!({}))
        .await;
    assert_eq!(s, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("hash tag"), "{v}");

    // A schedule fires into the tagged queue; the agent runs what it pushed.
    let (s, v) = server.operator_post("/api/schedules",
        json!({"name": "tick", "cron": "* * * * * *", "queue": QUEUE, "job": {"payload": "tick"}}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    eventually("a scheduled job to run", Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&done).unwrap_or_default();
        async move { text.contains("tick") }
    })
    .await;
    let schedules: Value = server.get("/api/schedules").await.json().await.unwrap();
    assert!(schedules.to_string().contains("tick"), "{schedules}");
    drop(agent);
}

/// The port of the primary that serves `key` now (the others answer MOVED).
async fn owner_of(set: &ClusterSet, key: &str) -> u16 {
    for port in set.primaries() {
        let r: redis::RedisResult<i64> = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut set.node(port).await)
            .await;
        if r.is_ok() {
            return port;
        }
    }
    panic!("no primary serves {key}");
}

async fn redis_ok(server: &common::Server) -> bool {
    let v: Value = server
        .get("/api/agent-office/nodes")
        .await
        .json()
        .await
        .unwrap_or(Value::Null);
    v["redis_ok"] == true
}

/// The primary of the agent's queue SIGKILLed under load: its replica takes over; the server
/// says Redis is down, then recovers by itself within 10 s of the promotion; the agent settles
/// the jobs in hand on the new primary and runs the rest: every job pushed is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_fails_over_and_no_job_is_lost() {
    const BEFORE: usize = 300;
    const AFTER: usize = 100;
    const CONCURRENCY: usize = 2;
    let set = ClusterSet::start_with_replicas();
    let config = on_cluster(&set, common::Server::fast_config(&first_node(&set)));
    let server = common::Server::start(config).await;
    let done = done_log("cluster-kill");
    let yaml = format!(
        r#"
agent: {{ sweep_interval: 6s }}
pipelines:
  - id: encode
    queue: "{QUEUE}"
    handler: ["bash", "-c", "read j; sleep 0.02; echo \"$j\" >> {log}"]
    timeout: 10s
    max_retries: 20
    concurrency: {CONCURRENCY}
"#,
        log = done.display()
    );
    let env = [
        ("REDIS_CLUSTER_NODES", nodes_env(&set)),
        ("AGENT_ID", "cl-3".to_string()),
    ];
    let agent = AgentProcess::start(&yaml, &env);
    let queue = format!("queue:{QUEUE}");
    let push = |from: usize, n: usize| {
        let queue = queue.clone();
        let set = &set;
        async move {
            let jobs: Vec<String> = (from..from + n)
                .map(|i| {
                    json!({"id": format!("j{i:03}"), "payload": format!("j{i:03}")}).to_string()
                })
                .collect();
            let _: () = redis::cmd("LPUSH")
                .arg(&queue)
                .arg(&jobs)
                .query_async(&mut cluster(set).await)
                .await
                .unwrap();
        }
    };
    let ran = || {
        let text = std::fs::read_to_string(&done).unwrap_or_default();
        // The handler writes the payload it was given: the job's id.
        let mut ids: Vec<String> = text.lines().map(str::to_string).collect();
        let all = ids.len();
        ids.sort_unstable();
        ids.dedup();
        (ids, all)
    };
    push(0, BEFORE).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ran().1 < 60 {
        assert!(
            std::time::Instant::now() < deadline,
            "no jobs ran on the Cluster\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let victim = owner_of(&set, &queue).await;
    set.kill(victim);
    let killed = std::time::Instant::now();
    eventually(
        "the server to say Redis is down",
        Duration::from_secs(10),
        || async { !redis_ok(&server).await },
    )
    .await;
    eventually("a replica to take over", Duration::from_secs(30), || {
        let n = set.primaries().len();
        async move { n == 3 }
    })
    .await;
    let promoted = std::time::Instant::now();
    eventually(
        "the server to recover by itself",
        Duration::from_secs(10),
        || async { redis_ok(&server).await },
    )
    .await;
    let recovered = promoted.elapsed();
    push(BEFORE, AFTER).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while ran().0.len() < BEFORE + AFTER {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} jobs done after the failover\n{}",
            ran().0.len(),
            BEFORE + AFTER,
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (unique, all) = ran();
    let twice = all - unique.len();
    println!(
        "failover: promoted {:?} after the kill, server back {recovered:?} after the promotion, \
         {} jobs done, {twice} run twice",
        promoted - killed,
        unique.len()
    );
    // A job whose acknowledgement had not reached the replica runs again, as after a crash:
    // at most the jobs in hand.
    assert!(twice <= CONCURRENCY, "{twice} jobs ran twice");
    assert_eq!(llen(&mut cluster(&set).await, &queue).await, 0);
}
