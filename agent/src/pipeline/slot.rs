//! One slot of a pipeline: takes a job, checks its gate (deadline, dependencies), runs the
//! handler, settles the job and writes its history, again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::redis_target::Conn;
use chrono::Utc;
use shared::jobs::record::Outcome as Ended;
use shared::jobs::{read_item, JobStatus};
use shared::time::format_ts;
use tokio_util::sync::CancellationToken;

use super::gate::{self, Gate};
use super::{count_failure, lock, Backoff, Crash, Host, Pipeline, SlotConn, TAKE_WAIT};
use crate::handler::{self, Live, Outcome, Ran};
use crate::history::{self, Change, Job};
use crate::queue::{self, End, Failed};

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
        let item = match taken {
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
        let _held = p.hold(&item);
        let job = Job {
            item: &item,
            read: read_item(&item),
            queue: &p.config.queue,
        };
        // Paused or stopped while BLMOVE waited: the job was never started, give it back.
        if !p.may_take(host) || run.is_cancelled() {
            give_back(host, p, &mut conn, &job, None).await;
            continue;
        }
        let started = Utc::now();
        let attempt = match admit(host, p, &mut conn, &job, started).await {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(pipeline = %p.config.id, "cannot start the job yet: {e}");
                conn.reset();
                give_back(host, p, &mut conn, &job, None).await;
                drop(permit);
                if !backoff.wait(run).await {
                    return Ok(());
                }
                continue;
            }
        };
        let clock = Instant::now();
        let ran = work(host, p, &mut conn, &job, attempt).await;
        drop(permit);
        record(host, p, &mut conn, &job, (attempt, clock), ran).await?;
        host.beat_now.notify_one();
    }
    Ok(())
}

/// Whether the job runs now: `Some(attempt number)` to run it; `None` when its gate ended it
/// or parked it (done here). With history off there is no record: the attempt number comes
/// from the retry count.
async fn admit(
    host: &Host,
    p: &Pipeline,
    conn: &mut SlotConn,
    job: &Job<'_>,
    started: chrono::DateTime<Utc>,
) -> redis::RedisResult<Option<u32>> {
    let c = conn.get(host).await?;
    match gate::check(c, &job.read).await? {
        Gate::Run => {}
        Gate::Wait(on) => {
            let reason = format!("waiting for {on}");
            let change = not_run(host, JobStatus::Waiting, &reason);
            let parked = send(host, p, conn, |pipe| {
                queue::move_one_into(
                    pipe,
                    &p.keys.processing,
                    &p.keys.waiting,
                    job.item,
                    End::Back,
                );
                if p.config.history.enabled {
                    history::end_into(pipe, job, &change, &p.config.history);
                }
            })
            .await;
            p.stats.remember(job, &change);
            if parked {
                tracing::debug!(pipeline = %p.config.id, job = %job.read.id, "waits for {on}");
            }
            return Ok(None);
        }
        Gate::End(status, reason) => {
            bury(host, p, conn, job, &not_run(host, status, &reason)).await;
            return Ok(None);
        }
    }
    let c = conn.get(host).await?;
    if p.config.history.enabled {
        return history::start(c, job, &host.agent_id, started)
            .await
            .map(Some);
    }
    let failed: Option<u32> = redis::cmd("HGET")
        .arg(&p.keys.retries)
        .arg(queue::job_field(job.item))
        .query_async(c)
        .await?;
    Ok(Some(failed.unwrap_or(0) + 1))
}

fn not_run<'a>(host: &'a Host, status: JobStatus, reason: &'a str) -> Change<'a> {
    Change::not_run(status, reason, &host.agent_id)
}

/// Counts a job that went to the dead letter without running (dead or expired).
pub(super) fn count_unrun(host: &Host, p: &Pipeline, status: &JobStatus) {
    count_failure(host, p, Failed::DeadLettered { attempts: 0 });
    let word = if *status == JobStatus::Expired {
        "expired"
    } else {
        "dead"
    };
    host.metrics.job_ended(&p.config.queue, word, None);
}

/// Ends a job that will never run (bad envelope, deadline passed, dependency failed): to the
/// dead letter with its reason, and counted like one.
pub(super) async fn bury(
    host: &Host,
    p: &Pipeline,
    conn: &mut SlotConn,
    job: &Job<'_>,
    c: &Change<'_>,
) {
    tracing::info!(pipeline = %p.config.id, job = %job.read.id, status = c.status.as_str(), reason = c.reason.unwrap_or(""), "job ended without running");
    send(host, p, conn, |pipe| {
        queue::move_one_into(pipe, &p.keys.processing, &p.keys.dead, job.item, End::Back);
        if p.config.history.enabled {
            history::end_into(pipe, job, c, &p.config.history);
        }
    })
    .await;
    p.stats.remember(job, c);
    count_unrun(host, p, &c.status);
}

/// Runs the handler with the job's payload, `JOB_ID` and `JOB_ATTEMPT`; while it runs, its
/// output goes to the live log every [`history::LIVE_EVERY`].
async fn work(host: &Host, p: &Pipeline, conn: &mut SlotConn, job: &Job<'_>, attempt: u32) -> Ran {
    p.stats.in_flight.fetch_add(1, Ordering::Relaxed);
    host.beat_now.notify_one();
    let started = Instant::now();
    let env = [
        ("AGENT_ID", host.agent_id.clone()),
        ("PIPELINE_ID", p.config.id.clone()),
        ("QUEUE", p.config.queue.clone()),
        ("JOB_ID", job.read.id.clone()),
        ("JOB_ATTEMPT", attempt.to_string()),
    ];
    let live = Live::default();
    let following = p.config.history.enabled;
    let ran = handler::run(
        handler::Job {
            argv: &p.config.handler,
            input: &job.read.payload,
            timeout: p.config.timeout,
            env: &env,
            live: following.then_some(&live),
        },
        &p.abort,
    );
    let ran = match (following, conn.get(host).await) {
        (true, Ok(c)) => {
            let mut c = c.clone();
            let wrote = AtomicBool::new(false);
            let ran = tokio::select! {
                ran = ran => ran,
                never = publish_live(&mut c, &job.read.id, &live, &wrote) => match never {},
            };
            // The last words before the end marker, for whoever follows the live log.
            if wrote.load(Ordering::Relaxed) {
                if let Err(e) = history::flush_live(&mut c, &job.read.id, &live).await {
                    tracing::debug!(job = %job.read.id, "live log: {e}");
                }
            }
            ran
        }
        _ => ran.await,
    };
    let took = started.elapsed();
    host.metrics.duration(&p.config.id, took.as_secs_f64());
    p.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    ran
}

/// Publishes the handler's output as it comes, for as long as it runs.
async fn publish_live(
    conn: &mut Conn,
    id: &str,
    live: &Live,
    wrote: &AtomicBool,
) -> std::convert::Infallible {
    loop {
        tokio::time::sleep(history::LIVE_EVERY).await;
        match history::flush_live(conn, id, live).await {
            Ok(true) => wrote.store(true, Ordering::Relaxed),
            Ok(false) => {}
            // The live copy is a convenience: the tails still reach the record at the end.
            Err(e) => tracing::debug!(job = %id, "live log: {e}"),
        }
    }
}

/// Settles a job the handler ran, by how it ended, writes its history and counts it.
/// `Err`: the handler could not be started at all — a fault of the pipeline, not of the job
/// (which goes back).
async fn record(
    host: &Host,
    p: &Pipeline,
    conn: &mut SlotConn,
    job: &Job<'_>,
    (attempt, clock): (u32, Instant),
    ran: Ran,
) -> Result<(), Crash> {
    let took = clock.elapsed();
    let mut change = Change {
        status: JobStatus::Succeeded,
        reason: None,
        attempt: Some((attempt, Ended::Succeeded)),
        exit_code: ran.exit_code,
        duration: Some(took),
        stdout: &ran.stdout,
        stderr: &ran.stderr,
        agent: &host.agent_id,
    };
    let reason;
    match &ran.outcome {
        Outcome::Succeeded => {
            send(host, p, conn, |pipe| {
                queue::ack_into(pipe, &p.keys, job.item);
                if p.config.history.enabled {
                    history::end_into(pipe, job, &change, &p.config.history);
                }
            })
            .await;
            p.stats.remember(job, &change);
            p.stats.processed.fetch_add(1, Ordering::Relaxed);
            host.metrics.processed(&p.config.id);
            host.metrics
                .job_ended(&p.config.queue, "succeeded", Some(took));
            p.settled.notify_one();
            *lock(&p.stats.last_job_at) = Some(format_ts(Utc::now()));
        }
        Outcome::Failed(_) | Outcome::TimedOut => {
            reason = match &ran.outcome {
                Outcome::Failed(m) => {
                    tracing::info!(pipeline = %p.config.id, job = %job.read.id, "job failed: {m}");
                    m.clone()
                }
                _ => {
                    tracing::warn!(pipeline = %p.config.id, job = %job.read.id, timeout = ?p.config.timeout, "job timed out; handler group killed");
                    format!(
                        "timed out after {}",
                        humantime::format_duration(p.config.timeout)
                    )
                }
            };
            p.stats.errors.fetch_add(1, Ordering::Relaxed);
            host.metrics.failed(&p.config.id);
            // The plan's `last_job_at`: the last job that ended, however it ended.
            *lock(&p.stats.last_job_at) = Some(format_ts(Utc::now()));
            let Some(f) = fail(host, p, conn, job.item).await else {
                return Ok(());
            };
            count_failure(host, p, f);
            change.status = match f {
                Failed::Retried { .. } => JobStatus::Retrying,
                Failed::DeadLettered { .. } => JobStatus::Dead,
                Failed::Gone => return Ok(()),
            };
            if change.status == JobStatus::Dead {
                host.metrics.job_ended(&p.config.queue, "dead", Some(took));
            }
            change.reason = Some(&reason);
            let how = if matches!(ran.outcome, Outcome::TimedOut) {
                Ended::TimedOut
            } else {
                Ended::Failed
            };
            change.attempt = Some((attempt, how));
            note(host, p, conn, job, &change).await;
        }
        Outcome::Aborted => {
            change.status = JobStatus::Retrying;
            change.reason = Some("given back: the agent stopped before it finished");
            change.attempt = Some((attempt, Ended::GivenBack));
            give_back(host, p, conn, job, Some(&change)).await;
        }
        Outcome::NotStarted(why) => {
            reason = format!("given back: the handler could not start: {why}");
            change.status = JobStatus::Retrying;
            change.reason = Some(&reason);
            change.attempt = Some((attempt, Ended::GivenBack));
            give_back(host, p, conn, job, Some(&change)).await;
            return Err(Crash(why.clone()));
        }
    }
    Ok(())
}

/// Puts a job back at the front of its queue, with its history when it had started.
async fn give_back(
    host: &Host,
    p: &Pipeline,
    conn: &mut SlotConn,
    job: &Job<'_>,
    c: Option<&Change<'_>>,
) {
    if let Some(c) = c {
        p.stats.remember(job, c);
    }
    send(host, p, conn, |pipe| {
        queue::move_one_into(
            pipe,
            &p.keys.processing,
            &p.keys.queue,
            job.item,
            End::Front,
        );
        if let (Some(c), true) = (c, p.config.history.enabled) {
            history::end_into(pipe, job, c, &p.config.history);
        }
    })
    .await;
}

/// Writes a change of a job's history on its own (a failure's, once the retry script said
/// what became of the job).
pub(super) async fn note(
    host: &Host,
    p: &Pipeline,
    conn: &mut SlotConn,
    job: &Job<'_>,
    c: &Change<'_>,
) {
    p.stats.remember(job, c);
    if p.config.history.enabled {
        send(host, p, conn, |pipe| {
            history::end_into(pipe, job, c, &p.config.history)
        })
        .await;
    }
}

/// Sends a pipeline built by `build` until Redis takes it. Only when the shutdown grace is
/// over does it give up (false): a job then stays in our processing list and the next start
/// recovers it — never lost.
async fn send(
    host: &Host,
    p: &Pipeline,
    conn: &mut SlotConn,
    build: impl Fn(&mut redis::Pipeline),
) -> bool {
    let mut backoff = Backoff::default();
    loop {
        let r = match conn.get(host).await {
            Err(e) => Err(e),
            Ok(c) => {
                let mut pipe = redis::pipe();
                build(&mut pipe);
                c.query::<()>(&pipe).await
            }
        };
        match r {
            Ok(()) => return true,
            // Someone flushed Redis's script cache: load them again and resend at once. The
            // commands of the pipeline that did run are repeated, which each of ours survives
            // (a second LREM or SET changes nothing; only a results entry could be doubled).
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                tracing::warn!(pipeline = %p.config.id, "Redis lost our scripts; loading them again");
                if let Ok(c) = conn.get(host).await {
                    if let Err(e) = queue::load_scripts(c).await {
                        tracing::warn!(pipeline = %p.config.id, "loading the scripts: {e}");
                        conn.reset();
                    }
                }
            }
            Err(e) => {
                tracing::warn!(pipeline = %p.config.id, "settling a job failed, will retry: {e}");
                conn.reset();
                if !backoff.wait(&host.abort).await {
                    return false;
                }
            }
        }
    }
}

/// The retry script, until Redis takes it: what became of a failed job.
async fn fail(host: &Host, p: &Pipeline, conn: &mut SlotConn, item: &[u8]) -> Option<Failed> {
    let mut backoff = Backoff::default();
    loop {
        let r = match conn.get(host).await {
            Err(e) => Err(e),
            Ok(c) => queue::fail(c, &p.keys, item, p.config.max_retries).await,
        };
        match r {
            Ok(f) => return Some(f),
            Err(e) => {
                tracing::warn!(pipeline = %p.config.id, "settling a failed job failed, will retry: {e}");
                conn.reset();
                if !backoff.wait(&host.abort).await {
                    return None;
                }
            }
        }
    }
}
