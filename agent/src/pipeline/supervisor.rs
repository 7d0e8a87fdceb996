//! The supervisor of one pipeline: recovers what a previous run left, runs the slots, and
//! restarts a crashed run up to `max_restarts` times before it pauses the pipeline.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{
    count_failure, slot, sweeper, waiting, Backoff, Crash, Host, Pipeline, MAX_BACKOFF,
    SLOT_TIMEOUT,
};
use shared::jobs::record::Outcome;
use shared::jobs::{keys, read_item, JobStatus};

use crate::history;
use crate::queue;

pub(super) async fn supervise(host: Arc<Host>, p: Arc<Pipeline>) {
    recover(&host, &p).await;
    tokio::spawn(sweeper::sweep(host.clone(), p.clone()));
    tokio::spawn(waiting::release(host.clone(), p.clone()));
    let mut restarts = 0u32;
    while !p.stop.is_cancelled() {
        let run = p.stop.child_token();
        let mut slots = tokio::task::JoinSet::new();
        for n in 0..p.config.concurrency {
            let (host, p, run) = (host.clone(), p.clone(), run.clone());
            slots.spawn(async move {
                let r = slot::slot(&host, &p, n, &run).await;
                run.cancel(); // one crashed slot ends the run
                r
            });
        }
        let mut crash = None;
        while let Some(r) = slots.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(Crash(m))) => crash = crash.or(Some(m)),
                Err(e) => crash = crash.or(Some(format!("a slot panicked: {e}"))),
            }
        }
        let Some(why) = crash else { break };
        restarts += 1;
        p.stats.restarts.fetch_add(1, Ordering::Relaxed);
        host.metrics.pipeline_restart(&p.config.id);
        if restarts > p.config.max_restarts {
            let msg = format!(
                "paused after {} restarts (max_restarts {}): {why}",
                restarts - 1,
                p.config.max_restarts
            );
            tracing::error!(pipeline = %p.config.id, "{msg}");
            p.paused.send_replace(true);
            p.stats.set_error(Some(msg));
            host.beat_now.notify_one();
            restarts = 0;
            // Waits for resume_pipeline (or stop) before trying again.
            let mut rx = p.paused.subscribe();
            tokio::select! {
                _ = rx.wait_for(|paused| !paused) => {}
                _ = p.stop.cancelled() => {}
            }
        } else {
            tracing::warn!(pipeline = %p.config.id, restarts, "pipeline crashed, restarting: {why}");
            p.stats.set_error(Some(why));
            let backoff = Duration::from_millis(500 * u64::from(restarts)).min(MAX_BACKOFF);
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = p.stop.cancelled() => {}
            }
        }
    }
    p.done.send_replace(true);
    host.beat_now.notify_one();
}

/// Jobs left in our processing list by a run that died (killed, crashed) count as one failed
/// attempt each: they go back to the queue, or to the dead letter once they have used up
/// `max_retries` — so a job that kills its worker cannot loop for ever.
async fn recover(host: &Host, p: &Pipeline) {
    let mut backoff = Backoff::default();
    loop {
        let r = async {
            let mut c = host.slot_connection(SLOT_TIMEOUT).await?;
            let jobs = queue::leftovers(&mut c, &p.keys).await?;
            let mut n = 0;
            for job in &jobs {
                let outcome = queue::fail(&mut c, &p.keys, job, p.config.max_retries).await?;
                count_failure(host, p, outcome);
                recovered_history(host, p, &mut c, job, outcome).await?;
                n += 1;
            }
            Ok::<_, redis::RedisError>(n)
        }
        .await;
        match r {
            Ok(0) => return,
            Ok(n) => {
                tracing::warn!(pipeline = %p.config.id, jobs = n, "recovered jobs a previous run left in {}", p.keys.processing);
                return;
            }
            Err(e) => {
                tracing::warn!(pipeline = %p.config.id, "cannot recover the processing list yet: {e}");
                if !backoff.wait(&p.stop).await {
                    return;
                }
            }
        }
    }
}

/// Closes the attempt a dead run left open in the job's history: it failed, and the job is
/// retried or dead by the same rule as any failure.
async fn recovered_history(
    host: &Host,
    p: &Pipeline,
    c: &mut crate::redis_target::Conn,
    item: &[u8],
    outcome: queue::Failed,
) -> redis::RedisResult<()> {
    let status = match outcome {
        queue::Failed::Retried { .. } => JobStatus::Retrying,
        queue::Failed::DeadLettered { .. } => JobStatus::Dead,
        queue::Failed::Gone => return Ok(()),
    };
    if !p.config.history.enabled {
        return Ok(());
    }
    let job = history::Job {
        item,
        read: read_item(item),
        queue: &p.config.queue,
    };
    let n: Option<u32> = redis::cmd("HGET")
        .arg(keys::record(&job.read.id))
        .arg("attempts")
        .query_async(c)
        .await?;
    let change = history::Change {
        attempt: n.map(|n| (n, Outcome::Failed)),
        ..history::Change::not_run(
            status,
            "the agent stopped during the run (found at its restart)",
            &host.agent_id,
        )
    };
    let mut pipe = redis::pipe();
    history::end_into(&mut pipe, &job, &change, &p.config.history);
    c.query(&pipe).await
}
