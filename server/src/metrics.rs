//! Prometheus metrics of the server, kept in one registry and encoded by `prometheus-client`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route pattern (never the raw path, so the label set stays bounded).
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// `collector` or `discovery`.
    pub task: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// `read` (the round trip and its parse), `build` (replies to snapshot) or `publish`.
    pub phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    /// `telegram` or `webhook`.
    pub channel: String,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub cycle_seconds: Histogram,
    pub round_trips: Gauge,
    /// Seconds spent in each phase of the cycles so far: what the collector adds to the read.
    pub cycle_phase_seconds: Family<PhaseLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    pub redis_errors: Family<TaskLabels, Counter>,
    pub redis_up: Gauge,
    pub workers_alive: Gauge,
    pub workers_total: Gauge,
    pub agents_total: Gauge,
    pub agents_online: Gauge,
    pub discovery_pass_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub alerts_sent: Family<ChannelLabels, Counter>,
    pub alerts_retried: Family<ChannelLabels, Counter>,
    pub alerts_failed: Family<ChannelLabels, Counter>,
    pub alerts_leader: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("agent_office");
        // Buckets from 1 ms to ~4 s: a cycle is a few ms on a small fleet, ~100 ms at 10k workers.
        let cycle_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 13),
        );
        registry.register(
            "collector_cycle_seconds",
            "Duration of one collector cycle (pipelined Redis read and snapshot build)",
            cycle_seconds.clone(),
        );
        let round_trips = Gauge::default();
        registry.register(
            "collector_round_trips",
            "Redis round trips the last collector cycle made",
            round_trips.clone(),
        );
        let cycle_phase_seconds = Family::default();
        registry.register(
            "collector_phase_seconds",
            "Time the collector cycles spent per phase: read (round trip), build (with the part done while Redis still answers), publish",
            cycle_phase_seconds.clone(),
        );
        let redis_errors = Family::<TaskLabels, Counter>::default();
        registry.register(
            "redis_errors",
            "Redis calls that failed or timed out",
            redis_errors.clone(),
        );
        let redis_up = Gauge::default();
        registry.register(
            "redis_up",
            "1 when the last collector cycle read Redis",
            redis_up.clone(),
        );
        let workers_alive = Gauge::default();
        registry.register(
            "workers_alive",
            "Workers with a valid heartbeat",
            workers_alive.clone(),
        );
        let workers_total = Gauge::default();
        registry.register("workers", "Workers in the snapshot", workers_total.clone());
        let agents_total = Gauge::default();
        registry.register("agents", "Registered pipeline agents", agents_total.clone());
        let agents_online = Gauge::default();
        registry.register(
            "agents_online",
            "Registered agents that beat within 30 s",
            agents_online.clone(),
        );
        let discovery_pass_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "discovery_pass_seconds",
            "Duration of the last full discovery SCAN pass",
            discovery_pass_seconds.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered",
            http_requests.clone(),
        );
        let alerts_sent = Family::<ChannelLabels, Counter>::default();
        registry.register(
            "alerts_sent",
            "Alert messages delivered",
            alerts_sent.clone(),
        );
        let alerts_retried = Family::<ChannelLabels, Counter>::default();
        registry.register(
            "alerts_retried",
            "Alert deliveries that failed for a transient reason and were retried",
            alerts_retried.clone(),
        );
        let alerts_failed = Family::<ChannelLabels, Counter>::default();
        registry.register(
            "alerts_failed",
            "Alert messages dropped because the channel refused them for good",
            alerts_failed.clone(),
        );
        let alerts_leader = Gauge::default();
        registry.register(
            "alerts_leader",
            "1 while this replica holds the alert lease",
            alerts_leader.clone(),
        );
        Self {
            registry,
            alerts_sent,
            alerts_retried,
            alerts_failed,
            alerts_leader,
            cycle_seconds,
            round_trips,
            cycle_phase_seconds,
            redis_errors,
            redis_up,
            workers_alive,
            workers_total,
            agents_total,
            agents_online,
            discovery_pass_seconds,
            http_requests,
        }
    }

    /// Adds `seconds` to a cycle phase's total.
    pub fn phase(&self, phase: &'static str, seconds: f64) {
        self.cycle_phase_seconds
            .get_or_create(&PhaseLabels { phase })
            .inc_by(seconds);
    }

    pub fn redis_error(&self, task: &'static str) {
        self.redis_errors.get_or_create(&TaskLabels { task }).inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_documented_names() {
        let m = Metrics::new();
        m.cycle_seconds.observe(0.004);
        m.phase("build", 0.002);
        m.redis_error("collector");
        m.http_requests
            .get_or_create(&HttpLabels {
                route: "/healthz".into(),
                status: 200,
            })
            .inc();
        let text = m.encode();
        for name in [
            "agent_office_collector_cycle_seconds_bucket",
            "agent_office_collector_round_trips",
            "agent_office_collector_phase_seconds_total{phase=\"build\"} 0.002",
            "agent_office_redis_errors_total{task=\"collector\"} 1",
            "agent_office_workers_alive",
            "agent_office_agents_online",
            "agent_office_http_requests_total{route=\"/healthz\",status=\"200\"} 1",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
