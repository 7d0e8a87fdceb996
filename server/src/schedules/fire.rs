//! The firing task. Every replica runs it: each pass reads Redis's clock (one clock for all
//! replicas), reloads the schedules when their version moved, and for each enabled schedule
//! pushes the due times [`Plan::to_fire`] names, each claimed and pushed in one script keyed on
//! the *due* time — so two replicas, a replica that restarts or one that takes over push each
//! due time once. No leader is needed.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::schedules::{item, job_id, Schedule};
use shared::time::format_ts;
use tokio_util::sync::CancellationToken;

use super::cron::{plan, Plan};
use super::store;
use crate::control::Store;

/// How often a pass runs: a due second is pushed within about this long.
pub const EVERY: Duration = Duration::from_millis(250);

pub async fn run(store: Store, stop: CancellationToken) {
    let mut loaded: Option<(String, Vec<(Schedule, Plan)>)> = None;
    let mut warned = false;
    loop {
        match pass(&store, &mut loaded).await {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                tracing::warn!("schedules: cannot read or fire: {e}");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn pass(
    store: &Store,
    loaded: &mut Option<(String, Vec<(Schedule, Plan)>)>,
) -> Result<(), crate::redis_conn::RedisCallError> {
    let store::Tick { version, now, last } = store::tick(store).await?;
    if loaded.as_ref().is_none_or(|(v, _)| *v != version) {
        let (schedules, _) = store::all(store).await?;
        *loaded = Some((version, plans(schedules)));
    }
    let Some((_, plans)) = loaded.as_ref() else {
        return Ok(());
    };
    for (s, p) in plans.iter().filter(|(s, _)| s.enabled) {
        fire_due(store, s, p, &last, now).await?;
    }
    Ok(())
}

/// The schedules that read (a stored one that no longer does is logged and left out).
fn plans(schedules: Vec<Schedule>) -> Vec<(Schedule, Plan)> {
    schedules
        .into_iter()
        .filter_map(|s| match plan(&s.cron, Some(&s.timezone)) {
            Ok(p) => Some((s, p)),
            Err(e) => {
                tracing::warn!(schedule = %s.name, "not firing a schedule that does not read: {e}");
                None
            }
        })
        .collect()
}

async fn fire_due(
    store: &Store,
    s: &Schedule,
    p: &Plan,
    last: &HashMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), crate::redis_conn::RedisCallError> {
    let created = DateTime::parse_from_rfc3339(&s.created_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    let after = last.get(&s.name).copied().unwrap_or(created).max(created);
    let due = p.to_fire(after, now);
    for d in &due {
        let id = job_id(&s.name, &format_ts(*d));
        if store::fire(store, s, *d, item(&s.job, &id)).await? {
            tracing::info!(schedule = %s.name, job = %id, queue = %s.queue, "schedule fired");
        }
    }
    if let Some(latest) = due.last() {
        store::set_last(store, &s.name, *latest).await?;
    }
    Ok(())
}
