//! The Agent Office server: a Redis collector publishing a snapshot, the nodes API, health and
//! metrics endpoints, and the server-rendered dashboard.

pub mod alerts;
pub mod api;
pub mod bundle;
pub mod collector;
pub mod config;
pub mod control;
pub mod demo;
pub mod error;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod redis_conn;
pub mod redis_target;
pub mod schedules;
pub mod sink;
pub mod state;
pub mod tls;
pub mod trends;

use std::future::{Future, IntoFuture};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::collector::{Collector, Discovery, SnapshotRx};
use crate::config::Config;
use crate::control::Control;
use crate::metrics::{HttpLabels, Metrics};
use crate::state::AppState;

/// Starts the collector and discovery tasks and serves HTTP on `listener` until `shutdown`.
pub async fn run(
    config: Config,
    leptos_options: LeptosOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let client = config.redis_target()?;
    refuse_a_wrong_redis(&client, &config).await?;
    let metrics = Arc::new(Metrics::new());
    let stop = CancellationToken::new();
    let tasks = TaskTracker::new();
    let state = start_tasks(&config, &client, metrics, &tasks, &stop, leptos_options)?;
    tasks.close();
    let served = serve(state, listener, &config.limits, shutdown, &stop).await;
    stop.cancel();
    tasks.wait().await;
    served
}

/// A setting to fix is not an outage to wait out: the server refuses to start, saying so, when
/// a `rediss://` server's certificate does not verify, when the sentinels know no primary of
/// that name, or when `REDIS_URL` is a Cluster node. Any other failure to connect (Redis not up
/// yet) is left to the collector, which reports it and reconnects.
async fn refuse_a_wrong_redis(
    target: &redis_target::Target,
    config: &Config,
) -> anyhow::Result<()> {
    let limit = config.redis_timeout.max(std::time::Duration::from_secs(2));
    if let redis_target::Target::Cluster(nodes) = target {
        return refuse_a_wrong_cluster(nodes, limit).await;
    }
    let client = match target.client(limit).await {
        Ok(c) => c,
        Err(e)
            if e.to_string().contains("know no primary named")
                || e.to_string().contains("REDIS_SENTINEL_PASSWORD") =>
        {
            anyhow::bail!("{e}")
        }
        Err(e) => {
            tracing::warn!(redis = %target.describe(), "Redis is not reachable yet: {e}");
            return Ok(());
        }
    };
    match redis_conn::connect(&client, limit).await {
        Err(redis_conn::RedisCallError::Redis(e)) if config::is_certificate_error(&e) => {
            anyhow::bail!(
                "REDIS_URL {}: the Redis server's TLS certificate did not verify ({e}); set \
                 REDIS_CA_FILE to the PEM of the CA that signed it",
                config::redact(&config.redis_url)
            )
        }
        Err(e) => {
            tracing::warn!(redis = %config::redact(&config.redis_url), "Redis is not reachable yet: {e}");
            Ok(())
        }
        Ok(mut c) => {
            anyhow::ensure!(
                !cluster_info(&mut c).await.contains("cluster_enabled:1"),
                "REDIS_URL {} is a node of a Redis Cluster: set REDIS_CLUSTER_NODES to the \
                 Cluster's nodes (host:port,...) and the server reads every primary",
                config::redact(&config.redis_url)
            );
            Ok(())
        }
    }
}

/// `INFO cluster` of a node ("" when it does not say).
async fn cluster_info(c: &mut redis::aio::MultiplexedConnection) -> String {
    redis::cmd("INFO")
        .arg("cluster")
        .query_async(c)
        .await
        .unwrap_or_default()
}

/// [`refuse_a_wrong_redis`] for `REDIS_CLUSTER_NODES`: a node that says it is no Cluster node,
/// or whose TLS certificate does not verify, stops the server naming it; nodes that do not
/// answer yet are left to the collector.
async fn refuse_a_wrong_cluster(
    nodes: &redis_target::ClusterNodes,
    limit: std::time::Duration,
) -> anyhow::Result<()> {
    for (host, port) in &nodes.seeds {
        let client = redis_target::with_addr(&nodes.template, host.clone(), *port)?;
        let mut c = match redis_conn::connect(&client, limit).await {
            Ok(c) => c,
            Err(redis_conn::RedisCallError::Redis(e)) if config::is_certificate_error(&e) => {
                anyhow::bail!(
                    "REDIS_CLUSTER_NODES {host}:{port}: the node's TLS certificate did not \
                     verify ({e}); set REDIS_CA_FILE to the PEM of the CA that signed it"
                )
            }
            Err(e) => {
                tracing::warn!(node = %format!("{host}:{port}"), "Redis Cluster node not reachable yet: {e}");
                continue;
            }
        };
        anyhow::ensure!(
            !cluster_info(&mut c).await.contains("cluster_enabled:0"),
            "REDIS_CLUSTER_NODES {host}:{port} is not a node of a Redis Cluster (cluster support \
             is off there): give the Cluster's nodes, or one Redis as REDIS_URL"
        );
    }
    tracing::info!(
        "on a Redis Cluster: the queue actions, job retries and schedules move jobs only for \
         queue names with a hash tag (`{{image-render}}`), whose keys share a slot (SPEC §12)"
    );
    Ok(())
}

/// The background tasks — discovery, the collector, the alerts (when a channel is set), the
/// control plane's inbox — started on `tasks`, and the state the handlers share.
fn start_tasks(
    config: &Config,
    client: &redis_target::Target,
    metrics: Arc<Metrics>,
    tasks: &TaskTracker,
    stop: &CancellationToken,
    leptos_options: LeptosOptions,
) -> anyhow::Result<AppState> {
    let collecting = Arc::new(config.collector());
    let (discovery, discovered, first_pass) =
        Discovery::new(collecting.clone(), client.clone(), metrics.clone());
    let (collector, nodes, agents) =
        Collector::new(collecting, client.clone(), discovered, metrics.clone());
    tasks.spawn(discovery.run(stop.clone(), nodes.clone()));
    tasks.spawn(collector.run(stop.clone(), first_pass));
    let alerts = if config.alerts.channels.is_empty() {
        tracing::warn!(
            "alerts are off: set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID, or ALERT_WEBHOOK_URL"
        );
        alerts::disabled()
    } else {
        let client = config.redis_target()?;
        alerts::spawn(
            tasks,
            config.alerts.clone(),
            config.redis_timeout,
            client,
            nodes.clone(),
            metrics.clone(),
            stop.clone(),
        )
    };
    let control = Control {
        config: Arc::new(config.control.clone()),
        store: control::Store::new(client.clone(), config.redis_timeout),
        agents,
        nodes: nodes.clone(),
    };
    control.announce();
    tasks.spawn(control::inbox::run(
        control.clone(),
        client.clone(),
        stop.clone(),
    ));
    let schedules = schedules::Schedules {
        store: control::Store::new(client.clone(), config.redis_timeout),
    };
    tasks.spawn(schedules::fire::run(schedules.store.clone(), stop.clone()));
    let trends = trends::Trends::new(
        control::Store::new(client.clone(), config.redis_timeout),
        nodes.clone(),
    );
    if config.trends {
        tasks.spawn(trends::run(trends.clone(), stop.clone()));
    } else {
        tracing::warn!("trends are off (NO_TRENDS): no series are kept");
    }
    let jobs = jobs::Jobs::new(control::Store::new(client.clone(), config.redis_timeout));
    tasks.spawn(jobs::index::run(
        jobs.store.clone(),
        jobs.index.clone(),
        stop.clone(),
    ));
    tasks.spawn(jobs::events::relay_jobs(
        client.clone(),
        jobs.events.clone(),
        stop.clone(),
    ));
    tasks.spawn(jobs::events::watch_agents(
        control.agents.clone(),
        jobs.events.clone(),
        stop.clone(),
    ));
    Ok(AppState {
        leptos_options,
        nodes,
        alerts,
        metrics,
        control,
        jobs,
        schedules,
        trends,
        closing: stop.clone(),
        streams: Arc::new(tokio::sync::Semaphore::new(config.limits.max_streams)),
    })
}

/// Serves `app(state)` until `shutdown` (or `stop`); connections still open
/// `shutdown_deadline` after that are dropped, so a slow client cannot hold the process.
async fn serve(
    state: AppState,
    listener: TcpListener,
    limits: &limits::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let stop_http = stop.clone();
    // tap_io (doing nothing) gives the limited listener axum's ConnectInfo<SocketAddr>.
    let listener = limits::LimitedListener::new(listener, limits).tap_io(|_| {});
    let mut served = tokio::spawn(
        axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = shutdown => {}
                _ = stop_http.cancelled() => {}
            }
            // Ends the push streams, which would otherwise hold the shutdown open.
            stop_http.cancel();
        })
        .into_future(),
    );
    let deadline = limits.shutdown_deadline;
    tokio::select! {
        r = &mut served => r.context("the HTTP task")?.context("serving HTTP"),
        () = async { stop.cancelled().await; tokio::time::sleep(deadline).await } => {
            tracing::warn!(?deadline, "open connections outlived the shutdown deadline; closing them");
            served.abort();
            Ok(())
        }
    }
}

/// The whole HTTP surface; `main` and the tests both build it here.
pub fn app(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let nodes = state.nodes.clone();
    let alerts = state.alerts.clone();
    let options = state.leptos_options.clone();
    let control = control_source(state.control.clone());
    let jobs = jobs::source(state.jobs.clone());
    let schedules = schedules_source(state.schedules.clone());
    let trends = trends_source(state.trends.clone());
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/infra") }))
        .merge(api::router())
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(nodes_source(nodes.clone()));
                provide_context(control.clone());
                provide_context(jobs.clone());
                provide_context(schedules.clone());
                provide_context(trends.clone());
                let alerts = alerts.clone();
                provide_context(app::AlertsSource(Arc::new(move || {
                    (**alerts.borrow()).clone()
                })));
            },
            move || app::shell(options.clone()),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(middleware::from_fn(remember_language))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            app::shell,
        ))
        .with_state(state)
}

/// The control plane as the pages see it during SSR: agents from memory, the ledger and the
/// audit log from Redis (one render, two short reads).
fn control_source(ctl: Control) -> app::ControlSource {
    let agents = ctl.agents.clone();
    let (for_commands, for_audit) = (ctl.store.clone(), ctl.store.clone());
    app::ControlSource {
        info: ctl.info(),
        agents: Arc::new(move || shared::control::AgentsReply {
            agents: agents.borrow().agents(),
        }),
        commands: Arc::new(move || {
            let store = for_commands.clone();
            Box::pin(async move {
                control::ledger::recent(&store, 20)
                    .await
                    .map(|commands| shared::control::CommandsReply { commands })
                    .map_err(|e| app::LoadError::Server(e.to_string()))
            })
        }),
        audit: Arc::new(move || {
            let store = for_audit.clone();
            Box::pin(async move {
                control::audit::recent(&store, 20)
                    .await
                    .map(|entries| shared::control::AuditReply { entries })
                    .map_err(|e| app::LoadError::Server(e.to_string()))
            })
        }),
    }
}

/// The schedules as the page sees them during SSR (two short reads).
fn schedules_source(s: schedules::Schedules) -> app::SchedulesSource {
    app::SchedulesSource(Arc::new(move || {
        let s = s.clone();
        Box::pin(async move {
            s.reply()
                .await
                .map_err(|e| app::LoadError::Server(e.to_string()))
        })
    }))
}

/// The charts as the pages see them during SSR: a series is one Redis read, the sparklines
/// come from memory.
fn trends_source(t: trends::Trends) -> app::TrendsSource {
    let for_sparks = t.clone();
    app::TrendsSource {
        series: Arc::new(move |of, range| {
            let t = t.clone();
            Box::pin(async move {
                let which = match of {
                    // A page for a name no worker can have: nothing to read.
                    app::SeriesOf::Worker(name) if !shared::keys::is_valid_name(&name) => {
                        return Ok(shared::series::SeriesReply {
                            step_s: range.step_s(),
                            points: Vec::new(),
                        })
                    }
                    app::SeriesOf::Worker(name) => trends::Series::Worker(name),
                    app::SeriesOf::Fleet => trends::Series::Fleet,
                };
                t.series(&which, range)
                    .await
                    .map_err(|e| app::LoadError::Server(e.to_string()))
            })
        }),
        sparks: Arc::new(move |query| for_sparks.sparks(query)),
    }
}

fn nodes_source(nodes: SnapshotRx) -> app::NodesSource {
    app::NodesSource(Arc::new(move || nodes.borrow().snapshot.clone()))
}

async fn count_requests(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let response = next.run(request).await.into_response();
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// A page asked for with `?lang=ko|en` (the language switch) answers with a cookie that keeps
/// the choice for the pages after it (`app::i18n` reads it back).
async fn remember_language(request: Request, next: Next) -> Response {
    let chosen = request
        .uri()
        .query()
        .and_then(app::i18n::lang_of_query)
        .and_then(shared::Lang::parse);
    let mut response = next.run(request).await;
    if let Some(lang) = chosen {
        let cookie = format!(
            "{}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            app::i18n::COOKIE,
            lang.code()
        );
        if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
            response
                .headers_mut()
                .append(axum::http::header::SET_COOKIE, value);
        }
    }
    response
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
