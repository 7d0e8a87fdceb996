//! Agents: list (with a label selector), register, unregister, heartbeat, replace labels.

use axum::body::Body;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use shared::control::{
    agent, valid, AgentHeartbeat, AgentView, AgentsReply, Labels, RegisterReply, Registration,
    Selector, HEARTBEAT_INTERVAL_S,
};

use super::{check_id, now};
use crate::control::call::{action, Call};
use crate::control::registry::{self, RegistryError};
use crate::control::{read_json, Control};
use crate::error::ApiError;

pub fn router<S>() -> Router<S>
where
    Control: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/agents", get(list_agents))
        .route("/api/agents/register", post(register))
        .route("/api/agents/{id}", delete(unregister))
        .route("/api/agents/{id}/heartbeat", post(heartbeat))
        .route("/api/agents/{id}/labels", put(put_labels))
}

action!(Register, "agent.register", Agent, Always);
action!(
    /// The agent itself or an operator.
    Unregister,
    "agent.unregister",
    AgentOrOperator,
    Always
);
action!(
    /// Every 10 s from every agent: only refusals are worth the capped log.
    Heartbeat,
    "agent.heartbeat",
    Agent,
    RefusalsOnly
);
action!(PutLabels, "agent.labels", Operator, Always);

async fn register(call: Call<Register>, body: Body) -> Result<Json<RegisterReply>, ApiError> {
    let result = async {
        let reg: Registration = read_json(body).await?;
        reg.validate()?;
        let id = reg
            .agent_id
            .clone()
            .unwrap_or_else(|| format!("agent-{:016x}", rand::random::<u64>()));
        registry::register(&call.ctl.store, &id, &reg, &now()).await?;
        Ok(Json(RegisterReply {
            agent_id: id,
            heartbeat_interval_s: HEARTBEAT_INTERVAL_S,
        }))
    }
    .await;
    call.record(result).await
}

async fn unregister(
    call: Call<Unregister>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let result = async {
        check_id("agent_id", &id)?;
        if registry::unregister(&call.ctl.store, &id).await? {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(RegistryError::Unknown(id.clone()).into())
        }
    }
    .await;
    call.record(result).await
}

async fn heartbeat(
    call: Call<Heartbeat>,
    Path(id): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let result = async {
        check_id("agent_id", &id)?;
        let beat: AgentHeartbeat = read_json(body).await?;
        beat.validate()?;
        if beat.agent_id != id {
            return Err(ApiError::field(
                "agent_id",
                format!("the body is for {:?}, the path for {id:?}", beat.agent_id),
            ));
        }
        registry::beat(&call.ctl.store, &beat).await?;
        Ok(StatusCode::NO_CONTENT)
    }
    .await;
    call.record(result).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelsBody {
    labels: Labels,
}

async fn put_labels(
    call: Call<PutLabels>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<AgentView>, ApiError> {
    let result = async {
        check_id("agent_id", &id)?;
        let LabelsBody { labels } = read_json(body).await?;
        valid::labels("labels", &labels)?;
        let record = registry::set_labels(&call.ctl.store, &id, &labels, &now()).await?;
        let seen = call.ctl.agents.borrow().clone();
        let view = seen
            .find(&id)
            .map(|mut v| {
                v.labels = record.labels.clone();
                v
            })
            .unwrap_or_else(|| agent::agent_view(&record, None, None));
        Ok(Json(view))
    }
    .await;
    call.record(result).await
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
        return Ok((
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            seen.json(),
        )
            .into_response());
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
