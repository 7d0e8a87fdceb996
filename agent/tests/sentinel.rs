//! `pipeline-agent` on Sentinel (SPEC §12): the server and two agents find the primary through
//! real sentinels (`scripts/redis-sentinel.sh`), jobs flow, the primary is SIGKILLed mid-run;
//! the server reports Redis down and recovers by itself within 10 s of the promotion, the agents
//! settle the jobs in hand and run the rest on the new primary: every job pushed is done, none
//! lost, and no alert is told twice. A master name the sentinels do not know stops the agent at
//! start.

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::sentinel::{primary_of, SentinelSet};
use common::{FakeTelegram, Server};
use support::{llen, lpush, AgentProcess};

const AGENTS: usize = 2;
const CONCURRENCY: u32 = 2;

async fn conn(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn env(set: &SentinelSet, id: String) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_SENTINELS", set.env()),
        ("REDIS_SENTINEL_MASTER", "ao-test".into()),
        ("AGENT_ID", id),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_failover_the_server_recovers_and_the_agents_lose_no_job() {
    let set = SentinelSet::start();
    let tg = FakeTelegram::start().await;
    let mut config = common::alerting_config("redis://127.0.0.1:1", tg.channel());
    config.sentinels = Some((set.addrs(), "ao-test".to_string()));
    let server = Server::start(config).await;
    let dir = std::env::temp_dir().join(format!("pa-sentinel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let done_log = dir.join("done.log");
    let yaml = format!(
        r#"
agent: {{ sweep_interval: 6s, shutdown_grace: 2s }}
pipelines:
  - id: failover
    queue: failover
    handler: ["bash", "-c", "read j; sleep 0.05; echo \"$j\" >> {log}"]
    timeout: 10s
    max_retries: 20
    concurrency: {CONCURRENCY}
"#,
        log = done_log.display()
    );
    let mut agents: Vec<AgentProcess> = (0..AGENTS)
        .map(|i| AgentProcess::start(&yaml, &env(&set, format!("sent-{i}"))))
        .collect();
    let before: Vec<String> = (0..300).map(|i| format!("job-a{i:03}")).collect();
    let mut c = conn(set.primary).await;
    lpush(&mut c, "queue:failover", &before).await;
    let ran = || {
        std::fs::read_to_string(&done_log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while ran() < 60 {
        assert!(
            Instant::now() < deadline,
            "no jobs ran through the sentinels\n{}",
            agents[0].log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The pipeline's heartbeat (worker `failover`) is on the dashboard, read via the sentinels.
    server
        .wait_for("the agents' worker alive", |s| {
            s.redis_ok && s.workers.iter().any(|w| w.name == "failover" && w.alive)
        })
        .await;
    let mut r = conn(set.replica).await;
    let (on_primary, on_replica) = (
        llen(&mut c, "queue:failover").await,
        llen(&mut r, "queue:failover").await,
    );
    println!("before the kill: queue {on_primary} on the primary, {on_replica} on the replica");
    set.kill_primary();
    server
        .wait_for("Redis reported down", |s| {
            !s.redis_ok && s.stale_since.is_some()
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while primary_of(&set.sentinels).await != Some(set.replica) {
        assert!(
            Instant::now() < deadline,
            "the sentinels never promoted the replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let promoted = Instant::now();
    server
        .wait_for("the server back on the new primary", |s| s.redis_ok)
        .await;
    let took = promoted.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "recovered {took:?} after the promotion"
    );
    let mut c = conn(set.replica).await;
    let after: Vec<String> = (0..100).map(|i| format!("job-b{i:03}")).collect();
    lpush(&mut c, "queue:failover", &after).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut pending = llen(&mut c, "queue:failover").await;
        for i in 0..AGENTS {
            pending += llen(&mut c, &format!("processing:queue:failover:sent-{i}")).await;
        }
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} jobs still pending a minute after the failover\n{}",
            agents[0].log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead: Vec<String> = redis::cmd("LRANGE")
        .arg("dead_letter:queue:failover")
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(dead.is_empty(), "nothing fails here: {dead:?}");
    let log = std::fs::read_to_string(&done_log).unwrap();
    let runs: Vec<&str> = log.lines().collect();
    let done: HashSet<&str> = runs.iter().copied().collect();
    let lost: Vec<&String> = before
        .iter()
        .chain(&after)
        .filter(|id| !done.contains(id.as_str()))
        .collect();
    let twice = runs.len() - done.len();
    println!(
        "sentinel failover: {} jobs, done {}, lost {}, run twice {twice}",
        before.len() + after.len(),
        done.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost jobs: {lost:?}");
    // A job runs twice only when its settling was lost with the old primary's last writes:
    // at most the jobs in hand then, one per slot.
    assert!(
        twice as u32 <= AGENTS as u32 * CONCURRENCY,
        "{twice} jobs ran twice"
    );
    // The dashboard counts them too, and no alert was told twice across the failover.
    server
        .wait_for("the agents' worker alive after the failover", |s| {
            s.redis_ok && s.workers.iter().any(|w| w.name == "failover" && w.alive)
        })
        .await;
    let told = tg.delivered();
    let mut seen = HashSet::new();
    let twice_told: Vec<&String> = told.iter().filter(|t| !seen.insert(*t)).collect();
    println!(
        "server recovered {took:?} after the promotion; {} alerts told",
        told.len()
    );
    assert!(
        twice_told.is_empty(),
        "told twice: {twice_told:?} of {told:?}"
    );
    for a in &mut agents {
        a.kill();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_name_the_sentinels_do_not_know_stops_the_agent_naming_it() {
    let set = SentinelSet::start();
    let mut a = AgentProcess::start(
        "pipelines: []\n",
        &[
            ("REDIS_SENTINELS", set.env()),
            ("REDIS_SENTINEL_MASTER", "no-such-master".into()),
            ("AGENT_ID", "sent-bad".into()),
        ],
    );
    let code = a.wait_exit(Duration::from_secs(10));
    assert!(code.is_some_and(|c| c != 0), "it stops: {code:?}");
    let log = a.log();
    assert!(
        log.contains("no-such-master") && log.contains("redis.master"),
        "{log}"
    );
}

/// Sentinels with a password of their own: without `REDIS_SENTINEL_PASSWORD` the agent stops at
/// start naming `redis.sentinel_password` (never the password); with it, it runs jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_with_a_password_are_asked_with_it() {
    let set = SentinelSet::start_with_password("s3ntinel-pw");
    let mut a = AgentProcess::start("pipelines: []\n", &env(&set, "sent-nopw".into()));
    let code = a.wait_exit(Duration::from_secs(10));
    assert!(code.is_some_and(|c| c != 0), "it stops: {code:?}");
    let log = a.log();
    assert!(log.contains("redis.sentinel_password"), "{log}");

    let dir = std::env::temp_dir().join(format!("pa-sentinel-pw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let done_log = dir.join("done.log");
    let yaml = format!(
        r#"
pipelines:
  - id: pw
    queue: pw
    handler: ["bash", "-c", "read j; echo \"$j\" >> {log}"]
"#,
        log = done_log.display()
    );
    let mut with = env(&set, "sent-pw".into());
    with.push(("REDIS_SENTINEL_PASSWORD", "s3ntinel-pw".into()));
    let mut a = AgentProcess::start(&yaml, &with);
    let mut c = conn(set.primary).await;
    lpush(&mut c, "queue:pw", &["job-1".to_string()]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&done_log)
        .unwrap_or_default()
        .contains("job-1")
    {
        assert!(Instant::now() < deadline, "no job ran\n{}", a.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
