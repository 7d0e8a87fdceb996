//! Applying commands, exactly once: each id is looked up in the on-disk record first, applied
//! only if new, and recorded with its result before the result is reported. Commands are
//! applied one at a time, in the order they arrive.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use shared::control::{AgentCommand, CommandType, ResultStatus};

use crate::agent::Agent;
use crate::config::{validate_pipelines, ConfigError, PipelineConfig};
use crate::pipeline::Status;
use crate::state::{Applied, Ledger};

/// How long `stop_pipeline` waits for jobs in hand before it answers (they go on finishing).
const STOP_WAIT: Duration = Duration::from_secs(10);

pub struct Commands {
    agent: Arc<Agent>,
    ledger: tokio::sync::Mutex<Ledger>,
}

impl Commands {
    pub fn new(agent: Arc<Agent>, ledger: Ledger) -> Self {
        Self {
            agent,
            ledger: tokio::sync::Mutex::new(ledger),
        }
    }

    pub async fn cursor(&self) -> String {
        self.ledger.lock().await.cursor().to_string()
    }

    pub async fn advance(&self, cursor: &str) {
        if let Err(e) = self.ledger.lock().await.advance(cursor) {
            tracing::error!("cannot save the command cursor: {e}");
        }
    }

    /// Applies `cmd` unless its id was applied before. Returns whether it was new.
    pub async fn handle(&self, cmd: &AgentCommand) -> bool {
        let mut ledger = self.ledger.lock().await;
        if ledger.applied(&cmd.command_id).is_some() {
            return false;
        }
        self.agent.metrics.command_received(cmd.kind.verb());
        let (status, message) = if past(&cmd.deadline) {
            (
                ResultStatus::Failed,
                "arrived after its deadline; not applied".to_string(),
            )
        } else {
            match apply(&self.agent, cmd).await {
                Ok(m) => (ResultStatus::Succeeded, m),
                Err(m) => (ResultStatus::Failed, m),
            }
        };
        tracing::info!(command = %cmd.command_id, kind = cmd.kind.as_str(), ?status, "{message}");
        let applied = Applied {
            command_id: cmd.command_id.clone(),
            status,
            message,
        };
        if let Err(e) = ledger.record(applied) {
            // Applied but not recorded: a repeat would apply it again. Say so loudly.
            tracing::error!(command = %cmd.command_id, "cannot record the applied command: {e}");
        }
        if !cmd.cursor.is_empty() {
            if let Err(e) = ledger.advance(&cmd.cursor) {
                tracing::error!("cannot save the command cursor: {e}");
            }
        }
        if cmd.kind == CommandType::Shutdown {
            // Stop after the result had a moment to be reported; main settles the rest.
            let agent = self.agent.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                agent.stop.cancel();
            });
        }
        true
    }

    pub async fn unreported(&self) -> Vec<Applied> {
        self.ledger.lock().await.unreported()
    }

    pub async fn reported(&self, command_id: &str) {
        if let Err(e) = self.ledger.lock().await.reported(command_id) {
            tracing::error!("cannot save the command record: {e}");
        }
    }
}

fn past(deadline: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(deadline)
        .map(|d| d < chrono::Utc::now())
        .unwrap_or(false)
}

async fn apply(agent: &Arc<Agent>, cmd: &AgentCommand) -> Result<String, String> {
    let pipeline_id = cmd.pipeline_id.as_deref();
    let known = |id: &str| {
        agent
            .pipeline(id)
            .ok_or_else(|| format!("no pipeline {id:?} on this agent"))
    };
    let need = || pipeline_id.ok_or_else(|| "pipeline_id is required".to_string());
    match cmd.kind {
        CommandType::PausePipeline => {
            let p = known(need()?)?;
            p.set_paused(true);
            agent.beat_now.notify_one();
            Ok("paused".into())
        }
        CommandType::ResumePipeline => {
            let p = known(need()?)?;
            if p.status() == Status::Stopped {
                return Err("stopped; send start_pipeline".into());
            }
            p.set_paused(false);
            agent.beat_now.notify_one();
            Ok("resumed".into())
        }
        CommandType::StopPipeline => {
            let p = known(need()?)?;
            p.stop();
            if p.finished(STOP_WAIT).await {
                Ok("stopped".into())
            } else {
                Ok("stopping: jobs in hand are finishing".into())
            }
        }
        CommandType::StartPipeline => {
            let id = need()?;
            let Some(p) = agent.pipeline(id) else {
                // Not on this agent yet: its file in CONFIG_DIR/pipelines, if there is one.
                let dir = crate::config::pipeline_dir(&agent.config.config_dir);
                let config = crate::config::load_pipeline_file(&dir, id)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| {
                        format!(
                            "no pipeline {id:?} on this agent, nor {}/{id}.yaml",
                            dir.display()
                        )
                    })?;
                agent.start_pipeline(config);
                return Ok(format!("started from {}/{id}.yaml", dir.display()));
            };
            if p.status() != Status::Stopped {
                return Ok(format!("already {}", p.status().as_str()));
            }
            if !p.finished(STOP_WAIT).await {
                return Err("still stopping: jobs in hand are finishing".into());
            }
            agent.start_pipeline(p.config.clone());
            Ok("started".into())
        }
        CommandType::UpdateConfig => {
            let config = cmd.config.as_ref().ok_or("config is required")?;
            update_config(agent, pipeline_id, config).await
        }
        CommandType::Shutdown => Ok("shutting down".into()),
    }
}

/// `update_config`: with a `pipeline_id`, `config` is a patch of that pipeline's fields;
/// without, `config` is `{"pipelines": [...]}`, the whole new set. Validated in full before
/// anything changes: a bad config is a failed result and the running pipelines stay as they
/// are. Changed pipelines restart (jobs in hand finish first), removed ones stop.
async fn update_config(
    agent: &Arc<Agent>,
    pipeline_id: Option<&str>,
    config: &Value,
) -> Result<String, String> {
    let current: BTreeMap<String, PipelineConfig> = agent
        .all_pipelines()
        .iter()
        .map(|p| (p.config.id.clone(), p.config.clone()))
        .collect();
    // A pipeline named but not running here: its CONFIG_DIR file is the base of the patch.
    let mut base = current.clone();
    if let Some(id) = pipeline_id.filter(|id| !current.contains_key(*id)) {
        let dir = crate::config::pipeline_dir(&agent.config.config_dir);
        if let Some(p) = crate::config::load_pipeline_file(&dir, id).map_err(|e| e.to_string())? {
            base.insert(id.to_string(), p);
        }
    }
    let wanted = new_set(&base, pipeline_id, config, agent.config.on_cluster())
        .map_err(|e| e.to_string())?;
    let mut changes = Vec::new();
    for (id, old) in &current {
        if wanted.get(id) != Some(old) {
            if let Some(p) = agent.pipeline(id) {
                p.stop();
                if !p.finished(STOP_WAIT).await {
                    return Err(format!(
                        "{id}: jobs in hand did not finish in {STOP_WAIT:?}; it is stopping, send the update again"
                    ));
                }
            }
            if !wanted.contains_key(id) {
                agent.remove_pipeline(id);
                changes.push(format!("removed {id}"));
            }
        }
    }
    for (id, new) in &wanted {
        match current.get(id) {
            Some(old) if old == new => {}
            Some(_) => {
                agent.start_pipeline(new.clone());
                changes.push(format!("updated {id}"));
            }
            None => {
                agent.start_pipeline(new.clone());
                changes.push(format!("added {id}"));
            }
        }
    }
    Ok(if changes.is_empty() {
        "unchanged".into()
    } else {
        changes.join(", ")
    })
}

/// The pipeline set an `update_config` asks for, validated.
pub fn new_set(
    current: &BTreeMap<String, PipelineConfig>,
    pipeline_id: Option<&str>,
    config: &Value,
    on_cluster: bool,
) -> Result<BTreeMap<String, PipelineConfig>, ConfigError> {
    let bad = |field: &str, message: String| ConfigError::Field {
        field: field.into(),
        message,
    };
    let list: Vec<PipelineConfig> = match pipeline_id {
        Some(id) => {
            let old = current
                .get(id)
                .ok_or_else(|| bad("pipeline_id", format!("no pipeline {id:?} on this agent")))?;
            let Value::Object(patch) = config else {
                return Err(bad("config", "must be an object of pipeline fields".into()));
            };
            if patch.get("id").is_some_and(|v| v != id) {
                return Err(bad("config.id", "cannot change a pipeline's id".into()));
            }
            // Serialising a config we parsed cannot fail.
            let mut merged = serde_json::to_value(old).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut merged {
                for (k, v) in patch {
                    m.insert(k.clone(), v.clone());
                }
            }
            let new: PipelineConfig =
                serde_json::from_value(merged).map_err(|e| bad("config", e.to_string()))?;
            let mut all: Vec<PipelineConfig> = current.values().cloned().collect();
            for p in &mut all {
                if p.id == id {
                    *p = new.clone();
                }
            }
            all
        }
        None => {
            let pipelines = config.get("pipelines").ok_or_else(|| {
                bad(
                    "config.pipelines",
                    "is required without a pipeline_id".into(),
                )
            })?;
            serde_json::from_value(pipelines.clone())
                .map_err(|e| bad("config.pipelines", e.to_string()))?
        }
    };
    validate_pipelines(&list, on_cluster)?;
    Ok(list.into_iter().map(|p| (p.id.clone(), p)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn current() -> BTreeMap<String, PipelineConfig> {
        let p: PipelineConfig = serde_json::from_value(
            json!({"id": "image", "queue": "image-render", "handler": ["true"], "timeout": "60s"}),
        )
        .unwrap();
        BTreeMap::from([("image".to_string(), p)])
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let new = new_set(
            &current(),
            Some("image"),
            &json!({"concurrency": 4, "timeout": "5s"}),
            false,
        )
        .unwrap();
        let p = &new["image"];
        assert_eq!(p.concurrency, 4);
        assert_eq!(p.timeout, Duration::from_secs(5));
        assert_eq!(p.queue, "image-render");
    }

    #[test]
    fn a_bad_config_is_refused_whole() {
        let e = |pid: Option<&str>, v: Value| {
            new_set(&current(), pid, &v, false).unwrap_err().to_string()
        };
        assert!(e(Some("image"), json!({"concurrency": 0})).contains("concurrency"));
        assert!(e(Some("image"), json!({"colour": "red"})).contains("colour"));
        assert!(e(Some("image"), json!({"id": "other"})).contains("id"));
        assert!(e(Some("video"), json!({})).contains("no pipeline"));
        assert!(e(None, json!({})).contains("pipelines"));
        assert!(e(
            None,
            json!({"pipelines": [
                {"id": "a", "queue": "a", "handler": ["true"]},
                {"id": "a", "queue": "b", "handler": ["true"]}
            ]})
        )
        .contains("pipelines[1].id"));
    }

    #[test]
    fn a_whole_set_replaces_the_pipelines() {
        let new = new_set(
            &current(),
            None,
            &json!({"pipelines": [{"id": "video", "queue": "video-render", "handler": ["true"]}]}),
            false,
        )
        .unwrap();
        assert_eq!(new.keys().collect::<Vec<_>>(), ["video"]);
    }

    #[test]
    fn on_a_cluster_a_new_queue_needs_a_hash_tag() {
        let set = |v: Value| new_set(&current(), None, &json!({ "pipelines": [v] }), true);
        let e = set(json!({"id": "v", "queue": "video-render", "handler": ["true"]}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pipelines[0].queue") && e.contains("{video-render}"),
            "{e}"
        );
        assert!(set(json!({"id": "v", "queue": "{video-render}", "handler": ["true"]})).is_ok());
    }
}
