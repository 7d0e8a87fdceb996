//! The control plane's auth matrix on `app(state)` with `oneshot` (no socket, as axum's
//! `testing` example does): every state-changing route without a token, with a wrong one,
//! with the other role's token, and on a server without the token it needs; each refusal is
//! audited under the route's action and target. The audit log is a real Redis.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use server::collector::{AgentsSnapshot, Published};
use server::control::{Control, ControlConfig, Store, Token};
use server::state::AppState;
use shared::NodesSnapshot;
use tokio::sync::watch;
use tower::ServiceExt;

const OPERATOR: &str = "operator-secret-0001";
const AGENT: &str = "agent-secret-000001";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Need {
    Operator,
    Agent,
    Either,
}

/// Every state-changing call: method, path, the role it needs, its audit action and target.
const CALLS: &[(Method, &str, Need, &str, &str)] = &[
    (
        Method::POST,
        "/api/agents/register",
        Need::Agent,
        "agent.register",
        "",
    ),
    (
        Method::DELETE,
        "/api/agents/a1",
        Need::Either,
        "agent.unregister",
        "a1",
    ),
    (
        Method::POST,
        "/api/agents/a1/heartbeat",
        Need::Agent,
        "agent.heartbeat",
        "a1",
    ),
    (
        Method::PUT,
        "/api/agents/a1/labels",
        Need::Operator,
        "agent.labels",
        "a1",
    ),
    (
        Method::GET,
        "/api/agents/a1/commands",
        Need::Agent,
        "agent.poll",
        "a1",
    ),
    (
        Method::POST,
        "/api/commands",
        Need::Operator,
        "command.send",
        "",
    ),
    (
        Method::POST,
        "/api/commands?dry_run=true",
        Need::Operator,
        "command.dry_run",
        "",
    ),
    (
        Method::POST,
        "/api/commands/c1/results",
        Need::Agent,
        "command.result",
        "c1",
    ),
    (
        Method::POST,
        "/api/queues/img/dead-letter/retry",
        Need::Operator,
        "queue.dead_letter.retry",
        "img",
    ),
    (
        Method::POST,
        "/api/schedules",
        Need::Operator,
        "schedule.create",
        "",
    ),
    (
        Method::PUT,
        "/api/schedules/s1",
        Need::Operator,
        "schedule.update",
        "s1",
    ),
    (
        Method::DELETE,
        "/api/schedules/s1",
        Need::Operator,
        "schedule.delete",
        "s1",
    ),
    (
        Method::POST,
        "/api/jobs/j1/retry",
        Need::Operator,
        "job.retry",
        "j1",
    ),
    (
        Method::POST,
        "/api/queues/img/dead-letter/purge",
        Need::Operator,
        "queue.dead_letter.purge",
        "img",
    ),
    (
        Method::POST,
        "/api/queues/img/processing/w1/requeue",
        Need::Operator,
        "queue.processing.requeue",
        "img/w1",
    ),
];

fn state(redis_url: &str, operator: Option<&str>, agent: Option<&str>) -> AppState {
    let now = chrono::Utc::now();
    let (_, nodes) = watch::channel(Arc::new(Published::new(NodesSnapshot::empty(now))));
    let (_, agents) = watch::channel(Arc::new(AgentsSnapshot::new(false, now, Vec::new())));
    let client = redis::Client::open(redis_url).unwrap();
    let control = Control {
        config: Arc::new(ControlConfig {
            operator: operator.map(Token::new),
            agent: agent.map(Token::new),
            requeue_grace: Duration::from_secs(60),
        }),
        store: Store::new(client, Duration::from_secs(2)),
        agents,
        nodes: nodes.clone(),
    };
    let jobs = server::jobs::Jobs::new(control.store.clone());
    let schedules = server::schedules::Schedules {
        store: control.store.clone(),
    };
    let trends = server::trends::Trends::new(control.store.clone(), control.nodes.clone());
    AppState {
        leptos_options: leptos::config::LeptosOptions::builder()
            .output_name("agent-office")
            .build(),
        nodes,
        alerts: server::alerts::disabled(),
        metrics: Arc::new(server::metrics::Metrics::new()),
        control,
        jobs,
        schedules,
        trends,
        closing: tokio_util::sync::CancellationToken::new(),
        streams: Arc::new(tokio::sync::Semaphore::new(4)),
    }
}

async fn call(state: &AppState, method: &Method, path: &str, token: Option<&str>) -> StatusCode {
    let mut req = Request::builder().method(method.clone()).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    server::app(state.clone())
        .oneshot(req)
        .await
        .unwrap()
        .status()
}

async fn audit(state: &AppState) -> Vec<serde_json::Value> {
    let req = Request::get("/api/audit?limit=1000")
        .body(Body::empty())
        .unwrap();
    let res = server::app(state.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["entries"].as_array().unwrap().clone()
}

fn refused(status: StatusCode) -> bool {
    status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN
}

#[tokio::test]
async fn every_state_changing_call_checks_its_token() {
    let redis = common::Redis::start().await;
    let both = state(&redis.url(), Some(OPERATOR), Some(AGENT));
    for (method, path, need, _, _) in CALLS {
        let who = format!("{method} {path}");
        assert_eq!(
            call(&both, method, path, None).await,
            StatusCode::UNAUTHORIZED,
            "{who}: no token"
        );
        assert_eq!(
            call(&both, method, path, Some("not-a-token")).await,
            StatusCode::UNAUTHORIZED,
            "{who}: wrong token"
        );
        let by_agent = call(&both, method, path, Some(AGENT)).await;
        let by_operator = call(&both, method, path, Some(OPERATOR)).await;
        match need {
            Need::Operator => {
                assert_eq!(by_agent, StatusCode::UNAUTHORIZED, "{who}: agent token");
                assert!(
                    !refused(by_operator),
                    "{who}: operator token gave {by_operator}"
                );
            }
            Need::Agent => {
                assert_eq!(
                    by_operator,
                    StatusCode::UNAUTHORIZED,
                    "{who}: operator token"
                );
                assert!(!refused(by_agent), "{who}: agent token gave {by_agent}");
            }
            Need::Either => {
                assert!(!refused(by_agent), "{who}: agent token gave {by_agent}");
                assert!(
                    !refused(by_operator),
                    "{who}: operator token gave {by_operator}"
                );
            }
        }
    }
    // Each refusal is in the audit log, under the route's own action and target.
    let entries = audit(&both).await;
    for (method, path, _, action, target) in CALLS {
        let refusals = entries
            .iter()
            .filter(|e| e["action"] == *action && e["target"] == *target)
            .filter(|e| e["outcome"].as_str().unwrap().starts_with("refused (401)"))
            .count();
        assert!(
            refusals >= 2,
            "{method} {path}: {refusals} refusals audited as {action}"
        );
    }
    assert!(
        entries
            .iter()
            .all(|e| !e.to_string().contains(OPERATOR) && !e.to_string().contains(AGENT)),
        "no token in the audit log"
    );
}

#[tokio::test]
async fn without_a_token_configured_its_calls_are_off() {
    let redis = common::Redis::start().await;
    let read_only = state(&redis.url(), None, Some(AGENT));
    let no_agents = state(&redis.url(), Some(OPERATOR), None);
    for (method, path, need, _, _) in CALLS {
        let who = format!("{method} {path}");
        match need {
            Need::Operator => {
                assert_eq!(
                    call(&read_only, method, path, Some(OPERATOR)).await,
                    StatusCode::FORBIDDEN,
                    "{who}: read-only server"
                );
                assert!(
                    !refused(call(&no_agents, method, path, Some(OPERATOR)).await),
                    "{who}"
                );
            }
            Need::Agent => {
                assert_eq!(
                    call(&no_agents, method, path, Some(AGENT)).await,
                    StatusCode::FORBIDDEN,
                    "{who}: agent API off"
                );
                assert!(
                    !refused(call(&read_only, method, path, Some(AGENT)).await),
                    "{who}"
                );
            }
            Need::Either => {
                assert!(
                    !refused(call(&read_only, method, path, Some(AGENT)).await),
                    "{who}"
                );
                assert!(
                    !refused(call(&no_agents, method, path, Some(OPERATOR)).await),
                    "{who}"
                );
            }
        }
    }
    let entries = audit(&read_only).await;
    assert!(entries.iter().any(|e| e["action"] == "command.send"
        && e["outcome"].as_str().unwrap().starts_with("refused (403)")));
    // Reads stay public.
    for path in ["/api/agents", "/api/commands", "/api/audit", "/api/control"] {
        let req = Request::get(path).body(Body::empty()).unwrap();
        let status = server::app(read_only.clone())
            .oneshot(req)
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}
