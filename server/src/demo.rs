//! `agent-office demo`: a realistic fleet for trying the dashboard without real workers.
//!
//! It speaks the real contracts — Contract-1 heartbeats with `EX 45`, jobs moved with `LMOVE`
//! from `queue:<q>` to `processing:queue:<q>:demo` and on to done or `dead_letter:queue:<q>`,
//! `queue:paused` with a TTL — and walks every state once per period: idle and busy, paused
//! while the watcher trades, a worker that stops beating (its key expires) and comes back, and
//! dead letters that pile up and are cleared. The workers and their queues are the server's
//! registry (on a Redis Cluster, `scripts/run.sh` registers the render queues with hash tags,
//! `{image-render}`, so each queue's lists share a slot).

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use shared::heartbeat::{Heartbeat, WorkerKind};
use shared::keys;
use shared::time::format_ts;
use shared::worker::HEARTBEAT_TTL_S;

use crate::redis_conn::RedisCallError;
use crate::redis_target::Conn;
use shared::registry::WorkerSpec;

/// A heartbeat is written at least this often, and at once when the state changes.
const BEAT_EVERY_S: u64 = 5;
/// The worker that stops beating, and the one whose jobs fail.
const FLAKY: &str = "video-render";
const FAILING: &str = "insta-render";

/// What the fleet is doing at a point of the period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scene {
    /// The watcher trades: `queue:paused` is set, render workers pause, the market is open.
    pub trading: bool,
    /// The flaky worker writes heartbeats.
    pub flaky_beating: bool,
    /// The failing worker's jobs go to the dead-letter list.
    pub failing: bool,
    /// A burst of work arrives at every render queue.
    pub burst: bool,
}

/// The scene at `t` into a period (pure, so the story can be checked without Redis).
pub fn scene(t: Duration, period: Duration) -> Scene {
    let f = (t.as_secs_f64() % period.as_secs_f64()) / period.as_secs_f64();
    Scene {
        trading: (0.30..0.50).contains(&f),
        flaky_beating: !(0.40..0.90).contains(&f),
        failing: (0.55..0.95).contains(&f),
        burst: (0.75..0.78).contains(&f),
    }
}

struct DemoWorker {
    name: String,
    /// `<q>` of `queue:<q>` (render workers).
    queue: String,
    kind: WorkerKind,
    jobs_done: u64,
    jobs_failed: u64,
    last_job_at: Option<String>,
    in_flight: Option<(Vec<u8>, u32)>,
    last_state: String,
    last_beat: u64,
    job_seq: u64,
    /// Simulated here; otherwise a real worker (a `pipeline-agent`) runs it and the demo only
    /// produces its jobs.
    simulated: bool,
}

/// Runs the demo fleet against the Redis `redis` names until `shutdown`.
/// `simulate` names the workers to play (all of the default fleet when `None`); the render
/// workers left out still get jobs, for real agents to take.
pub async fn run(
    redis: crate::redis_target::Target,
    fleet: &[WorkerSpec],
    period: Duration,
    simulate: Option<&[String]>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        period >= Duration::from_secs(60),
        "the demo period must be at least 60s"
    );
    let mut workers: Vec<DemoWorker> = fleet
        .iter()
        .cloned()
        .map(|spec| DemoWorker {
            queue: spec.queue.unwrap_or_else(|| spec.name.clone()),
            kind: spec.kind,
            jobs_done: 0,
            jobs_failed: 0,
            last_job_at: None,
            in_flight: None,
            last_state: String::new(),
            last_beat: 0,
            // Ids stay unique across runs of the demo (its history outlives it).
            job_seq: u64::try_from(Utc::now().timestamp()).unwrap_or(0) * 1000,
            simulated: simulate.is_none_or(|names| names.contains(&spec.name)),
            name: spec.name,
        })
        .collect();
    tracing::info!(period = ?period, "demo fleet writing to Redis");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut conn: Option<Conn> = None;
    let mut second: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tick.tick() => {}
        }
        if conn.is_none() {
            match redis.connect_any(Duration::from_secs(2)).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "demo: Redis unreachable, retrying");
                    continue;
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            if let Err(e) = step(c, &mut workers, second, period).await {
                tracing::warn!(error = %e, "demo: Redis call failed, reconnecting");
                conn = None;
            }
        }
        second += 1;
    }
}

/// One second of the fleet's life.
async fn step(
    conn: &mut Conn,
    workers: &mut [DemoWorker],
    second: u64,
    period: Duration,
) -> Result<(), RedisCallError> {
    let t = Duration::from_secs(second);
    let now = scene(t, period);
    let period_s = period.as_secs().max(1);
    let mut writes = redis::pipe();
    if second.is_multiple_of(period_s) && workers.iter().any(|w| w.simulated && w.name == FAILING) {
        // A new pass: the failed jobs were dealt with.
        if let Some(w) = workers.iter().find(|w| w.name == FAILING) {
            writes.del(keys::dead_letter(&w.queue)).ignore();
        }
    }
    if now.trading {
        writes
            .cmd("SET")
            .arg(keys::PAUSED)
            .arg("1")
            .arg("EX")
            .arg(3)
            .ignore();
    }
    let mut rng = rand::rng();
    for w in workers.iter_mut() {
        if w.kind == WorkerKind::Render {
            produce(w, &now, &mut rng, &mut writes);
        }
        if !w.simulated {
            continue;
        }
        let beating = w.name != FLAKY || now.flaky_beating;
        let state = match w.kind {
            WorkerKind::Render => {
                if beating {
                    render_step(conn, w, &now, &mut rng, &mut writes).await?
                } else {
                    "idle"
                }
            }
            WorkerKind::Watcher if now.trading => "trading",
            WorkerKind::Watcher => "free",
            WorkerKind::Trader if now.trading => "market_open",
            WorkerKind::Trader => "market_closed",
            WorkerKind::Unknown => continue,
        };
        let due = second.saturating_sub(w.last_beat) >= BEAT_EVERY_S || state != w.last_state;
        if beating && (due || second == 0) {
            let hb = Heartbeat {
                name: w.name.clone(),
                kind: w.kind,
                state: state.into(),
                ts: Utc::now(),
                last_job_at: w.last_job_at.clone(),
                jobs_done: w.jobs_done,
                jobs_failed: w.jobs_failed,
                mode: (w.kind == WorkerKind::Watcher && now.trading).then(|| "trading".into()),
            };
            writes
                .cmd("SET")
                .arg(keys::heartbeat(&w.name))
                .arg(hb.to_json())
                .arg("EX")
                .arg(HEARTBEAT_TTL_S)
                .ignore();
            w.last_beat = second;
            w.last_state = state.to_string();
        }
    }
    // Heartbeats and queues spread over the slots of a Cluster: `query` sends each its share.
    crate::redis_conn::with_timeout(Duration::from_secs(2), conn.query::<()>(&writes)).await
}

/// A render worker's second: finish or continue its job, take the next one, maybe get new work.
async fn render_step(
    conn: &mut Conn,
    w: &mut DemoWorker,
    now: &Scene,
    rng: &mut impl Rng,
    writes: &mut redis::Pipeline,
) -> Result<&'static str, RedisCallError> {
    let q = w.queue.clone();
    let processing = keys::processing(&q, "demo");
    if let Some((job, left)) = w.in_flight.take() {
        if left > 1 {
            w.in_flight = Some((job, left - 1));
            return Ok("busy");
        }
        writes.lrem(&processing, 1, job.clone()).ignore();
        if w.name == FAILING && now.failing {
            writes.lpush(keys::dead_letter(&q), job).ignore();
            w.jobs_failed += 1;
        } else {
            w.jobs_done += 1;
            w.last_job_at = Some(format_ts(Utc::now()));
        }
    }
    if now.trading {
        return Ok("paused");
    }
    let mut take = redis::cmd("LMOVE");
    take.arg(keys::queue(&q))
        .arg(&processing)
        .arg("RIGHT")
        .arg("LEFT");
    let job: Option<Vec<u8>> =
        crate::redis_conn::with_timeout(Duration::from_secs(2), take.query_async(conn)).await?;
    Ok(match job {
        Some(job) => {
            w.in_flight = Some((job, rng.random_range(1..=3)));
            "busy"
        }
        None => "idle",
    })
}

/// New work arrives at a render worker's queue now and then.
fn produce(w: &mut DemoWorker, now: &Scene, rng: &mut impl Rng, writes: &mut redis::Pipeline) {
    let rate = arrival_rate(&w.name, now);
    let arrivals = rate.floor() as u32 + u32::from(rng.random_bool(rate.fract()));
    for _ in 0..arrivals {
        w.job_seq += 1;
        let job = format!(
            r#"{{"id":"{}-{}","payload":"frame {} of scene {}","submitted_at":"{}"}}"#,
            w.name,
            w.job_seq,
            w.job_seq % 1000,
            rng.random_range(1..=12),
            format_ts(Utc::now())
        );
        writes.lpush(keys::queue(&w.queue), job).ignore();
    }
}

/// Jobs a second a render queue gets: a steady trickle below what one agent serves (the demo
/// handler takes about 1.8 s a job, so ~0.55 a second, ~0.45 with the trading pauses), and a
/// burst now and then — so queues rise (while trading, in a burst) and drain again.
fn arrival_rate(queue: &str, now: &Scene) -> f64 {
    if now.burst {
        return 2.5;
    }
    match queue {
        "image-render" => 0.2,
        "video-render" => 0.18,
        "insta-render" => 0.15,
        _ => 0.12,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_period_walks_through_every_state() {
        let period = Duration::from_secs(180);
        let scenes: Vec<Scene> = (0..180)
            .map(|s| scene(Duration::from_secs(s), period))
            .collect();
        assert!(scenes.iter().any(|s| s.trading) && scenes.iter().any(|s| !s.trading));
        assert!(scenes.iter().any(|s| s.failing) && scenes.iter().any(|s| !s.failing));
        let silent = scenes.iter().filter(|s| !s.flaky_beating).count() as u64;
        assert!(
            silent > HEARTBEAT_TTL_S + 10,
            "the flaky worker must stay silent long enough for its key to expire ({silent} s)"
        );
        assert!(
            scenes[0].flaky_beating && !scenes[0].failing,
            "each period starts healthy"
        );
        assert_eq!(
            scene(Duration::from_secs(181), period),
            scenes[1],
            "periods repeat"
        );
        assert!(scenes.iter().any(|s| s.burst) && !scenes[0].burst);
    }

    #[test]
    fn work_arrives_slower_than_one_agent_serves_so_queues_drain() {
        let period = Duration::from_secs(180);
        // one agent with the demo handler: ~0.55 jobs a second, paused while trading
        let served = 0.55
            * (0..180)
                .filter(|&s| !scene(Duration::from_secs(s), period).trading)
                .count() as f64;
        for q in [
            "image-render",
            "video-render",
            "insta-render",
            "music-render",
        ] {
            let arrived: f64 = (0..180)
                .map(|s| arrival_rate(q, &scene(Duration::from_secs(s), period)))
                .sum();
            assert!(
                arrived < 0.75 * served,
                "{q}: {arrived:.0} jobs a period against {served:.0} served"
            );
            let burst: f64 = (0..180)
                .map(|s| scene(Duration::from_secs(s), period))
                .filter(|s| s.burst)
                .map(|s| arrival_rate(q, &s))
                .sum();
            assert!(burst >= 10.0, "{q}: a burst worth seeing ({burst:.0} jobs)");
        }
    }
}
