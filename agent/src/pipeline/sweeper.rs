//! The sweeper: gives back jobs stranded in a pipeline's processing list.

use std::collections::HashMap;
use std::sync::Arc;

use super::{lock, Host, Pipeline, SlotConn};
use crate::queue;

/// Gives back jobs stranded in our processing list: a BLMOVE whose reply was lost (Redis
/// paused or restarted mid-call) moved a job no slot knows of. A job in the list but in no
/// slot's hand on two sweeps in a row is stranded — no reply takes that long — and goes back
/// to the front of the queue.
pub(super) async fn sweep(host: Arc<Host>, p: Arc<Pipeline>) {
    let mut suspects: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut conn = SlotConn::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(host.sweep_interval) => {}
            _ = p.stop.cancelled() => return,
        }
        let listed = match conn.get(&host).await {
            Ok(c) => queue::leftovers(c, &p.keys).await,
            Err(e) => Err(e),
        };
        let Ok(listed) = listed else {
            conn.reset();
            continue;
        };
        let mut counts: HashMap<Vec<u8>, u32> = HashMap::new();
        for job in listed {
            *counts.entry(job).or_insert(0) += 1;
        }
        let stranded: HashMap<Vec<u8>, u32> = {
            let in_hand = lock(&p.in_hand);
            counts
                .into_iter()
                .filter_map(|(job, n)| {
                    let free = n.saturating_sub(in_hand.get(&job).copied().unwrap_or(0));
                    (free > 0).then_some((job, free))
                })
                .collect()
        };
        let mut next = HashMap::new();
        for (job, n) in stranded {
            let before = suspects.get(&job).copied().unwrap_or(0);
            let mut given = 0;
            for _ in 0..before.min(n) {
                let Ok(c) = conn.get(&host).await else { break };
                match queue::give_back(c, &p.keys, &job).await {
                    Ok(true) => given += 1,
                    Ok(false) => {}
                    Err(_) => {
                        conn.reset();
                        break;
                    }
                }
            }
            if given > 0 {
                tracing::warn!(pipeline = %p.config.id, jobs = given, "gave back stranded jobs (a lost BLMOVE reply)");
            }
            if n > given {
                next.insert(job, n - given);
            }
        }
        suspects = next;
    }
}
