//! One slot of a pipeline: takes a job, runs the handler, settles the job, again.

use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::Utc;
use shared::time::format_ts;
use tokio_util::sync::CancellationToken;

use super::{count_failure, lock, Backoff, Crash, Host, Pipeline, SlotConn, TAKE_WAIT};
use crate::handler::{self, Outcome};
use crate::queue::{self, Failed};

pub(super) async fn slot(
    host: &Host,
    p: &Pipeline,
    n: u32,
    run: &CancellationToken,
) -> Result<(), Crash> {
    let mut conn = SlotConn::default();
    let mut backoff = Backoff::default();
    let mut paused = p.paused.subscribe();
    let mut global = host.global_paused.subscribe();
    while !run.is_cancelled() {
        if !p.may_take(host) {
            tokio::select! {
                _ = paused.changed() => {}
                _ = global.changed() => {}
                _ = run.cancelled() => {}
            }
            continue;
        }
        let permit = tokio::select! {
            p = host.permits.acquire() => match p { Ok(p) => p, Err(_) => return Ok(()) },
            _ = run.cancelled() => return Ok(()),
        };
        let taken = match conn.get(host).await {
            Ok(c) => queue::take(c, &p.keys, TAKE_WAIT).await,
            Err(e) => Err(e),
        };
        let job = match taken {
            Ok(Some(job)) => job,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(pipeline = %p.config.id, slot = n, "take: {e}");
                conn.reset();
                drop(permit);
                if !backoff.wait(run).await {
                    return Ok(());
                }
                continue;
            }
        };
        backoff = Backoff::default();
        let _held = p.hold(&job);
        // Paused or stopped while BLMOVE waited: the job was never started, give it back.
        if !p.may_take(host) || run.is_cancelled() {
            settle(host, p, &mut conn, &job, Step::GiveBack).await;
            continue;
        }
        let outcome = work(host, p, &job).await;
        drop(permit);
        record(host, p, &mut conn, &job, outcome).await?;
        host.beat_now.notify_one();
    }
    Ok(())
}

/// Settles a job the handler ran, by how it ended, and counts it. `Err`: the handler could
/// not be started at all — a fault of the pipeline, not of the job (which goes back).
async fn record(
    host: &Host,
    p: &Pipeline,
    conn: &mut SlotConn,
    job: &[u8],
    outcome: Outcome,
) -> Result<(), Crash> {
    match outcome {
        Outcome::Succeeded => {
            settle(host, p, conn, job, Step::Ack).await;
            p.stats.processed.fetch_add(1, Ordering::Relaxed);
            host.metrics.processed(&p.config.id);
            *lock(&p.stats.last_job_at) = Some(format_ts(Utc::now()));
        }
        Outcome::Failed(_) | Outcome::TimedOut => {
            if let Outcome::Failed(m) = &outcome {
                tracing::info!(pipeline = %p.config.id, "job failed: {m}");
            } else {
                tracing::warn!(pipeline = %p.config.id, timeout = ?p.config.timeout, "job timed out; handler group killed");
            }
            p.stats.errors.fetch_add(1, Ordering::Relaxed);
            host.metrics.failed(&p.config.id);
            // The plan's `last_job_at`: the last job that ended, however it ended.
            *lock(&p.stats.last_job_at) = Some(format_ts(Utc::now()));
            if let Some(f) = settle(host, p, conn, job, Step::Fail).await {
                count_failure(host, p, f);
            }
        }
        Outcome::Aborted => {
            settle(host, p, conn, job, Step::GiveBack).await;
        }
        Outcome::NotStarted(why) => {
            settle(host, p, conn, job, Step::GiveBack).await;
            return Err(Crash(why));
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Step {
    Ack,
    Fail,
    GiveBack,
}

/// Runs a step that must happen for a job we hold until Redis takes it. Only when the
/// shutdown grace is over does it give up: the job then stays in our processing list and the
/// next start recovers it — never lost. Returns what became of a failed job.
async fn settle(
    host: &Host,
    p: &Pipeline,
    conn: &mut SlotConn,
    job: &[u8],
    step: Step,
) -> Option<Failed> {
    let mut backoff = Backoff::default();
    loop {
        let r = match conn.get(host).await {
            Err(e) => Err(e),
            Ok(c) => match step {
                Step::Ack => queue::ack(c, &p.keys, job).await.map(|()| None),
                Step::GiveBack => queue::give_back(c, &p.keys, job).await.map(|_| None),
                Step::Fail => queue::fail(c, &p.keys, job, p.config.max_retries)
                    .await
                    .map(Some),
            },
        };
        match r {
            Ok(v) => return v,
            Err(e) => {
                tracing::warn!(pipeline = %p.config.id, "settling a job failed, will retry: {e}");
                conn.reset();
                if !backoff.wait(&host.abort).await {
                    return None;
                }
            }
        }
    }
}

async fn work(host: &Host, p: &Pipeline, job: &[u8]) -> Outcome {
    p.stats.in_flight.fetch_add(1, Ordering::Relaxed);
    host.beat_now.notify_one();
    let started = Instant::now();
    let env = [
        ("AGENT_ID", host.agent_id.clone()),
        ("PIPELINE_ID", p.config.id.clone()),
        ("QUEUE", p.config.queue.clone()),
    ];
    let outcome = handler::run(
        handler::Job {
            argv: &p.config.handler,
            input: job,
            timeout: p.config.timeout,
            env: &env,
        },
        &p.abort,
    )
    .await;
    host.metrics
        .duration(&p.config.id, started.elapsed().as_secs_f64());
    p.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    outcome
}
