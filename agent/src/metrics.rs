//! The agent's Prometheus metrics (SPEC §8 names), encoded by `prometheus-client`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::mode::Mode;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabel {
    pub mode: &'static str,
}

/// `type="<command type>"` (`type` is a keyword, so the label set is a plain pair).
type TypeName = Vec<(&'static str, &'static str)>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PipelineLabel {
    /// A configured pipeline id (bounded: ids come from the config, never from jobs).
    pub pipeline_id: String,
}

/// `queue="<q>",status="<final status>"`: queues come from the config, statuses from a fixed
/// set, so the label space stays bounded.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabel {
    pub queue: String,
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub queue: String,
}

fn duration_histogram() -> Histogram {
    // 10 ms to ~80 s
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

pub struct Metrics {
    registry: Registry,
    pub uptime: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub pipelines: Family<StatusLabel, Gauge>,
    heartbeat_ok: Counter,
    heartbeat_failed: Counter,
    redis_connected: Gauge,
    mode: Family<ModeLabel, Gauge>,
    commands: Family<TypeName, Counter>,
    processed: Family<PipelineLabel, Counter>,
    failed: Family<PipelineLabel, Counter>,
    dead: Family<PipelineLabel, Counter>,
    restarts: Family<PipelineLabel, Counter>,
    duration: Family<PipelineLabel, Histogram, fn() -> Histogram>,
    jobs: Family<JobLabel, Counter>,
    job_duration: Family<QueueLabel, Histogram, fn() -> Histogram>,
    waiting: Family<QueueLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::default();
        let m = Self {
            uptime: Gauge::default(),
            pipelines: Family::default(),
            heartbeat_ok: Counter::default(),
            heartbeat_failed: Counter::default(),
            redis_connected: Gauge::default(),
            mode: Family::default(),
            commands: Family::default(),
            processed: Family::default(),
            failed: Family::default(),
            dead: Family::default(),
            restarts: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            jobs: Family::default(),
            job_duration: Family::new_with_constructor(duration_histogram),
            waiting: Family::default(),
            registry: Registry::default(),
        };
        r.register(
            "agent_uptime_seconds",
            "Seconds since the agent started",
            m.uptime.clone(),
        );
        r.register(
            "agent_pipelines_total",
            "Pipelines by status",
            m.pipelines.clone(),
        );
        r.register(
            "agent_heartbeat_success",
            "Agent heartbeats sent",
            m.heartbeat_ok.clone(),
        );
        r.register(
            "agent_heartbeat_failed",
            "Agent heartbeats that no transport took",
            m.heartbeat_failed.clone(),
        );
        r.register(
            "agent_redis_connected",
            "1 while the last Redis check answered",
            m.redis_connected.clone(),
        );
        r.register(
            "agent_communication_mode",
            "1 for the current mode (redis, hybrid, rest)",
            m.mode.clone(),
        );
        r.register(
            "agent_command_received",
            "Commands applied, by type",
            m.commands.clone(),
        );
        r.register(
            "pipeline_events_processed",
            "Jobs that succeeded",
            m.processed.clone(),
        );
        r.register(
            "pipeline_events_failed",
            "Failed attempts (non-zero exit or timeout)",
            m.failed.clone(),
        );
        r.register(
            "pipeline_events_dead_lettered",
            "Jobs moved to the dead letter",
            m.dead.clone(),
        );
        r.register(
            "pipeline_restarts",
            "Supervisor restarts after a crash",
            m.restarts.clone(),
        );
        r.register(
            "pipeline_processing_duration_seconds",
            "Handler run time",
            m.duration.clone(),
        );
        r.register(
            "agent_jobs",
            "Jobs that reached a final status (succeeded, dead, expired), by queue",
            m.jobs.clone(),
        );
        r.register(
            "agent_job_duration_seconds",
            "Run time of jobs that reached a final status after running, by queue",
            m.job_duration.clone(),
        );
        r.register(
            "agent_jobs_waiting",
            "Jobs waiting for their dependencies, by queue (as last seen)",
            m.waiting.clone(),
        );
        Self { registry: r, ..m }
    }
}

impl Metrics {
    fn pl(id: &str) -> PipelineLabel {
        PipelineLabel {
            pipeline_id: id.to_string(),
        }
    }
    pub fn processed(&self, id: &str) {
        self.processed.get_or_create(&Self::pl(id)).inc();
    }
    pub fn failed(&self, id: &str) {
        self.failed.get_or_create(&Self::pl(id)).inc();
    }
    pub fn dead_lettered(&self, id: &str) {
        self.dead.get_or_create(&Self::pl(id)).inc();
    }
    /// A job reached a final status; `took` when it ran.
    pub fn job_ended(&self, queue: &str, status: &'static str, took: Option<std::time::Duration>) {
        let queue = queue.to_string();
        self.jobs
            .get_or_create(&JobLabel {
                queue: queue.clone(),
                status,
            })
            .inc();
        if let Some(t) = took {
            self.job_duration
                .get_or_create(&QueueLabel { queue })
                .observe(t.as_secs_f64());
        }
    }
    pub fn waiting(&self, queue: &str, n: u64) {
        self.waiting
            .get_or_create(&QueueLabel {
                queue: queue.to_string(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    pub fn pipeline_restart(&self, id: &str) {
        self.restarts.get_or_create(&Self::pl(id)).inc();
    }
    pub fn duration(&self, id: &str, seconds: f64) {
        self.duration.get_or_create(&Self::pl(id)).observe(seconds);
    }
    pub fn command_received(&self, kind: &'static str) {
        self.commands.get_or_create(&vec![("type", kind)]).inc();
    }
    pub fn heartbeat(&self, sent: bool) {
        if sent {
            self.heartbeat_ok.inc();
        } else {
            self.heartbeat_failed.inc();
        }
    }
    pub fn redis_connected(&self, ok: bool) {
        self.redis_connected.set(i64::from(ok));
    }
    pub fn mode(&self, current: Mode) {
        for m in [Mode::Redis, Mode::Hybrid, Mode::Rest] {
            self.mode
                .get_or_create(&ModeLabel { mode: m.as_str() })
                .set(i64::from(m == current));
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
