//! Commands: send (or preview whom one reaches), the ledger, and the agent's side — polling
//! its commands and reporting results.

use axum::body::Body;
use axum::extract::{FromRef, Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use shared::control::command::Target;
use shared::control::{
    CommandRequest, CommandResult, CommandView, CommandsReply, CreatedReply, DryRunReply, Excluded,
    Labels, PollReply, TargetState, TargetView, Via,
};
use shared::time::format_ts;

use super::{check_id, now};
use crate::control::call::{action, Action, Call};
use crate::control::{ledger, read_json, registry, Audit, Control, Need};
use crate::error::ApiError;

pub fn router<S>() -> Router<S>
where
    Control: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/commands", get(list_commands).post(send_command))
        .route("/api/commands/{id}", get(get_command))
        .route("/api/commands/{id}/results", post(report))
        .route("/api/agents/{id}/commands", get(poll))
}

/// `POST /api/commands`, or with `?dry_run=true` its preview (audited only when refused).
struct SendCommand;

impl Action for SendCommand {
    const NEED: Need = Need::Operator;
    fn audit(query: Option<&str>) -> (&'static str, Audit) {
        if is_dry_run(query) {
            ("command.dry_run", Audit::RefusalsOnly)
        } else {
            ("command.send", Audit::Always)
        }
    }
}

fn is_dry_run(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| matches!(pair, "dry_run=true" | "dry_run=1"))
    })
}

action!(
    /// Every few seconds from every agent: only refusals are worth the capped log.
    Poll,
    "agent.poll",
    Agent,
    RefusalsOnly
);
action!(Report, "command.result", Agent, Always);

async fn send_command(
    call: Call<SendCommand>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let dry = is_dry_run(query.as_deref());
    let result = async {
        let raw: Value = read_json(body).await?;
        let request = CommandRequest::parse(&raw)?;
        let (matched, mut excluded) = targets(&call.ctl, &request.target).await?;
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
        let command = command_view(&request, &matched, call.remote());
        ledger::create(&call.ctl.store, &command).await?;
        tracing::info!(
            command = %command.command_id,
            kind = command.kind.as_str(),
            targets = matched.len(),
            "command sent"
        );
        let reply = CreatedReply {
            command_id: command.command_id,
            targets: matched,
        };
        Ok((StatusCode::CREATED, Json(reply)).into_response())
    }
    .await;
    call.record(result).await
}

/// Whom `target` reaches, and why each other agent is left out. The registry as the collector
/// last read it (at most two cycles behind a change): no 10,000-agent read per command. Only
/// when that matches nobody is Redis asked, so an agent registered a moment ago is not refused.
async fn targets(ctl: &Control, target: &Target) -> Result<(Vec<String>, Vec<Excluded>), ApiError> {
    let seen = ctl.agents.borrow().clone();
    let labels: Vec<(String, Labels)> = seen
        .entries
        .iter()
        .map(|e| (e.view.agent_id.clone(), e.view.labels.clone()))
        .collect();
    let (matched, excluded) = resolve(target, &labels);
    if !matched.is_empty() {
        return Ok((matched, excluded));
    }
    let fresh: Vec<(String, Labels)> = registry::all(&ctl.store)
        .await?
        .into_iter()
        .map(|r| (r.agent_id, r.labels))
        .collect();
    Ok(resolve(target, &fresh))
}

/// The ledger's new entry: every target queued, the deadline from now.
fn command_view(request: &CommandRequest, matched: &[String], remote: &str) -> CommandView {
    let created = Utc::now();
    let deadline = created + chrono::Duration::seconds(request.deadline_s as i64);
    let (selector, agent_id) = match &request.target {
        Target::Agent(id) => (None, Some(id.clone())),
        Target::Selector(s) => (Some(s.clone()), None),
    };
    CommandView {
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
    }
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
    call: Call<Poll>,
    Path(id): Path<String>,
    Query(q): Query<After>,
) -> Result<Json<PollReply>, ApiError> {
    let result = async {
        check_id("agent_id", &id)?;
        let after = q
            .after
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| shared::control::stream::START.into());
        if !shared::control::stream::is_cursor(&after) {
            return Err(ApiError::field(
                "after",
                "must be a cursor from an earlier answer",
            ));
        }
        let store = &call.ctl.store;
        let commands = ledger::read_stream(store, &id, &after, ledger::POLL_BATCH).await?;
        let ids: Vec<String> = commands.iter().map(|c| c.command_id.clone()).collect();
        let (delivered, via) = (TargetState::Delivered, Via::Poll);
        ledger::transition(store, &ids, &id, delivered, via, "", &now()).await?;
        let cursor = commands.last().map(|c| c.cursor.clone()).unwrap_or(after);
        Ok(Json(PollReply { commands, cursor }))
    }
    .await;
    call.record(result).await
}

async fn report(
    call: Call<Report>,
    Path(id): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let result = async {
        check_id("command_id", &id)?;
        let result: CommandResult = read_json(body).await?;
        result.validate()?;
        ledger::apply_result(&call.ctl.store, &id, &result, Via::Poll).await?;
        Ok(StatusCode::NO_CONTENT)
    }
    .await;
    call.record(result).await
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
