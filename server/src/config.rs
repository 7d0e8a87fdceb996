//! Settings: command-line flags and env vars first, then an optional TOML file, then defaults.
//!
//! The listen address and site root are cargo-leptos's (`LEPTOS_SITE_ADDR`, `LEPTOS_SITE_ROOT`);
//! everything else is here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use shared::registry::{default_fleet, WorkerSpec};
use shared::WorkerKind;

use crate::alerts::{AlertArgs, AlertConfig};
use crate::control::{ControlArgs, ControlConfig};
use crate::redis_target::{ClusterNodes, SentinelSettings, Sentinels, Target};

/// Agent Office: a live picture of a Redis-coordinated worker fleet.
#[derive(Debug, Parser)]
#[command(name = "agent-office", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard and the API (the default).
    Serve,
    /// Keep writing a realistic demo fleet (SPEC §3) into Redis.
    Demo(DemoArgs),
    /// Log the alerts sent to it: a local stand-in for the Telegram API or a webhook.
    Sink(SinkArgs),
}

#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8099")]
    pub addr: std::net::SocketAddr,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Redis to read the fleet from.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    pub redis_url: String,
    /// A PEM file with the CA that signed the Redis server's certificate (`rediss://` with a
    /// private CA); without it the system's roots are used.
    #[arg(long, env = "REDIS_CA_FILE", global = true)]
    pub redis_ca_file: Option<PathBuf>,
    /// Sentinels to ask for the primary (`host:port,host:port`), with
    /// `REDIS_SENTINEL_MASTER`; `REDIS_URL` then gives only the password, database and TLS.
    #[arg(long, env = "REDIS_SENTINELS", global = true)]
    pub redis_sentinels: Option<String>,
    /// The name the sentinels monitor the primary under.
    #[arg(long, env = "REDIS_SENTINEL_MASTER", global = true)]
    pub redis_sentinel_master: Option<String>,
    /// The sentinels' own password (their `requirepass`), when they ask for one; the primary's
    /// is `REDIS_URL`'s.
    #[arg(
        long,
        env = "REDIS_SENTINEL_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub redis_sentinel_password: Option<String>,
    /// Redis Cluster nodes to read the slot map from (`host:port,host:port`); `REDIS_URL` then
    /// gives only the password, database and TLS. On a Cluster the server watches (workers,
    /// agents, alerts, trends); the control plane, jobs and schedules answer that they do not
    /// run on a Cluster yet.
    #[arg(long, env = "REDIS_CLUSTER_NODES", global = true)]
    pub redis_cluster_nodes: Option<String>,
    /// Serve without checking the site bundle (API use, tests): the page then links files
    /// that may not exist.
    #[arg(long, env = "API_ONLY")]
    pub api_only: bool,
    /// Keep no trends (no folding, no series written): for comparing the collector with and
    /// without them; the charts then stay empty.
    #[arg(long, env = "NO_TRENDS", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_trends: bool,
    /// Optional TOML file with the worker registry and the settings below.
    #[arg(long, env = "AGENT_OFFICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// How often the collector reads Redis (default 1s).
    #[arg(long, env = "COLLECT_INTERVAL", value_parser = humantime::parse_duration)]
    pub collect_interval: Option<Duration>,
    /// Rest between two discovery passes over the keyspace (default 5s).
    #[arg(long, env = "DISCOVER_INTERVAL", value_parser = humantime::parse_duration)]
    pub discover_interval: Option<Duration>,
    /// Timeout of every Redis call (default 500ms).
    #[arg(long, env = "REDIS_TIMEOUT", value_parser = humantime::parse_duration)]
    pub redis_timeout: Option<Duration>,
    /// How long a discovered (unregistered) worker stays listed after its key is gone (default 1h).
    #[arg(long, env = "FORGET_AFTER", value_parser = humantime::parse_duration)]
    pub forget_after: Option<Duration>,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub control: ControlArgs,
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Length of one pass through every state.
    #[arg(long, env = "DEMO_PERIOD", default_value = "180s", value_parser = humantime::parse_duration)]
    pub period: Duration,
    /// Only play these workers (comma-separated names); the render workers left out still get
    /// jobs, for real `pipeline-agent`s to run (what `scripts/run.sh` does). Default: all.
    #[arg(long, env = "DEMO_SIMULATE", value_delimiter = ',')]
    pub simulate: Option<Vec<String>>,
}

/// The optional TOML file; every field may be left out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default, with = "humantime_serde")]
    collect_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    discover_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    redis_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    forget_after: Option<Duration>,
    workers: Option<Vec<WorkerSpec>>,
    telegram_bot_token: Option<String>,
    telegram_chat_id: Option<String>,
    telegram_api_base: Option<String>,
    alert_webhook_url: Option<String>,
    #[serde(default, with = "humantime_serde")]
    alert_interval: Option<Duration>,
    alert_dead_letter_threshold: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    alert_lease: Option<Duration>,
    alert_language: Option<String>,
    /// Control-plane settings (tokens, grace periods), as `[control]`.
    control: Option<ControlArgs>,
}

impl FileConfig {
    /// The file's alert settings, in the shape the alert task reads them.
    fn alert_args(&self) -> AlertArgs {
        AlertArgs {
            telegram_bot_token: self.telegram_bot_token.clone(),
            telegram_chat_id: self.telegram_chat_id.clone(),
            telegram_api_base: self.telegram_api_base.clone(),
            alert_webhook_url: self.alert_webhook_url.clone(),
            alert_interval: self.alert_interval,
            alert_dead_letter_threshold: self.alert_dead_letter_threshold,
            node_alert_deadletter_threshold: None,
            alert_lease: self.alert_lease,
            alert_language: self.alert_language.clone(),
        }
    }
}

/// The settings the server runs with, parsed once.
#[derive(Clone, Debug)]
pub struct Config {
    pub redis_url: String,
    /// The CA of `REDIS_CA_FILE`, read at start (PEM).
    pub redis_ca: Option<Vec<u8>>,
    pub collect_interval: Duration,
    pub discover_interval: Duration,
    pub redis_timeout: Duration,
    pub forget_after: Duration,
    pub workers: Vec<WorkerSpec>,
    pub alerts: AlertConfig,
    pub control: ControlConfig,
    /// Connection and stream caps, idle timeout, shutdown deadline.
    pub limits: crate::limits::Limits,
    /// Fold and keep the trends (`NO_TRENDS` turns them off).
    pub trends: bool,
    /// `REDIS_SENTINELS` and `REDIS_SENTINEL_MASTER`, when Sentinel names the primary.
    pub sentinels: Option<SentinelSettings>,
    /// `REDIS_CLUSTER_NODES`, on a Redis Cluster.
    pub cluster: Option<Vec<crate::redis_target::Addr>>,
    /// `REDIS_SENTINEL_PASSWORD`.
    pub sentinel_password: Option<String>,
}

impl Config {
    /// The collector's and discovery's slice.
    pub fn collector(&self) -> crate::collector::CollectorConfig {
        crate::collector::CollectorConfig {
            collect_interval: self.collect_interval,
            discover_interval: self.discover_interval,
            redis_timeout: self.redis_timeout,
            forget_after: self.forget_after,
            workers: self.workers.clone(),
            tls: self.redis_tls(),
        }
    }

    /// Defaults for everything, reading the given Redis.
    pub fn new(redis_url: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            redis_ca: None,
            collect_interval: Duration::from_secs(1),
            discover_interval: Duration::from_secs(5),
            redis_timeout: Duration::from_millis(500),
            forget_after: Duration::from_secs(3600),
            workers: default_fleet(),
            alerts: AlertConfig::default(),
            control: ControlConfig::default(),
            limits: crate::limits::Limits::default(),
            trends: true,
            sentinels: None,
            cluster: None,
            sentinel_password: None,
        }
    }

    /// Merges flags/env over the file over the defaults, and checks the result.
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let defaults = Self::new(args.redis_url.clone());
        let config = Self {
            collect_interval: args
                .collect_interval
                .or(file.collect_interval)
                .unwrap_or(defaults.collect_interval),
            discover_interval: args
                .discover_interval
                .or(file.discover_interval)
                .unwrap_or(defaults.discover_interval),
            redis_timeout: args
                .redis_timeout
                .or(file.redis_timeout)
                .unwrap_or(defaults.redis_timeout),
            forget_after: args
                .forget_after
                .or(file.forget_after)
                .unwrap_or(defaults.forget_after),
            alerts: AlertConfig::resolve(&args.alerts, &file.alert_args())?,
            control: ControlConfig::resolve(&args.control, file.control.as_ref())?,
            workers: file.workers.unwrap_or(defaults.workers),
            limits: crate::limits::Limits::resolve(&args.limits, crate::limits::nofile())?,
            trends: !args.no_trends,
            sentinels: sentinels(args)?,
            cluster: cluster_nodes(args)?,
            sentinel_password: args
                .redis_sentinel_password
                .clone()
                .filter(|p| !p.is_empty()),
            redis_url: defaults.redis_url,
            redis_ca: match &args.redis_ca_file {
                None => None,
                Some(path) => Some(std::fs::read(path).with_context(|| {
                    format!("REDIS_CA_FILE {}: cannot read it", path.display())
                })?),
            },
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        for (what, d) in [
            ("collect_interval", self.collect_interval),
            ("discover_interval", self.discover_interval),
            ("redis_timeout", self.redis_timeout),
        ] {
            anyhow::ensure!(!d.is_zero(), "{what} must be longer than zero");
        }
        let mut names = std::collections::HashSet::new();
        for w in &self.workers {
            anyhow::ensure!(
                shared::keys::is_valid_name(&w.name),
                "worker {:?}: a name is {}",
                w.name,
                shared::keys::NAME_RULE
            );
            if let Some(q) = &w.queue {
                anyhow::ensure!(
                    shared::keys::is_valid_name(q),
                    "worker {:?}: queue {q:?} breaks the name rule ({})",
                    w.name,
                    shared::keys::NAME_RULE
                );
            }
            anyhow::ensure!(
                w.kind != WorkerKind::Unknown,
                "worker {:?}: kind must be render, watcher or trader",
                w.name
            );
            anyhow::ensure!(
                names.insert(&w.name),
                "worker {:?} is registered twice",
                w.name
            );
        }
        self.redis_client()?;
        if self.redis_url.starts_with("rediss://") {
            crate::tls::client_config(self.redis_ca.as_deref())?;
        }
        Ok(())
    }
}

impl Config {
    /// The collector's TLS settings for `rediss://` (`None` for `redis://`). Checked at start
    /// by [`Config::validate`], so a failure here cannot happen after it.
    pub fn redis_tls(&self) -> Option<std::sync::Arc<rustls::ClientConfig>> {
        if !self.redis_url.starts_with("rediss://") {
            return None;
        }
        match crate::tls::client_config(self.redis_ca.as_deref()) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!("TLS settings for Redis: {e}");
                None
            }
        }
    }

    /// A client for `REDIS_URL`: `rediss://` speaks TLS (rustls), verifying the server against
    /// `REDIS_CA_FILE` when given, else against the system's roots.
    pub fn redis_client(&self) -> anyhow::Result<redis::Client> {
        redis_client(&self.redis_url, self.redis_ca.as_deref())
    }

    /// Where Redis is: `REDIS_URL`, the primary the sentinels name, or a Cluster.
    pub fn redis_target(&self) -> anyhow::Result<Target> {
        let client = self.redis_client()?;
        Ok(match (&self.sentinels, &self.cluster) {
            (Some((addrs, master)), _) => Target::Sentinel(std::sync::Arc::new(Sentinels {
                addrs: addrs.clone(),
                master: master.clone(),
                template: client,
                password: self.sentinel_password.clone(),
                names: crate::redis_target::SENTINEL_NAMES,
            })),
            (None, Some(seeds)) => Target::Cluster(std::sync::Arc::new(
                ClusterNodes::new(seeds.clone(), client, self.redis_ca.as_deref())
                    .map_err(|_| anyhow::anyhow!("REDIS_CLUSTER_NODES: the nodes and REDIS_URL's password and TLS do not make a Redis Cluster client"))?,
            )),
            (None, None) => Target::from(client),
        })
    }
}

/// `REDIS_CLUSTER_NODES` (never with Sentinel: a Cluster fails over by itself).
pub fn cluster_nodes(args: &ServeArgs) -> anyhow::Result<Option<Vec<crate::redis_target::Addr>>> {
    let Some(list) = &args.redis_cluster_nodes else {
        return Ok(None);
    };
    anyhow::ensure!(
        args.redis_sentinels.is_none(),
        "REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set: a Cluster fails over by itself, \
         give one of them"
    );
    Ok(Some(crate::redis_target::parse_addrs(
        list,
        "REDIS_CLUSTER_NODES",
    )?))
}

/// `REDIS_SENTINELS` with `REDIS_SENTINEL_MASTER` (both or neither).
pub fn sentinels(args: &ServeArgs) -> anyhow::Result<Option<SentinelSettings>> {
    match (&args.redis_sentinels, &args.redis_sentinel_master) {
        (None, None) => Ok(None),
        (Some(list), Some(master)) if !master.trim().is_empty() => Ok(Some((
            crate::redis_target::parse_sentinels(list)?,
            master.trim().to_string(),
        ))),
        (Some(_), _) => anyhow::bail!("REDIS_SENTINELS is set without REDIS_SENTINEL_MASTER (the name the sentinels monitor the primary under)"),
        (None, Some(_)) => anyhow::bail!("REDIS_SENTINEL_MASTER is set without REDIS_SENTINELS (host:port,...)"),
    }
}

/// See [`Config::redis_client`]; refuses a CA without `rediss://`, and never quotes the URL's
/// password in an error.
pub fn redis_client(url: &str, ca: Option<&[u8]>) -> anyhow::Result<redis::Client> {
    let shown = redact(url);
    let tls = url.starts_with("rediss://");
    anyhow::ensure!(
        ca.is_none() || tls,
        "REDIS_CA_FILE is set but REDIS_URL {shown} is not rediss:// (TLS): use rediss://"
    );
    let client = match ca {
        Some(pem) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        ),
        None => redis::Client::open(url),
    };
    // The parse error itself may quote the URL: name the variable, never the secret.
    client.map_err(|e| {
        let why = if ca.is_some() && e.to_string().to_lowercase().contains("cert") {
            "REDIS_CA_FILE holds no PEM certificate it can use"
        } else {
            "not a Redis URL (redis://[:password@]host[:port][/db], or rediss:// for TLS)"
        };
        anyhow::anyhow!("REDIS_URL {shown}: {why}")
    })
}

/// Whether a Redis error is the server's TLS certificate failing to verify.
pub fn is_certificate_error(e: &redis::RedisError) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("certificate")
        || text.contains("unknownissuer")
        || text.contains("invalidcertificate")
}

/// A Redis URL without its password, for logs and errors: the `user:password@` part and any
/// `password=` / `pass=` query value are masked.
pub fn redact(url: &str) -> String {
    let mut out = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    };
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let masked: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _))
                    if ["password", "pass", "pwd"].contains(&k.to_ascii_lowercase().as_str()) =>
                {
                    format!("{k}=***")
                }
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", masked.join("&"));
    }
    out
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Channel;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["agent-office"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().serve
    }

    fn write(text: &str) -> tempfile_path::TempFile {
        tempfile_path::TempFile::new(text)
    }

    /// A file under the system temp dir removed on drop (keeps dev-dependencies small).
    mod tempfile_path {
        pub struct TempFile(pub std::path::PathBuf);
        impl TempFile {
            pub fn new(text: &str) -> Self {
                let path = std::env::temp_dir().join(format!(
                    "agent-office-test-{}-{}.toml",
                    std::process::id(),
                    rand::random::<u64>()
                ));
                std::fs::write(&path, text).unwrap();
                Self(path)
            }
        }
        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn defaults_are_the_spec_fleet() {
        let c = Config::from_args(&args(&[])).unwrap();
        assert_eq!(c.collect_interval, Duration::from_secs(1));
        let names: Vec<_> = c.workers.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "music-render",
                "video-render",
                "image-render",
                "insta-render",
                "task-watcher",
                "ai_trade"
            ]
        );
        assert_eq!(c.workers[5].kind, WorkerKind::Trader);
        assert_eq!(c.workers[0].queue.as_deref(), Some("music-render"));
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let file = write(
            r#"
collect_interval = "2s"
redis_timeout = "250ms"
[[workers]]
name = "gpu-1"
kind = "render"
queue = "gpu"
"#,
        );
        let path = file.0.to_str().unwrap().to_string();
        let c = Config::from_args(&args(&["--config", &path, "--collect-interval", "3s"])).unwrap();
        assert_eq!(c.collect_interval, Duration::from_secs(3));
        assert_eq!(c.redis_timeout, Duration::from_millis(250));
        assert_eq!(c.discover_interval, Duration::from_secs(5));
        assert_eq!(
            c.workers,
            vec![WorkerSpec {
                name: "gpu-1".into(),
                kind: WorkerKind::Render,
                queue: Some("gpu".into())
            }]
        );
    }

    #[test]
    fn alert_channels_come_from_flags_or_the_file() {
        let c = Config::from_args(&args(&[])).unwrap();
        assert!(
            c.alerts.channels.is_empty(),
            "no channel configured: alerts are off"
        );
        assert_eq!(c.alerts.interval, Duration::from_secs(60));
        assert_eq!(c.alerts.dead_letter_threshold, 1);
        assert_eq!(
            c.alerts.language,
            shared::Lang::Ko,
            "the plan's messages by default"
        );
        // The plan's name for the threshold is read too; the product's wins over it.
        let c = Config::from_args(&args(&["--node-alert-deadletter-threshold", "4"])).unwrap();
        assert_eq!(c.alerts.dead_letter_threshold, 4);
        let both = [
            "--node-alert-deadletter-threshold",
            "4",
            "--alert-dead-letter-threshold",
            "2",
            "--alert-language",
            "en",
        ];
        let c = Config::from_args(&args(&both)).unwrap();
        assert_eq!(c.alerts.dead_letter_threshold, 2);
        assert_eq!(c.alerts.language, shared::Lang::En);
        let bad = Config::from_args(&args(&["--alert-language", "fr"])).unwrap_err();
        assert!(bad.to_string().contains("ALERT_LANGUAGE"), "{bad}");
        let file = write(
            "telegram_bot_token = \"1:x\"\ntelegram_chat_id = \"42\"\nalert_interval = \"30s\"\n",
        );
        let c = Config::from_args(&args(&[
            "--config",
            file.0.to_str().unwrap(),
            "--alert-webhook-url",
            "http://127.0.0.1:9/hook",
        ]))
        .unwrap();
        assert_eq!(
            c.alerts.channels,
            vec![
                Channel::Telegram {
                    api_base: "https://api.telegram.org".into(),
                    token: "1:x".into(),
                    chat_id: "42".into()
                },
                Channel::Webhook {
                    url: "http://127.0.0.1:9/hook".into()
                },
            ]
        );
        assert_eq!(c.alerts.interval, Duration::from_secs(30));
    }

    #[test]
    fn passwords_stay_out_of_logs_and_errors() {
        assert_eq!(
            redact("redis://:s3cret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis://host/0?password=s3cret&protocol=resp3"),
            "redis://host/0?password=***&protocol=resp3"
        );
        assert_eq!(redact("redis://host?pass=s3cret"), "redis://host?pass=***");
        for url in [
            "redis://:s3cret@[::1",
            "redis://host:port?password=s3cret",
            "rediss://:s3cret@[::1",
        ] {
            let err = Config::from_args(&args(&["--redis-url", url])).unwrap_err();
            assert!(!format!("{err:#}").contains("s3cret"), "{err:#}");
            assert!(format!("{err:#}").contains("REDIS_URL"), "{err:#}");
        }
        // TLS is spoken (SPEC §12); a CA file is for rediss:// only, and must be readable
        let tls = Config::from_args(&args(&["--redis-url", "rediss://:s3cret@host"])).unwrap();
        assert!(tls.redis_tls().is_some() && tls.collector().tls.is_some());
        let missing = Config::from_args(&args(&[
            "--redis-url",
            "rediss://host",
            "--redis-ca-file",
            "/no/such.pem",
        ]))
        .unwrap_err();
        assert!(
            format!("{missing:#}").contains("REDIS_CA_FILE /no/such.pem"),
            "{missing:#}"
        );
        let not_pem = write("not a certificate\n");
        let bad = Config::from_args(&args(&[
            "--redis-url",
            "rediss://:s3cret@host",
            "--redis-ca-file",
            not_pem.0.to_str().unwrap(),
        ]))
        .unwrap_err();
        assert!(
            format!("{bad:#}").contains("REDIS_CA_FILE") && !format!("{bad:#}").contains("s3cret"),
            "{bad:#}"
        );
        let plain = Config::from_args(&args(&[
            "--redis-url",
            "redis://host",
            "--redis-ca-file",
            not_pem.0.to_str().unwrap(),
        ]))
        .unwrap_err();
        assert!(format!("{plain:#}").contains("not rediss://"), "{plain:#}");
    }

    #[test]
    fn bad_files_and_values_are_clear_errors() {
        let unknown = write("colect_interval = \"1s\"\n");
        let err = Config::from_args(&args(&["--config", unknown.0.to_str().unwrap()])).unwrap_err();
        assert!(format!("{err:#}").contains("colect_interval"), "{err:#}");

        let twice =
            write("[[workers]]\nname='a'\nkind='render'\n[[workers]]\nname='a'\nkind='trader'\n");
        let err = Config::from_args(&args(&["--config", twice.0.to_str().unwrap()])).unwrap_err();
        assert!(err.to_string().contains("registered twice"), "{err}");

        let err = Config::from_args(&args(&["--collect-interval", "0s"])).unwrap_err();
        assert!(err.to_string().contains("collect_interval"), "{err}");

        let err = Config::from_args(&args(&["--redis-url", "http://nope"])).unwrap_err();
        assert!(err.to_string().contains("REDIS_URL"), "{err}");

        let half = Config::from_args(&args(&["--telegram-bot-token", "123:abc"])).unwrap_err();
        assert!(half.to_string().contains("TELEGRAM_CHAT_ID"), "{half}");

        let missing = Config::from_args(&args(&["--config", "/nonexistent/agent-office.toml"]));
        assert!(missing.is_err());
        assert!(Cli::try_parse_from(["agent-office", "--collect-interval", "soon"]).is_err());

        let cluster =
            Config::from_args(&args(&["--redis-cluster-nodes", "a:7000,b:7001"])).unwrap();
        assert_eq!(cluster.cluster.map(|c| c.len()), Some(2));
        let both = Config::from_args(&args(&[
            "--redis-cluster-nodes",
            "a:7000",
            "--redis-sentinels",
            "s1:26379",
            "--redis-sentinel-master",
            "m",
        ]))
        .unwrap_err();
        assert!(both.to_string().contains("REDIS_CLUSTER_NODES"), "{both}");
        let bad = Config::from_args(&args(&["--redis-cluster-nodes", "a"])).unwrap_err();
        assert!(bad.to_string().contains("REDIS_CLUSTER_NODES"), "{bad}");
        let half = Config::from_args(&args(&["--redis-sentinels", "s1:26379"])).unwrap_err();
        assert!(half.to_string().contains("REDIS_SENTINEL_MASTER"), "{half}");
        let bad = Config::from_args(&args(&[
            "--redis-sentinels",
            "s1",
            "--redis-sentinel-master",
            "m",
        ]))
        .unwrap_err();
        assert!(bad.to_string().contains("host:port"), "{bad}");
        let ok = Config::from_args(&args(&[
            "--redis-sentinels",
            "s1:26379,s2:26380",
            "--redis-sentinel-master",
            "m",
        ]))
        .unwrap();
        assert_eq!(ok.sentinels.map(|s| s.0.len()), Some(2));
    }
}
