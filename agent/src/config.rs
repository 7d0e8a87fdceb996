//! The agent's configuration: `agent.yaml` (SPEC §8), then the environment on top of it.
//!
//! Every key is optional, and so is the file itself (the plan's first example is environment
//! variables alone): without pipelines the agent registers, beats and waits for
//! `start_pipeline`. A bad file is refused at start with its line and field named; a bad
//! environment variable is refused naming the variable. The same
//! validation runs on `update_config`, so a command can never install what a file could not.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::control::{valid, Labels};
use shared::heartbeat::WorkerKind;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: line {line}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        line: u64,
        field: String,
        message: String,
    },
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: &'static str, message: String },
}

fn field_err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    pub id: Option<String>,
    /// A map (`{env: prod}`) or the plan's list of `"key=value"` strings.
    #[serde(deserialize_with = "labels_map_or_list")]
    pub labels: Labels,
    /// The most jobs in flight across all pipelines.
    pub max_concurrent: Option<u32>,
    /// How long jobs in hand may take to finish at shutdown before they go back to the queue.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Option<Duration>,
    /// How often a pipeline looks for jobs stranded in its processing list (a BLMOVE whose
    /// reply was lost); a job seen stranded on two sweeps in a row goes back to the queue.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Option<Duration>,
}

/// Labels as a map, or as the plan writes them: `["region=ap-northeast-2", "zone=a"]`.
fn labels_map_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Map(Labels),
        List(Vec<String>),
    }
    match Written::deserialize(d)? {
        Written::Map(m) => Ok(m),
        Written::List(items) => items
            .into_iter()
            .map(|item| match item.split_once('=') {
                Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
                None => Err(serde::de::Error::custom(format!(
                    "label {item:?} is not key=value"
                ))),
            })
            .collect(),
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSection {
    pub url: Option<String>,
    pub token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSection {
    pub host: String,
    pub port: u16,
    pub password: Option<String>,
    /// Speak TLS (`rediss://`), verifying the server against `ca_file` or the system's roots.
    pub tls: bool,
    /// A PEM file with the CA that signed the Redis server's certificate.
    pub ca_file: Option<PathBuf>,
    /// Sentinels (`host:port`) to ask for the primary named `master` (SPEC §12); `host` and
    /// `port` are then not used.
    pub sentinels: Vec<String>,
    pub master: Option<String>,
    /// The sentinels' own password (their `requirepass`), when they ask for one; the
    /// primary's is `password`.
    pub sentinel_password: Option<String>,
    /// Redis Cluster seed nodes (`host:port`, SPEC §12); `host` and `port` are then not used,
    /// and every queue name must carry a hash tag.
    pub cluster_nodes: Vec<String>,
}

impl Default for RedisSection {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 6379,
            password: None,
            tls: false,
            ca_file: None,
            sentinels: Vec::new(),
            master: None,
            sentinel_password: None,
            cluster_nodes: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommunicationSection {
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub command_poll_interval: Duration,
    pub enable_rest_fallback: bool,
    /// Redis failing this long in Hybrid mode → REST.
    #[serde(with = "humantime_serde")]
    pub rest_after: Duration,
    /// Redis healthy this long without a failure → back to Redis mode.
    #[serde(with = "humantime_serde")]
    pub stabilisation: Duration,
}

impl Default for CommunicationSection {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(10),
            command_poll_interval: Duration::from_secs(5),
            enable_rest_fallback: true,
            rest_after: Duration::from_secs(15),
            stabilisation: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    #[default]
    Text,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSection {
    pub level: String,
    pub format: LogFormat,
}

impl Default for LoggingSection {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    pub listen: SocketAddr,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            // The plan's port.
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
        }
    }
}

/// One pipeline: a reliable queue, the handler that runs each job, and its limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Consumes `queue:<queue>`.
    pub queue: String,
    /// argv; the job arrives on stdin. No shell unless one is named.
    pub handler: Vec<String>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    #[serde(default = "default_one")]
    pub concurrency: u32,
    #[serde(default = "default_restarts")]
    pub max_restarts: u32,
    #[serde(default = "default_kind")]
    pub kind: String,
    /// The Contract-1 worker name it beats as (default: the queue name).
    #[serde(default)]
    pub heartbeat_name: Option<String>,
    /// Compensation queue: a dead-lettered job is also pushed to `queue:<on_failure>`.
    #[serde(default)]
    pub on_failure: Option<String>,
    /// The job history this pipeline writes (SPEC §10) and how long it is kept.
    #[serde(default)]
    pub history: HistoryConfig,
}

/// Job history of one pipeline's queue: on by default; retention by count and age, failures
/// (dead, expired) kept longer than successes. README "Jobs you can follow" has the numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    pub enabled: bool,
    /// Succeeded jobs kept per queue, at most …
    pub keep_succeeded: u64,
    /// … and for at most this long.
    #[serde(with = "humantime_serde")]
    pub succeeded_for: Duration,
    /// Dead and expired jobs kept per queue, at most …
    pub keep_failed: u64,
    /// … and for at most this long.
    #[serde(with = "humantime_serde")]
    pub failed_for: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            keep_succeeded: 10_000,
            succeeded_for: Duration::from_secs(3 * 24 * 3600),
            keep_failed: 20_000,
            failed_for: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Most jobs of one kind (succeeded, failed) a queue's history may keep, and the longest age.
pub const MAX_KEEP: u64 = 1_000_000;
pub const MAX_KEEP_FOR: Duration = Duration::from_secs(365 * 24 * 3600);

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_retries() -> u32 {
    3
}
fn default_one() -> u32 {
    1
}
fn default_restarts() -> u32 {
    5
}
fn default_kind() -> String {
    "render".into()
}

/// The most jobs one pipeline may run at once, and its longest handler timeout.
pub const MAX_CONCURRENCY: u32 = 256;
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

impl PipelineConfig {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    pub fn worker_name(&self) -> &str {
        self.heartbeat_name.as_deref().unwrap_or(&self.queue)
    }

    pub fn worker_kind(&self) -> WorkerKind {
        WorkerKind::parse(&self.kind).unwrap_or(WorkerKind::Render)
    }

    /// Checks one pipeline; `at` prefixes the field names (`pipelines[2]`).
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let f = |name: &str| format!("{at}.{name}");
        valid::id(&f("id"), &self.id).map_err(|e| field_err(e.field, e.message))?;
        queue_name(&f("queue"), &self.queue)?;
        if let Some(q) = &self.on_failure {
            queue_name(&f("on_failure"), q)?;
            if q == &self.queue {
                return Err(field_err(f("on_failure"), "must differ from queue"));
            }
        }
        if let Some(n) = &self.heartbeat_name {
            valid::id(&f("heartbeat_name"), n).map_err(|e| field_err(e.field, e.message))?;
        }
        match self.handler.first() {
            None => return Err(field_err(f("handler"), "needs a program (argv[0])")),
            Some(p) if p.trim().is_empty() => {
                return Err(field_err(f("handler"), "argv[0] is empty"))
            }
            Some(_) => {}
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(field_err(f("timeout"), "must be above 0 and at most 24h"));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(field_err(
                f("concurrency"),
                format!("must be 1..={MAX_CONCURRENCY}"),
            ));
        }
        let h = &self.history;
        if h.keep_succeeded > MAX_KEEP || h.keep_failed > MAX_KEEP {
            return Err(field_err(
                f("history"),
                format!("keep_succeeded and keep_failed are at most {MAX_KEEP}"),
            ));
        }
        if [h.succeeded_for, h.failed_for]
            .iter()
            .any(|d| d.as_secs() == 0 || *d > MAX_KEEP_FOR)
        {
            return Err(field_err(
                f("history"),
                "succeeded_for and failed_for are at least 1s and at most 365 days",
            ));
        }
        if WorkerKind::parse(&self.kind).is_none() {
            return Err(field_err(
                f("kind"),
                "must be render, watcher or trader (Contract 1)",
            ));
        }
        Ok(())
    }
}

/// Queue names become Redis keys, and the server only shows processing lists whose queue
/// name keeps its rule (`shared::keys::is_valid_name`): the same rule here.
fn queue_name(field: &str, q: &str) -> Result<(), ConfigError> {
    if shared::keys::is_valid_name(q) {
        Ok(())
    } else {
        Err(field_err(
            field,
            format!("must be {}", shared::keys::NAME_RULE),
        ))
    }
}

/// On a Redis Cluster a queue's keys must share a hash slot (its moves are atomic scripts over
/// several of them), so its name carries a hash tag (SPEC §12); the compensation queue of
/// `on_failure`, pushed in the same step as the dead letter, must land in the same slot.
fn fits_a_cluster(at: &str, p: &PipelineConfig) -> Result<(), ConfigError> {
    if shared::slot::hash_tag(p.queue.as_bytes()).is_none() {
        return Err(field_err(
            format!("{at}.queue"),
            format!(
                "{:?} has no hash tag: on a Redis Cluster a queue name carries one, e.g. \
                 \"{{{}}}\", so that its queue, processing and dead-letter keys share a slot \
                 (SPEC §12)",
                p.queue,
                p.queue.replace(['{', '}'], "")
            ),
        ));
    }
    if let Some(q) = &p.on_failure {
        if shared::slot::key_slot(q.as_bytes()) != shared::slot::key_slot(p.queue.as_bytes()) {
            return Err(field_err(
                format!("{at}.on_failure"),
                format!(
                    "{q:?} is in another hash slot than the queue {:?}: on a Redis Cluster \
                     give it the queue's hash tag (e.g. \"{}-undo\")",
                    p.queue, p.queue
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a set of pipelines: each one, ids unique, and on a Redis Cluster (`on_cluster`)
/// queue names with hash tags.
pub fn validate_pipelines(
    pipelines: &[PipelineConfig],
    on_cluster: bool,
) -> Result<(), ConfigError> {
    let mut seen = BTreeMap::new();
    for (i, p) in pipelines.iter().enumerate() {
        let at = format!("pipelines[{i}]");
        p.validate(&at)?;
        if on_cluster {
            fits_a_cluster(&at, p)?;
        }
        if let Some(j) = seen.insert(p.id.as_str(), i) {
            return Err(field_err(
                format!("pipelines[{i}].id"),
                format!("{:?} is also pipelines[{j}]", p.id),
            ));
        }
    }
    Ok(())
}

/// The file as written. Pipelines keep their location so a semantic error names its line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    agent: AgentSection,
    #[serde(default)]
    control_plane: ControlSection,
    #[serde(default)]
    redis: RedisSection,
    #[serde(default)]
    communication: CommunicationSection,
    #[serde(default)]
    logging: LoggingSection,
    #[serde(default)]
    api: ApiSection,
    #[serde(default)]
    pipelines: Vec<serde_saphyr::Spanned<PipelineConfig>>,
}

/// The agent's whole configuration after the file and the environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub agent: AgentSection,
    pub control_plane: ControlSection,
    pub redis: RedisSection,
    pub communication: CommunicationSection,
    pub logging: LoggingSection,
    pub api: ApiSection,
    pub pipelines: Vec<PipelineConfig>,
    /// Where the agent keeps its id and its applied-command record.
    pub config_dir: PathBuf,
}

pub const DEFAULT_MAX_CONCURRENT: u32 = 8;
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(15);
/// Above the longest a slot waits for a BLMOVE reply, so a job in flight is never taken
/// for stranded.
pub const MIN_SWEEP_INTERVAL: Duration = Duration::from_secs(6);

impl Config {
    pub fn max_concurrent(&self) -> u32 {
        self.agent.max_concurrent.unwrap_or(DEFAULT_MAX_CONCURRENT)
    }

    pub fn sweep_interval(&self) -> Duration {
        self.agent.sweep_interval.unwrap_or(DEFAULT_SWEEP_INTERVAL)
    }

    pub fn shutdown_grace(&self) -> Duration {
        self.agent.shutdown_grace.unwrap_or(DEFAULT_SHUTDOWN_GRACE)
    }

    pub fn redis_url(&self) -> String {
        self.redis_url_at(&self.redis.host, self.redis.port)
    }

    /// The URL of a Redis at `host:port` with the configured scheme and password.
    fn redis_url_at(&self, host: &str, port: u16) -> String {
        let scheme = if self.redis.tls { "rediss" } else { "redis" };
        match &self.redis.password {
            Some(pw) => format!("{scheme}://:{}@{host}:{port}", url_escape(pw)),
            None => format!("{scheme}://{host}:{port}"),
        }
    }

    /// A client for the configured Redis: TLS with `redis.tls`, verified against
    /// `redis.ca_file` when given, else the system's roots.
    pub fn redis_client(&self) -> Result<redis::Client, ConfigError> {
        self.redis_client_at(&self.redis.host, self.redis.port)
    }

    fn redis_client_at(&self, host: &str, port: u16) -> Result<redis::Client, ConfigError> {
        let url = self.redis_url_at(host, port);
        let client = match self.ca_pem()? {
            None => redis::Client::open(url),
            Some(pem) => redis::Client::build_with_tls(url, certificates(pem)),
        };
        // The error may quote the URL, password and all: say which setting instead.
        client.map_err(|_| self.address_error())
    }

    fn ca_pem(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        let Some(path) = &self.redis.ca_file else {
            return Ok(None);
        };
        std::fs::read(path).map(Some).map_err(|e| {
            field_err(
                "redis.ca_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })
    }

    fn address_error(&self) -> ConfigError {
        match &self.redis.ca_file {
            Some(path) => field_err(
                "redis.ca_file",
                format!("{} holds no PEM certificate it can use", path.display()),
            ),
            None => field_err(
                "redis",
                "host, port and password do not make a Redis address",
            ),
        }
    }

    /// The Cluster's client and one plain client per seed (for pub/sub, which a Cluster
    /// carries to every node), when `redis.cluster_nodes` is set.
    fn cluster(&self) -> Result<Option<crate::redis_target::Cluster>, ConfigError> {
        let Some(seeds) = self.cluster_addrs()? else {
            return Ok(None);
        };
        let urls: Vec<String> = seeds
            .iter()
            .map(|(h, p)| self.redis_url_at(h, *p))
            .collect();
        let mut builder = redis::cluster::ClusterClientBuilder::new(urls)
            // Our own loops retry with backoff; the client's retries stay few.
            .retries(2);
        if let Some(pem) = self.ca_pem()? {
            builder = builder.certs(certificates(pem));
        }
        let client = builder.build().map_err(|_| self.address_error())?;
        let nodes = seeds
            .iter()
            .map(|(h, p)| self.redis_client_at(h, *p))
            .collect::<Result<_, _>>()?;
        Ok(Some(crate::redis_target::Cluster {
            client,
            nodes,
            seeds: seeds.iter().map(|(h, p)| format!("{h}:{p}")).collect(),
        }))
    }

    /// Where Redis is: the configured address, or the primary the sentinels name.
    pub fn redis_target(&self) -> Result<crate::redis_target::Target, ConfigError> {
        if let Some(cluster) = self.cluster()? {
            return Ok(crate::redis_target::Target::Cluster(std::sync::Arc::new(
                cluster,
            )));
        }
        let client = self.redis_client()?;
        Ok(match self.sentinel_addrs()? {
            None => crate::redis_target::Target::Direct(Box::new(client)),
            Some((addrs, master)) => crate::redis_target::Target::Sentinel(std::sync::Arc::new(
                crate::redis_target::Sentinels {
                    addrs,
                    master,
                    template: client,
                    password: self.redis.sentinel_password.clone(),
                    names: crate::redis_target::SENTINEL_NAMES,
                },
            )),
        })
    }

    /// Reads `path` and applies the environment (`env` looks a variable up). `optional`: a
    /// missing file is no error (the default path), and the environment alone decides.
    pub fn load(
        path: &Path,
        optional: bool,
        config_dir: PathBuf,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => "{}".to_string(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let mut config = Self::parse(path, &text, config_dir)?;
        config.apply_env(env)?;
        // The pipeline files of CONFIG_DIR beside the file's own; an id in both is refused.
        let files = load_pipeline_dir(&pipeline_dir(&config.config_dir))?;
        config.pipelines.extend(files);
        validate_pipelines(&config.pipelines, config.on_cluster())?;
        Ok(config)
    }

    /// Parses and validates a file's text.
    pub fn parse(path: &Path, text: &str, config_dir: PathBuf) -> Result<Self, ConfigError> {
        let file: FileConfig = serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let lines: Vec<u64> = file.pipelines.iter().map(|p| p.referenced.line()).collect();
        let pipelines: Vec<PipelineConfig> = file.pipelines.into_iter().map(|p| p.value).collect();
        let config = Self {
            agent: file.agent,
            control_plane: file.control_plane,
            redis: file.redis,
            communication: file.communication,
            logging: file.logging,
            api: file.api,
            pipelines,
            config_dir,
        };
        config.validate().map_err(|e| match e {
            ConfigError::Field { field, message } => {
                // `pipelines[i]...` errors point at that pipeline's line; others at the top.
                let line = field
                    .strip_prefix("pipelines[")
                    .and_then(|r| r.split(']').next())
                    .and_then(|i| i.parse::<usize>().ok())
                    .and_then(|i| lines.get(i).copied())
                    .unwrap_or(1);
                ConfigError::Invalid {
                    path: path.to_path_buf(),
                    line,
                    field,
                    message,
                }
            }
            other => other,
        })?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(id) = &self.agent.id {
            valid::id("agent.id", id).map_err(|e| field_err(e.field, e.message))?;
        }
        valid::labels("agent.labels", &self.agent.labels)
            .map_err(|e| field_err(e.field, e.message))?;
        if self
            .agent
            .sweep_interval
            .is_some_and(|d| d < MIN_SWEEP_INTERVAL)
        {
            return Err(field_err(
                "agent.sweep_interval",
                format!("must be at least {MIN_SWEEP_INTERVAL:?}"),
            ));
        }
        if self.agent.max_concurrent == Some(0) {
            return Err(field_err("agent.max_concurrent", "must be at least 1"));
        }
        let c = &self.communication;
        for (field, d) in [
            ("communication.heartbeat_interval", c.heartbeat_interval),
            (
                "communication.command_poll_interval",
                c.command_poll_interval,
            ),
        ] {
            if d.is_zero() || d > Duration::from_secs(3600) {
                return Err(field_err(field, "must be above 0 and at most 1h"));
            }
        }
        if let Some(url) = &self.control_plane.url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(field_err(
                    "control_plane.url",
                    "must start with http:// or https://",
                ));
            }
        }
        self.sentinel_addrs()?;
        if self.cluster_addrs()?.is_some() && !self.redis.sentinels.is_empty() {
            return Err(field_err(
                "redis.cluster_nodes",
                "a Redis Cluster is not watched by sentinels: give redis.cluster_nodes or \
                 redis.sentinels, not both",
            ));
        }
        validate_pipelines(&self.pipelines, self.on_cluster())
    }

    /// Whether Redis is a Cluster (`redis.cluster_nodes`): queue names then need hash tags.
    pub fn on_cluster(&self) -> bool {
        !self.redis.cluster_nodes.is_empty()
    }

    /// `redis.cluster_nodes` as addresses; `None` without.
    pub fn cluster_addrs(&self) -> Result<Option<Vec<(String, u16)>>, ConfigError> {
        if self.redis.cluster_nodes.is_empty() {
            return Ok(None);
        }
        self.redis
            .cluster_nodes
            .iter()
            .map(|s| host_port("redis.cluster_nodes", s))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// `redis.sentinels` as addresses with `redis.master` (both or neither); `None` without.
    pub fn sentinel_addrs(&self) -> Result<Option<SentinelSettings>, ConfigError> {
        let r = &self.redis;
        match (r.sentinels.is_empty(), &r.master) {
            (true, None) => Ok(None),
            (false, Some(m)) if !m.trim().is_empty() => {
                let addrs = r
                    .sentinels
                    .iter()
                    .map(|s| host_port("redis.sentinels", s))
                    .collect::<Result<_, _>>()?;
                Ok(Some((addrs, m.trim().to_string())))
            }
            (false, _) => Err(field_err(
                "redis.master",
                "the name the sentinels monitor the primary under is needed with redis.sentinels",
            )),
            (true, Some(_)) => Err(field_err(
                "redis.sentinels",
                "host:port of the sentinels are needed with redis.master",
            )),
        }
    }

    /// The environment wins over the file (SPEC §8's variables).
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |var: &'static str| env(var).filter(|v| !v.is_empty()).map(|v| (var, v));
        if let Some((_, v)) = get("AGENT_ID") {
            self.agent.id = Some(v);
        }
        if let Some((_, v)) = get("CONTROL_PLANE_URL") {
            self.control_plane.url = Some(v);
        }
        if let Some((_, v)) = get("AGENT_TOKEN") {
            self.control_plane.token = Some(v);
        }
        if let Some((_, v)) = get("REDIS_HOST") {
            self.redis.host = v;
        }
        if let Some((var, v)) = get("REDIS_PORT") {
            self.redis.port = v.parse().map_err(|_| ConfigError::Env {
                var,
                message: format!("{v:?} is not a port"),
            })?;
        }
        if let Some((_, v)) = get("REDIS_PASSWORD") {
            self.redis.password = Some(v);
        }
        if let Some((var, v)) = get("REDIS_TLS") {
            self.redis.tls = boolean(var, &v)?;
        }
        if let Some((_, v)) = get("REDIS_CA_FILE") {
            self.redis.ca_file = Some(PathBuf::from(v));
        }
        if let Some((_, v)) = get("REDIS_SENTINELS") {
            self.redis.sentinels = comma_list(&v);
        }
        if let Some((_, v)) = get("REDIS_SENTINEL_MASTER") {
            self.redis.master = Some(v);
        }
        if let Some((_, v)) = get("REDIS_SENTINEL_PASSWORD") {
            self.redis.sentinel_password = Some(v).filter(|p| !p.is_empty());
        }
        if let Some((_, v)) = get("REDIS_CLUSTER_NODES") {
            self.redis.cluster_nodes = comma_list(&v);
        }
        let duration = |var: &'static str, v: &str| {
            humantime::parse_duration(v).map_err(|e| ConfigError::Env {
                var,
                message: format!("{v:?}: {e} (write e.g. 10s)"),
            })
        };
        if let Some((var, v)) = get("HEARTBEAT_INTERVAL") {
            self.communication.heartbeat_interval = duration(var, &v)?;
        }
        if let Some((var, v)) = get("COMMAND_POLL_INTERVAL") {
            self.communication.command_poll_interval = duration(var, &v)?;
        }
        if let Some((var, v)) = get("ENABLE_REST_FALLBACK") {
            self.communication.enable_rest_fallback = boolean(var, &v)?;
        }
        self.validate().map_err(|e| match e {
            ConfigError::Field { field, message } => ConfigError::Field {
                field: format!("{field} (after the environment)"),
                message,
            },
            other => other,
        })
    }
}

fn comma_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn host_port(field: &str, s: &str) -> Result<(String, u16), ConfigError> {
    s.rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| field_err(field, format!("{s:?} is not host:port")))
}

fn certificates(root: Vec<u8>) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(root),
    }
}

/// `redis.sentinels` as addresses, with `redis.master`.
pub type SentinelSettings = (Vec<(String, u16)>, String);

/// A boolean environment variable.
fn boolean(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::Env {
            var,
            message: format!("{v:?} is not true or false"),
        }),
    }
}

/// Percent-encodes what a URL's userinfo cannot carry as is.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The folder of pipeline files (the plan's `CONFIG_DIR`): `<CONFIG_DIR>/pipelines/<id>.yaml`,
/// one pipeline each, in the same fields as an entry of `pipelines:` in `agent.yaml`.
pub fn pipeline_dir(config_dir: &Path) -> PathBuf {
    config_dir.join("pipelines")
}

/// The pipeline in `<dir>/<id>.yaml`, checked; `None` when there is no such file. Its `id`, when
/// it names one, must be the file's.
pub fn load_pipeline_file(dir: &Path, id: &str) -> Result<Option<PipelineConfig>, ConfigError> {
    // An id is [A-Za-z0-9._-]: it cannot leave the folder.
    valid::id("pipeline_id", id).map_err(|e| field_err(e.field, e.message))?;
    let path = dir.join(format!("{id}.yaml"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    let mut value: serde_json::Value =
        serde_saphyr::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
    if let serde_json::Value::Object(m) = &mut value {
        match m.get("id").and_then(|v| v.as_str()) {
            Some(named) if named != id => {
                return Err(ConfigError::Parse {
                    path,
                    message: format!("id {named:?} is not the file's ({id:?})"),
                })
            }
            Some(_) => {}
            None => {
                m.insert("id".into(), id.into());
            }
        }
    }
    let p: PipelineConfig = serde_json::from_value(value).map_err(|e| ConfigError::Parse {
        path: path.clone(),
        message: e.to_string(),
    })?;
    p.validate(&path.display().to_string())?;
    Ok(Some(p))
}

/// Every `*.yaml` of the pipeline folder, by file name; none when there is no folder.
pub fn load_pipeline_dir(dir: &Path) -> Result<Vec<PipelineConfig>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".yaml").map(str::to_string)
        })
        .collect();
    ids.sort();
    let mut out = Vec::new();
    for id in ids {
        out.extend(load_pipeline_file(dir, &id)?);
    }
    Ok(out)
}

/// `CONFIG_DIR`, else `$XDG_CONFIG_HOME/pipeline-agent`, else `~/.config/pipeline-agent`.
pub fn config_dir(env: impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(d) = env("CONFIG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = env("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("pipeline-agent");
    }
    let home = env("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".config").join("pipeline-agent")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
agent: { id: render-host-1, labels: { env: prod, gpu: "1" } }
control_plane: { url: "http://127.0.0.1:3000", token: "t" }
redis: { host: 127.0.0.1, port: 6379, password: null }
communication: { heartbeat_interval: 10s, command_poll_interval: 5s, enable_rest_fallback: true }
logging: { level: info, format: json }
api: { listen: "127.0.0.1:9464" }
pipelines:
  - id: image
    name: image render
    queue: image-render
    handler: ["/usr/local/bin/render", "--fast"]
    timeout: 60s
    max_retries: 3
    concurrency: 2
    max_restarts: 5
    kind: render
    heartbeat_name: image-render
    on_failure: image-compensate
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("agent.yaml"), text, PathBuf::from("/tmp/x"))
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_spec_example_parses() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.agent.id.as_deref(), Some("render-host-1"));
        assert_eq!(c.agent.labels.get("gpu").map(String::as_str), Some("1"));
        assert_eq!(c.logging.format, LogFormat::Json);
        let p = &c.pipelines[0];
        assert_eq!(p.handler, ["/usr/local/bin/render", "--fast"]);
        assert_eq!(p.timeout, Duration::from_secs(60));
        assert_eq!(p.concurrency, 2);
        assert_eq!(p.worker_name(), "image-render");
        assert_eq!(p.on_failure.as_deref(), Some("image-compensate"));
    }

    #[test]
    fn everything_is_optional() {
        let c = parse("pipelines:\n  - { id: a, queue: a, handler: [\"true\"] }\n").unwrap();
        assert_eq!(c.redis.port, 6379);
        assert_eq!(c.communication.heartbeat_interval, Duration::from_secs(10));
        assert_eq!(c.pipelines[0].max_retries, 3);
        assert_eq!(c.pipelines[0].worker_name(), "a");
        assert_eq!(c.api.listen.to_string(), "127.0.0.1:8081");
        let c = parse("agent: { id: x }\n").unwrap();
        assert!(
            c.pipelines.is_empty(),
            "pipelines come later, by start_pipeline"
        );
    }

    #[test]
    fn a_bad_file_names_its_line_and_field() {
        let text = "pipelines:\n  - { id: a, queue: a, handler: [\"true\"] }\n  - { id: b, queue: b, handler: [\"true\"], concurrency: 0 }\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("pipelines[1].concurrency"), "{e}");

        let e = parse("pipelines:\n  - { id: a, queue: a, handler: [\"true\"], timeout: soon }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");

        let e = parse("pipelines: []\nredis: { hots: x }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("hots") && e.contains("line 2"), "{e}");

        let e = parse("pipelines:\n  - { id: a, queue: a, handler: [\"true\"] }\n  - { id: a, queue: b, handler: [\"true\"] }\n").unwrap_err().to_string();
        assert!(e.contains("pipelines[1].id") && e.contains("line 3"), "{e}");

        let e = parse("pipelines:\n  - { id: a, queue: a, handler: [] }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pipelines[0].handler"), "{e}");
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let mut c = parse(GOOD).unwrap();
        c.apply_env(env(&[
            ("AGENT_ID", "from-env"),
            ("REDIS_PORT", "6380"),
            ("REDIS_PASSWORD", "p@ss word"),
            ("HEARTBEAT_INTERVAL", "2s"),
            ("ENABLE_REST_FALLBACK", "false"),
            ("CONTROL_PLANE_URL", "http://cp:3000"),
        ]))
        .unwrap();
        assert_eq!(c.agent.id.as_deref(), Some("from-env"));
        assert_eq!(c.redis.port, 6380);
        assert_eq!(c.redis_url(), "redis://:p%40ss%20word@127.0.0.1:6380");
        assert_eq!(c.communication.heartbeat_interval, Duration::from_secs(2));
        assert!(!c.communication.enable_rest_fallback);
        assert_eq!(c.control_plane.url.as_deref(), Some("http://cp:3000"));
        // TLS (SPEC §12): rediss://, a CA file that must be readable and hold a certificate
        c.apply_env(env(&[
            ("REDIS_TLS", "true"),
            ("REDIS_CA_FILE", "/no/such.pem"),
        ]))
        .unwrap();
        assert!(c.redis_url().starts_with("rediss://"));
        let e = c.redis_client().unwrap_err().to_string();
        assert!(
            e.contains("redis.ca_file") && e.contains("/no/such.pem") && !e.contains("p@ss"),
            "{e}"
        );
        let e = c
            .apply_env(env(&[("REDIS_TLS", "maybe")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("REDIS_TLS"), "{e}");
        let file =
            parse("redis: { host: r.example, port: 6380, tls: true, ca_file: /etc/ca.pem }\n")
                .unwrap();
        assert_eq!(file.redis_url(), "rediss://r.example:6380");
        assert_eq!(
            file.redis.ca_file.as_deref(),
            Some(Path::new("/etc/ca.pem"))
        );
    }

    #[test]
    fn sentinels_come_with_a_master_name() {
        let file = parse("redis: { sentinels: [\"s1:26379\", \"s2:26380\"], master: mymaster }\n")
            .unwrap();
        let (addrs, master) = file.sentinel_addrs().unwrap().unwrap();
        assert_eq!(addrs, vec![("s1".into(), 26379), ("s2".into(), 26380)]);
        assert_eq!(master, "mymaster");
        let e = parse("redis: { sentinels: [\"s1:26379\"] }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("redis.master"), "{e}");
        let e = parse("redis: { sentinels: [\"s1\"], master: m }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("host:port"), "{e}");
        let mut c = parse(GOOD).unwrap();
        c.apply_env(env(&[
            ("REDIS_SENTINELS", "10.0.0.1:26379, 10.0.0.2:26379"),
            ("REDIS_SENTINEL_MASTER", "m"),
        ]))
        .unwrap();
        assert_eq!(c.sentinel_addrs().unwrap().map(|s| s.0.len()), Some(2));
    }

    #[test]
    fn on_a_cluster_queue_names_carry_hash_tags() {
        // GOOD's queues have no tags: the first one is named, with the rule and an example.
        let e = parse(GOOD)
            .unwrap()
            .apply_env(env(&[("REDIS_CLUSTER_NODES", "a:7000")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pipelines[0].queue"), "{e}");
        assert!(
            e.contains("hash tag") && e.contains("\"{image-render}\""),
            "{e}"
        );
        let tagged = GOOD
            .replace("queue: image-render", "queue: \"{image-render}\"")
            .replace(
                "on_failure: image-compensate",
                "on_failure: \"{image-render}-undo\"",
            );
        let mut c = parse(&tagged).unwrap();
        c.apply_env(env(&[("REDIS_CLUSTER_NODES", "a:7000, b:7001")]))
            .unwrap();
        assert_eq!(
            c.cluster_addrs().unwrap().unwrap(),
            vec![("a".to_string(), 7000), ("b".to_string(), 7001)]
        );
        assert!(matches!(
            c.redis_target().unwrap(),
            crate::redis_target::Target::Cluster(_)
        ));
        // The compensation queue is pushed in the dead-letter step: the same slot or refused.
        let elsewhere = tagged.replace("\"{image-render}-undo\"", "image-compensate");
        let e = parse(&elsewhere)
            .unwrap()
            .apply_env(env(&[("REDIS_CLUSTER_NODES", "a:7000")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pipelines[0].on_failure") && e.contains("slot"),
            "{e}"
        );
        let e = parse(&tagged)
            .unwrap()
            .apply_env(env(&[
                ("REDIS_CLUSTER_NODES", "a:7000"),
                ("REDIS_SENTINELS", "s:26379"),
                ("REDIS_SENTINEL_MASTER", "m"),
            ]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not both"), "{e}");
        let e = parse("redis: { cluster_nodes: [\"a\"] }\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("redis.cluster_nodes") && e.contains("host:port"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_environment_variable_is_named() {
        let mut c = parse(GOOD).unwrap();
        let e = c
            .apply_env(env(&[("REDIS_PORT", "seventy")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("REDIS_PORT"), "{e}");
        let e = c
            .apply_env(env(&[("AGENT_ID", "has space")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("agent.id"), "{e}");
    }

    #[test]
    fn config_dir_falls_back_to_home() {
        assert_eq!(
            config_dir(env(&[("CONFIG_DIR", "/etc/pa")])),
            PathBuf::from("/etc/pa")
        );
        assert_eq!(
            config_dir(env(&[("HOME", "/home/u")])),
            PathBuf::from("/home/u/.config/pipeline-agent")
        );
    }

    /// The plan's own `agent.yaml`, as printed in it.
    const PLANS_FILE: &str = r#"agent:
  id: "agent-001"  # 생략 시 자동 생성
  labels:
    - "region=ap-northeast-2"
    - "zone=a"

control_plane:
  url: "http://control-plane:8080"

redis:
  host: "redis"
  port: 6379
  password: ""

communication:
  heartbeat_interval: 10s
  command_poll_interval: 5s
  enable_rest_fallback: true

logging:
  level: info
  format: json
"#;

    #[test]
    fn the_plans_agent_yaml_is_read_verbatim() {
        let c = Config::parse(Path::new("agent.yaml"), PLANS_FILE, PathBuf::from("/tmp")).unwrap();
        assert_eq!(c.agent.id.as_deref(), Some("agent-001"));
        assert_eq!(c.agent.labels["region"], "ap-northeast-2");
        assert_eq!(c.agent.labels["zone"], "a");
        assert_eq!(
            c.control_plane.url.as_deref(),
            Some("http://control-plane:8080")
        );
        assert_eq!((c.redis.host.as_str(), c.redis.port), ("redis", 6379));
        assert_eq!(c.logging.format, LogFormat::Json);
        assert!(
            c.pipelines.is_empty(),
            "no pipelines key: waits for start_pipeline"
        );
        assert_eq!(c.api.listen.port(), 8081, "the plan's port");
        let bad = PLANS_FILE.replace("\"zone=a\"", "\"zone\"");
        let e = Config::parse(Path::new("agent.yaml"), &bad, PathBuf::from("/tmp")).unwrap_err();
        assert!(e.to_string().contains("key=value"), "{e}");
    }

    #[test]
    fn without_a_file_the_environment_alone_decides() {
        let missing = Path::new("/nonexistent/agent.yaml");
        let vars = env(&[("REDIS_HOST", "redis.local"), ("REDIS_PORT", "6380")]);
        let c = Config::load(missing, true, PathBuf::from("/tmp"), vars).unwrap();
        assert_eq!((c.redis.host.as_str(), c.redis.port), ("redis.local", 6380));
        assert!(c.pipelines.is_empty());
        // A file named on the command line must exist.
        let e = Config::load(missing, false, PathBuf::from("/tmp"), env(&[])).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
    }

    #[test]
    fn pipelines_also_come_from_files_in_config_dir() {
        let dir = std::env::temp_dir().join(format!("pa-cfg-{}", std::process::id()));
        let pipes = pipeline_dir(&dir);
        std::fs::create_dir_all(&pipes).unwrap();
        std::fs::write(
            pipes.join("image.yaml"),
            "queue: image-render\nhandler: [\"true\"]\ntimeout: 5s\n",
        )
        .unwrap();
        std::fs::write(pipes.join("notes.txt"), "not a pipeline").unwrap();
        let c = Config::load(&dir.join("agent.yaml"), true, dir.clone(), env(&[])).unwrap();
        assert_eq!(c.pipelines.len(), 1);
        assert_eq!(
            (c.pipelines[0].id.as_str(), c.pipelines[0].timeout),
            ("image", Duration::from_secs(5))
        );
        assert_eq!(load_pipeline_file(&pipes, "missing").unwrap(), None);
        assert!(
            load_pipeline_file(&pipes, "../etc").is_err(),
            "an id cannot leave the folder"
        );
        // The same id in agent.yaml and in a file is refused, naming it.
        std::fs::write(
            dir.join("agent.yaml"),
            "pipelines:\n  - { id: image, queue: x, handler: [\"true\"] }\n",
        )
        .unwrap();
        let e = Config::load(&dir.join("agent.yaml"), true, dir.clone(), env(&[])).unwrap_err();
        assert!(e.to_string().contains("\"image\""), "{e}");
        std::fs::remove_file(dir.join("agent.yaml")).unwrap();
        // A file whose id is another's is refused, naming the file.
        std::fs::write(
            pipes.join("video.yaml"),
            "id: other\nqueue: v\nhandler: [\"true\"]\n",
        )
        .unwrap();
        let e = load_pipeline_dir(&pipes).unwrap_err();
        assert!(e.to_string().contains("video.yaml"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
