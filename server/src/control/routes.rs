//! Contract 3's HTTP endpoints.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::control::command::Target;
use shared::control::{
    agent, valid, AgentHeartbeat, AgentView, AgentsReply, AuditReply, CommandRequest,
    CommandResult, CommandView, CommandsReply, ControlInfo, CreatedReply, DryRunReply, Excluded,
    Labels, PollReply, RegisterReply, Registration, ResultStatus, Selector, TargetState,
    TargetView, Via, HEARTBEAT_INTERVAL_S,
};
use shared::nodes::format_ts;

use super::registry::{self, RegistryError};
use super::{audit, ledger, queues, read_json, Audit, Caller, Control, Need};
use crate::api::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/agents", get(list_agents))
        .route("/api/agents/register", post(register))
        .route("/api/agents/{id}", delete(unregister))
        .route("/api/agents/{id}/heartbeat", post(heartbeat))
        .route("/api/agents/{id}/labels", put(put_labels))
        .route("/api/agents/{id}/commands", get(poll))
        .route("/api/commands", get(list_commands).post(send_command))
        .route("/api/commands/{id}", get(get_command))
        .route("/api/commands/{id}/results", post(report))
        .route("/api/queues/{q}/dead-letter/retry", post(retry_dead))
        .route("/api/queues/{q}/dead-letter/purge", post(purge_dead))
        .route("/api/queues/{q}/processing/{owner}/requeue", post(requeue))
        .route("/api/audit", get(list_audit))
        .route("/api/control", get(info))
}

async fn info(State(ctl): State<Control>) -> Json<ControlInfo> {
    Json(ctl.info())
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Full => ApiError::Conflict(e.to_string()),
            RegistryError::Unknown(_) => ApiError::NotFound(e.to_string()),
            RegistryError::Redis(r) => ApiError::Redis(r),
        }
    }
}

fn now() -> String {
    format_ts(Utc::now())
}

fn check_id(field: &str, id: &str) -> Result<(), ApiError> {
    Ok(valid::id(field, id)?)
}

/// Queue names are the `<q>` of `queue:<q>`: the id characters plus `:` and hash-tag braces.
fn check_queue(q: &str) -> Result<(), ApiError> {
    let ok = !q.is_empty()
        && q.len() <= 200
        && q.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '{' | '}'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            "q",
            "a queue name is 1-200 characters of A-Z a-z 0-9 . _ - : { }",
        ))
    }
}

async fn register(
    State(ctl): State<Control>,
    caller: Caller,
    body: Body,
) -> Result<Json<RegisterReply>, ApiError> {
    ctl.clone()
        .guarded(
            &caller,
            Need::Agent,
            Audit::Always,
            "agent.register",
            "",
            async move {
                let reg: Registration = read_json(body).await?;
                reg.validate()?;
                let id = reg
                    .agent_id
                    .clone()
                    .unwrap_or_else(|| format!("agent-{:016x}", rand::random::<u64>()));
                registry::register(&ctl.store, &id, &reg, &now()).await?;
                Ok(Json(RegisterReply {
                    agent_id: id,
                    heartbeat_interval_s: HEARTBEAT_INTERVAL_S,
                }))
            },
        )
        .await
}

async fn unregister(
    State(ctl): State<Control>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let target = id.clone();
    ctl.clone()
        .guarded(
            &caller,
            Need::AgentOrOperator,
            Audit::Always,
            "agent.unregister",
            &target,
            async move {
                check_id("agent_id", &id)?;
                if registry::unregister(&ctl.store, &id).await? {
                    Ok(StatusCode::NO_CONTENT)
                } else {
                    Err(RegistryError::Unknown(id).into())
                }
            },
        )
        .await
}

async fn heartbeat(
    State(ctl): State<Control>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let target = id.clone();
    ctl.clone()
        .guarded(
            &caller,
            Need::Agent,
            Audit::RefusalsOnly,
            "agent.heartbeat",
            &target,
            async move {
                check_id("agent_id", &id)?;
                let beat: AgentHeartbeat = read_json(body).await?;
                beat.validate()?;
                if beat.agent_id != id {
                    return Err(ApiError::field(
                        "agent_id",
                        format!("the body is for {:?}, the path for {id:?}", beat.agent_id),
                    ));
                }
                registry::beat(&ctl.store, &beat).await?;
                Ok(StatusCode::NO_CONTENT)
            },
        )
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelsBody {
    labels: Labels,
}

async fn put_labels(
    State(ctl): State<Control>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<AgentView>, ApiError> {
    let target = id.clone();
    ctl.clone()
        .guarded(
            &caller,
            Need::Operator,
            Audit::Always,
            "agent.labels",
            &target,
            async move {
                check_id("agent_id", &id)?;
                let LabelsBody { labels } = read_json(body).await?;
                valid::labels("labels", &labels)?;
                let record = registry::set_labels(&ctl.store, &id, &labels, &now()).await?;
                let seen = ctl.agents.borrow().clone();
                let view = seen
                    .find(&id)
                    .map(|mut v| {
                        v.labels = record.labels.clone();
                        v
                    })
                    .unwrap_or_else(|| agent::agent_view(&record, None, None));
                Ok(Json(view))
            },
        )
        .await
}

#[derive(Deserialize)]
struct SelectorQuery {
    selector: Option<String>,
}

async fn list_agents(
    State(ctl): State<Control>,
    Query(q): Query<SelectorQuery>,
) -> Result<Response, ApiError> {
    let seen = ctl.agents.borrow().clone();
    let Some(text) = q.selector.filter(|s| !s.trim().is_empty()) else {
        return Ok(json_bytes(seen.json()));
    };
    let selector = Selector::parse_str("selector", &text)?;
    let agents = seen
        .entries
        .iter()
        .filter(|e| selector.matches(&e.view.labels))
        .map(|e| e.at(seen.at))
        .collect();
    Ok(Json(AgentsReply { agents }).into_response())
}

fn json_bytes(body: bytes::Bytes) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
struct DryRun {
    #[serde(default)]
    dry_run: Option<String>,
}

async fn send_command(
    State(ctl): State<Control>,
    caller: Caller,
    Query(q): Query<DryRun>,
    body: Body,
) -> Result<Response, ApiError> {
    let dry = matches!(q.dry_run.as_deref(), Some("true" | "1"));
    let (action, audit) = if dry {
        ("command.dry_run", Audit::RefusalsOnly)
    } else {
        ("command.send", Audit::Always)
    };
    let remote = caller.remote.clone();
    ctl.clone()
        .guarded(&caller, Need::Operator, audit, action, "", async move {
            let raw: Value = read_json(body).await?;
            let request = CommandRequest::parse(&raw)?;
            // The registry as the collector last read it (at most two cycles behind a change):
            // no 10,000-agent read per command. Only when that matches nobody is Redis asked,
            // so an agent registered a moment ago is not refused.
            let seen = ctl.agents.borrow().clone();
            let labels: Vec<(String, Labels)> = seen
                .entries
                .iter()
                .map(|e| (e.view.agent_id.clone(), e.view.labels.clone()))
                .collect();
            let (mut matched, mut excluded) = resolve(&request.target, &labels);
            if matched.is_empty() {
                let fresh: Vec<(String, Labels)> = registry::all(&ctl.store)
                    .await?
                    .into_iter()
                    .map(|r| (r.agent_id, r.labels))
                    .collect();
                (matched, excluded) = resolve(&request.target, &fresh);
            }
            if dry {
                if let Target::Agent(_) = request.target {
                    // Naming one agent: the others are not worth listing.
                    excluded.clear();
                }
                return Ok(Json(DryRunReply { matched, excluded }).into_response());
            }
            if matched.is_empty() {
                return Err(ApiError::Unprocessable(match &request.target {
                    Target::Agent(id) => format!("no agent {id:?} is registered; nothing was sent"),
                    Target::Selector(_) => {
                        "the selector matches no registered agent; nothing was sent (try ?dry_run=true)"
                            .into()
                    }
                }));
            }
            let created = Utc::now();
            let deadline = created + chrono::Duration::seconds(request.deadline_s as i64);
            let (selector, agent_id) = match &request.target {
                Target::Agent(id) => (None, Some(id.clone())),
                Target::Selector(s) => (Some(s.clone()), None),
            };
            let command = CommandView {
                command_id: ledger::new_id(created),
                kind: request.kind,
                pipeline_id: request.pipeline_id.clone(),
                config: request.config.clone(),
                created_at: format_ts(created),
                deadline: format_ts(deadline),
                sent_by: format!("operator@{remote}"),
                selector,
                agent_id,
                targets: matched
                    .iter()
                    .map(|a| TargetView {
                        agent_id: a.clone(),
                        state: TargetState::Queued,
                        via: None,
                        message: None,
                        updated_at: None,
                    })
                    .collect(),
            };
            ledger::create(&ctl.store, &command).await?;
            tracing::info!(
                command = %command.command_id,
                kind = command.kind.as_str(),
                targets = matched.len(),
                "command sent"
            );
            Ok((
                StatusCode::CREATED,
                Json(CreatedReply {
                    command_id: command.command_id,
                    targets: matched,
                }),
            )
                .into_response())
        })
        .await
}

/// Splits agents into those the target reaches and those it does not, with the reason.
fn resolve(target: &Target, agents: &[(String, Labels)]) -> (Vec<String>, Vec<Excluded>) {
    let mut matched = Vec::new();
    let mut excluded = Vec::new();
    for (id, labels) in agents {
        let verdict = match target {
            Target::Agent(want) if want == id => Ok(()),
            Target::Agent(want) => Err(format!("not the agent named ({want})")),
            Target::Selector(s) => s.explain(labels),
        };
        match verdict {
            Ok(()) => matched.push(id.clone()),
            Err(reason) => excluded.push(Excluded {
                agent_id: id.clone(),
                reason,
            }),
        }
    }
    (matched, excluded)
}

#[derive(Deserialize)]
struct After {
    after: Option<String>,
}

async fn poll(
    State(ctl): State<Control>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<After>,
) -> Result<Json<PollReply>, ApiError> {
    let target = id.clone();
    ctl.clone()
        .guarded(
            &caller,
            Need::Agent,
            Audit::RefusalsOnly,
            "agent.poll",
            &target,
            async move {
                check_id("agent_id", &id)?;
                let after = q
                    .after
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| "0".into());
                if !ledger::valid_cursor(&after) {
                    return Err(ApiError::field(
                        "after",
                        "must be a cursor from an earlier answer",
                    ));
                }
                let commands =
                    ledger::read_stream(&ctl.store, &id, &after, ledger::POLL_BATCH).await?;
                let ids: Vec<String> = commands.iter().map(|c| c.command_id.clone()).collect();
                ledger::transition(
                    &ctl.store,
                    &ids,
                    &id,
                    TargetState::Delivered,
                    Via::Poll,
                    "",
                    &now(),
                )
                .await?;
                let cursor = commands.last().map(|c| c.cursor.clone()).unwrap_or(after);
                Ok(Json(PollReply { commands, cursor }))
            },
        )
        .await
}

async fn report(
    State(ctl): State<Control>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let target = id.clone();
    ctl.clone()
        .guarded(
            &caller,
            Need::Agent,
            Audit::Always,
            "command.result",
            &target,
            async move {
                check_id("command_id", &id)?;
                let result: CommandResult = read_json(body).await?;
                result.validate()?;
                apply_result(&ctl, &id, &result, Via::Poll).await?;
                Ok(StatusCode::NO_CONTENT)
            },
        )
        .await
}

/// Records an agent's result (over REST or Redis); a repeat changes nothing.
pub async fn apply_result(
    ctl: &Control,
    command_id: &str,
    result: &CommandResult,
    via: Via,
) -> Result<(), ApiError> {
    let state = match result.status {
        ResultStatus::Succeeded => TargetState::Succeeded,
        ResultStatus::Failed => TargetState::Failed,
    };
    let ids = [command_id.to_string()];
    let moved = ledger::transition(
        &ctl.store,
        &ids,
        &result.agent_id,
        state,
        via,
        &result.message,
        &now(),
    )
    .await?;
    if moved == 0 {
        // Either a repeat (fine, nothing to do) or not a target at all (say so).
        let known = ledger::get(&ctl.store, command_id)
            .await?
            .is_some_and(|c| c.targets.iter().any(|t| t.agent_id == result.agent_id));
        if !known {
            return Err(ApiError::NotFound(format!(
                "command {command_id:?} has no target {:?}",
                result.agent_id
            )));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct LedgerQuery {
    agent: Option<String>,
    state: Option<String>,
    limit: Option<usize>,
}

async fn list_commands(
    State(ctl): State<Control>,
    Query(q): Query<LedgerQuery>,
) -> Result<Json<CommandsReply>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let state = match q.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(TargetState::parse(s).ok_or_else(|| {
            ApiError::field(
                "state",
                "one of queued, delivered, succeeded, failed, expired",
            )
        })?),
    };
    let filtered = q.agent.is_some() || state.is_some();
    let scan = if filtered { 500 } else { limit };
    let commands = ledger::recent(&ctl.store, scan)
        .await?
        .into_iter()
        .filter(|c| {
            c.targets.iter().any(|t| {
                q.agent.as_deref().is_none_or(|a| t.agent_id == a)
                    && state.is_none_or(|s| t.state == s)
            })
        })
        .take(limit)
        .collect();
    Ok(Json(CommandsReply { commands }))
}

async fn get_command(
    State(ctl): State<Control>,
    Path(id): Path<String>,
) -> Result<Json<CommandView>, ApiError> {
    check_id("command_id", &id)?;
    ledger::get(&ctl.store, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no command {id:?} in the ledger")))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    count: Option<u64>,
}

async fn retry_dead(
    State(ctl): State<Control>,
    caller: Caller,
    Path(q): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let target = q.clone();
    ctl.clone()
        .guarded(
            &caller,
            Need::Operator,
            Audit::Always,
            "queue.dead_letter.retry",
            &target,
            async move {
                check_queue(&q)?;
                let bytes = super::read_body(body).await?;
                let body: RetryBody = if bytes.iter().all(u8::is_ascii_whitespace) {
                    RetryBody::default()
                } else {
                    super::parse_json(&bytes)?
                };
                if body.count == Some(0) {
                    return Err(ApiError::field(
                        "count",
                        "must be at least 1 (leave it out for all)",
                    ));
                }
                let m = queues::retry_dead(&ctl.store, &q, body.count.unwrap_or(queues::MAX_MOVE))
                    .await?;
                tracing::info!(queue = %q, moved = m.moved, "dead letters retried");
                Ok(Json(json!({"moved": m.moved, "remaining": m.remaining})))
            },
        )
        .await
}

async fn purge_dead(
    State(ctl): State<Control>,
    caller: Caller,
    Path(q): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let target = q.clone();
    ctl.clone()
        .guarded(
            &caller,
            Need::Operator,
            Audit::Always,
            "queue.dead_letter.purge",
            &target,
            async move {
                check_queue(&q)?;
                let purged = queues::purge_dead(&ctl.store, &q).await?;
                tracing::info!(queue = %q, purged, "dead letters purged");
                Ok(Json(json!({"purged": purged})))
            },
        )
        .await
}

async fn requeue(
    State(ctl): State<Control>,
    caller: Caller,
    Path((q, owner)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("{q}/{owner}");
    ctl.clone()
        .guarded(&caller, Need::Operator, Audit::Always, "queue.processing.requeue", &target, async move {
            check_queue(&q)?;
            check_id("owner", &owner)?;
            if let Some(why) = super::orphan::owner_alive(&ctl, &owner).await? {
                return Err(ApiError::Conflict(format!(
                    "{owner} is not orphaned: {why}; nothing was moved"
                )));
            }
            let m = queues::requeue(&ctl.store, &q, &owner).await?;
            tracing::info!(queue = %q, owner = %owner, moved = m.moved, "orphaned jobs requeued");
            Ok(Json(json!({"moved": m.moved, "remaining": m.remaining})))
        })
        .await
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn list_audit(
    State(ctl): State<Control>,
    Query(q): Query<Limit>,
) -> Result<Json<AuditReply>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(AuditReply {
        entries: audit::recent(&ctl.store, limit).await?,
    }))
}
