//! Jobs waiting for their dependencies (SPEC §10). A job whose `depends_on` are not all done
//! is parked in its queue's waiting list (`agent-office:waiting:queue:<q>`, the queue's slot)
//! instead of holding a slot. This loop looks at the oldest [`BATCH`] waiting jobs once a
//! second — sooner when one of this pipeline's jobs has just succeeded — reads their
//! dependencies' statuses in one round trip, and moves each job that may now run to the front
//! of its queue, or ends it `dead` when a dependency died. Every move is one script that first
//! removes the job from the waiting list, so two agents never both release it, and a job
//! waiting in Redis survives any agent's death.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use shared::jobs::{read_item, JobStatus};

use super::gate::{self, Gate};
use super::slot;
use super::{Host, Pipeline, SlotConn};
use crate::history::{Change, Job};
use crate::queue::{self, End};

/// Longest a waiting job goes unlooked at.
const EVERY: Duration = Duration::from_secs(1);
/// Waiting jobs looked at per pass (the oldest).
const BATCH: isize = 100;

pub(super) async fn release(host: Arc<Host>, p: Arc<Pipeline>) {
    let mut conn = SlotConn::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = p.settled.notified() => {}
            _ = p.stop.cancelled() => return,
        }
        if let Err(e) = pass(&host, &p, &mut conn).await {
            tracing::debug!(pipeline = %p.config.id, "waiting jobs: {e}");
            conn.reset();
        }
    }
}

async fn pass(host: &Host, p: &Pipeline, conn: &mut SlotConn) -> redis::RedisResult<()> {
    let c = conn.get(host).await?;
    let (waiting, count): (Vec<Vec<u8>>, u64) = redis::pipe()
        .cmd("LRANGE")
        .arg(&p.keys.waiting)
        .arg(-BATCH)
        .arg(-1)
        .cmd("LLEN")
        .arg(&p.keys.waiting)
        .query_async(c)
        .await?;
    host.metrics.waiting(&p.config.queue, count);
    if waiting.is_empty() {
        return Ok(());
    }
    let jobs: Vec<Job<'_>> = waiting
        .iter()
        .rev()
        .map(|item| Job {
            item,
            read: read_item(item),
            queue: &p.config.queue,
        })
        .collect();
    let deps: Vec<String> = jobs
        .iter()
        .flat_map(|j| j.read.depends_on.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let statuses = gate::statuses(c, &deps).await?;
    let now = Utc::now();
    for job in &jobs {
        let mine: Vec<Option<JobStatus>> = job
            .read
            .depends_on
            .iter()
            .map(|d| deps.binary_search(d).ok().and_then(|i| statuses[i].clone()))
            .collect();
        let g = gate::before_reading(&job.read, now)
            .unwrap_or_else(|| gate::by_dependencies(&job.read.depends_on, &mine));
        match g {
            Gate::Wait(_) => {}
            Gate::Run => {
                let c = conn.get(host).await?;
                if queue::move_one(c, &p.keys.waiting, &p.keys.queue, job.item, End::Front).await? {
                    tracing::debug!(pipeline = %p.config.id, job = %job.read.id, "dependencies done: released");
                }
            }
            Gate::End(status, reason) => {
                let c = conn.get(host).await?;
                // Only the agent whose move took the job from the waiting list ends it.
                if queue::move_one(c, &p.keys.waiting, &p.keys.dead, job.item, End::Back).await? {
                    let change = Change::not_run(status, &reason, &host.agent_id);
                    slot::note(host, p, conn, job, &change).await;
                    slot::count_unrun(host, p, &change.status);
                }
            }
        }
    }
    Ok(())
}
