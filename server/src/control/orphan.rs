//! Whether a processing list's owner is really gone: no live heartbeat (worker or agent) and
//! none seen within the grace period. Asked only before a requeue, so it may read Redis.

use chrono::Utc;
use shared::{control, keys, parse_heartbeat};

use super::Control;
use crate::error::ApiError;

/// `Some(why)` when the owner is alive or beat within the grace period.
pub async fn owner_alive(ctl: &Control, owner: &str) -> Result<Option<String>, ApiError> {
    let grace = ctl.config.requeue_grace.as_secs() as i64;
    let within = |age: Option<i64>| age.filter(|a| *a < grace);
    {
        let nodes = ctl.nodes.borrow();
        if let Some(w) = nodes.snapshot.workers.iter().find(|w| w.name == owner) {
            if w.alive {
                return Ok(Some("its worker heartbeat is alive".into()));
            }
            if let Some(age) = within(w.last_beat_age_s) {
                return Ok(Some(format!("it last beat {age}s ago (grace {grace}s)")));
            }
        }
    }
    {
        let agents = ctl.agents.borrow();
        if let Some(a) = agents.find(owner) {
            if a.online {
                return Ok(Some("the agent is online".into()));
            }
            if let Some(age) = within(a.last_beat_age_s) {
                return Ok(Some(format!(
                    "the agent last beat {age}s ago (grace {grace}s)"
                )));
            }
        }
    }
    // The snapshot may be a cycle old, or the server just started: ask Redis itself.
    let worker_key = keys::heartbeat(owner);
    let agent_key = control::keys::beat(owner);
    let (worker, agent): (Option<Vec<u8>>, Option<Vec<u8>>) = ctl
        .store
        .run(|mut c| async move {
            let mut pipe = redis::pipe();
            pipe.cmd("GET").arg(worker_key).cmd("GET").arg(agent_key);
            // The two keys are in different slots of a Cluster.
            c.query(&pipe).await
        })
        .await?;
    if agent.is_some() {
        return Ok(Some("the agent's heartbeat key exists".into()));
    }
    if let Some(hb) = worker.and_then(|b| parse_heartbeat(&b, Utc::now()).ok()) {
        let age = hb.age_s(Utc::now());
        if age < grace.max(shared::heartbeat::ALIVE_WINDOW_S) {
            return Ok(Some(format!(
                "its heartbeat is {age}s old (grace {grace}s)"
            )));
        }
    }
    Ok(None)
}
