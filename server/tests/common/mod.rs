//! Test harness: a real `redis-server` on a free port and the real server on `127.0.0.1:0`.

#![allow(dead_code)] // each test binary uses a different part of the harness

#[allow(dead_code)]
pub mod agent_sim;
pub mod cluster;
pub mod sentinel;

use std::collections::VecDeque;
use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use server::config::Config;
use shared::NodesSnapshot;
use tokio::sync::oneshot;

/// Runs `scripts/<script> <cmd> <dir>` with `env`, as the README tells a user to; its standard
/// output (a failure fails the test with the script's standard error).
pub fn run_script(
    script: &str,
    cmd: &str,
    dir: &std::path::Path,
    env: &[(&str, String)],
) -> String {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(root.join("scripts").join(script))
        .arg(cmd)
        .arg(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} {cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the server with `config` as `main` does and expects it to refuse to start: its error,
/// with every cause (`{:#}`).
pub async fn refused_at_start(config: Config) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = leptos::config::LeptosOptions::builder()
        .output_name("agent-office")
        .build();
    let err = server::run(config, options, listener, async {})
        .await
        .expect_err("refused at start");
    format!("{err:#}")
}

/// Ports as a shell list: `"7010 7011 7012"`.
pub fn port_list(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private `redis-server`, killed on drop.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    dir: std::path::PathBuf,
    /// Append-only file on, fsync always: a restart keeps every write (chaos tests).
    persistent: bool,
}

impl Redis {
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// A Redis whose data survives `restart` (AOF, fsync on every write).
    pub async fn start_persistent() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(persistent: bool) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ao-redis-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self {
            port: free_port(),
            child: None,
            dir,
            persistent,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Freezes the server (SIGSTOP): unreachable, but its data survives `resume`.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("redis-server is running").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts (again) on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                if self.persistent { "yes" } else { "no" },
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (the README's test command installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = self.try_conn().await {
                if redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn try_conn(&self) -> redis::RedisResult<MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
    }

    /// A connection, or `None` while the server is down.
    pub async fn conn_checked(&self) -> Option<MultiplexedConnection> {
        self.try_conn().await.ok()
    }

    pub async fn conn(&self) -> MultiplexedConnection {
        self.try_conn().await.unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The real server, stopped on drop.
pub struct Server {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    pub http: reqwest::Client,
}

impl Server {
    /// Fast cadences so tests see changes quickly.
    pub fn fast_config(redis_url: &str) -> Config {
        let mut c = Config::new(redis_url);
        c.collect_interval = Duration::from_millis(100);
        c.discover_interval = Duration::from_millis(200);
        c.redis_timeout = Duration::from_millis(300);
        c
    }

    /// `fast_config` with both control-plane tokens set (`agent_sim`'s test values).
    pub fn with_tokens(redis_url: &str) -> Config {
        let mut c = Self::fast_config(redis_url);
        c.control.operator = Some(server::control::Token::new(agent_sim::OPERATOR_TOKEN));
        c.control.agent = Some(server::control::Token::new(agent_sim::AGENT_TOKEN));
        c
    }

    pub async fn start(config: Config) -> Self {
        Self::start_on(config, 0).await
    }

    /// Starts on a given port (0: any), so a test can stop the server and start it again
    /// where its clients expect it.
    pub async fn start_on(config: Config, port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let options = leptos::config::LeptosOptions::builder()
            .output_name("agent-office")
            .site_root("target/site")
            .site_pkg_dir("pkg")
            .site_addr(addr)
            .build();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            server::run(config, options, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let http = reqwest::Client::builder()
            .no_gzip()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            base: format!("http://{addr}"),
            stop: Some(tx),
            http,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// POSTs `body` as JSON with the operator's token: the status and the JSON answer (null
    /// when it is not JSON).
    pub async fn operator_post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(agent_sim::OPERATOR_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The value of one metric line (`name{labels}`), or 0 when absent.
    pub async fn metric(&self, line: &str) -> f64 {
        let text = self.get("/metrics").await.text().await.unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(line)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    pub async fn nodes(&self) -> NodesSnapshot {
        let r = self.get("/api/agent-office/nodes").await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Polls `/nodes` until `ready` holds, failing after 10 s with the last snapshot.
    pub async fn wait_for(
        &self,
        what: &str,
        ready: impl Fn(&NodesSnapshot) -> bool,
    ) -> NodesSnapshot {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let snap = self.nodes().await;
            if ready(&snap) {
                return snap;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {snap:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A Contract-1 heartbeat written `age_s` seconds ago.
pub fn heartbeat(name: &str, kind: &str, state: &str, age_s: i64) -> String {
    let ts = chrono::Utc::now() - chrono::TimeDelta::seconds(age_s);
    serde_json::json!({
        "name": name, "kind": kind, "state": state,
        "ts": shared::time::format_ts(ts),
        "last_job_at": "2026-11-23T10:00:00Z", "jobs_done": 42, "jobs_failed": 1,
    })
    .to_string()
}

/// Fresh `idle` heartbeats for render workers.
pub async fn idle_render(conn: &mut MultiplexedConnection, names: &[&str]) {
    for name in names {
        set_beat(conn, name, &heartbeat(name, "render", "idle", 0)).await;
    }
}

/// A private Redis holding one idle render worker, and a fast server that has seen it alive.
pub async fn one_idle_worker(name: &str) -> (Redis, MultiplexedConnection, Server) {
    let redis = Redis::start().await;
    let mut conn = redis.conn().await;
    idle_render(&mut conn, &[name]).await;
    let server = Server::start(Server::fast_config(&redis.url())).await;
    server
        .wait_for(&format!("{name} alive"), |s| {
            s.workers.iter().any(|w| w.name == name && w.alive)
        })
        .await;
    (redis, conn, server)
}

pub async fn set_beat(conn: &mut MultiplexedConnection, name: &str, value: &str) {
    redis::cmd("SET")
        .arg(shared::keys::heartbeat(name))
        .arg(value)
        .arg("EX")
        .arg(45)
        .query_async::<()>(conn)
        .await
        .unwrap();
}

/// A local HTTP server standing in for api.telegram.org: answers `sendMessage` from a script
/// (then `200 {"ok":true}`), and records every request.
pub struct FakeTelegram {
    pub base: String,
    pub script: Arc<Mutex<VecDeque<(u16, String)>>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub status: u16,
    pub text: String,
    pub path: String,
}

impl FakeTelegram {
    pub async fn start() -> Self {
        let script: Arc<Mutex<VecDeque<(u16, String)>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (s2, seen2) = (script.clone(), seen.clone());
        let app =
            axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
                let (script, seen) = (s2.clone(), seen2.clone());
                async move {
                    let (status, answer) = script
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or((200, r#"{"ok":true,"result":{}}"#.to_string()));
                    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    seen.lock().unwrap().push(Seen {
                        at: Instant::now(),
                        status,
                        text: json["text"].as_str().unwrap_or_default().to_string(),
                        path: uri.path().to_string(),
                    });
                    (axum::http::StatusCode::from_u16(status).unwrap(), answer)
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, script, seen }
    }

    pub fn channel(&self) -> server::alerts::Channel {
        server::alerts::Channel::Telegram {
            api_base: self.base.clone(),
            token: "123:test-token".into(),
            chat_id: "42".into(),
        }
    }

    /// Texts answered 200, i.e. delivered.
    pub fn delivered(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.status == 200)
            .map(|s| s.text.clone())
            .collect()
    }

    /// Waits until `text` was delivered, then checks it stays delivered exactly once.
    pub async fn expect_once(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.delivered().iter().any(|t| t.contains(text)) {
            assert!(
                Instant::now() < deadline,
                "{text:?} never delivered; got {:?}",
                self.delivered()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let n = self.delivered().iter().filter(|t| t.contains(text)).count();
        assert_eq!(n, 1, "{text:?} delivered {n} times: {:?}", self.delivered());
    }
}

/// A config with alerts to `channel`, evaluated every 200 ms, lease 1 s, in English (the
/// processes `ServerProcess` starts keep the default, Korean).
pub fn alerting_config(redis_url: &str, channel: server::alerts::Channel) -> Config {
    let mut c = Server::fast_config(redis_url);
    c.alerts = server::alerts::AlertConfig {
        channels: vec![channel],
        interval: Duration::from_millis(200),
        dead_letter_threshold: 1,
        lease: Duration::from_secs(1),
        language: shared::Lang::En,
    };
    c
}

/// The `agent-office` binary: cargo names it for the server's own tests; other crates' tests
/// (the agent's) find it beside themselves in the target directory.
pub fn server_binary() -> std::path::PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_agent-office") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("agent-office");
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build -p server)",
        p.display()
    );
    p
}

/// `cmd` (the binary, or a wrapper that execs it) set up the way the README deploys the
/// server: configured only through the environment, API only, on `127.0.0.1:port`.
pub fn server_command(mut cmd: Command, redis_url: &str, port: u16) -> Command {
    cmd.env("REDIS_URL", redis_url)
        .env("RUST_LOG", "warn")
        .env("API_ONLY", "true")
        .env("LEPTOS_OUTPUT_NAME", "agent-office")
        .env("LEPTOS_SITE_ROOT", "target/site")
        .env("LEPTOS_SITE_PKG_DIR", "pkg")
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"));
    cmd
}

/// The real `agent-office` binary in its own process, configured only through env vars;
/// `kill` ends it with SIGKILL (no lease release, no goodbye).
pub struct ServerProcess {
    pub server: Server,
    child: Child,
}

impl ServerProcess {
    /// The binary as deployed, alerting to `tg`, with the alert settings' defaults.
    pub async fn start(redis_url: &str, tg: &FakeTelegram) -> Self {
        Self::start_with(redis_url, tg, &[]).await
    }

    /// Like [`Self::start`], with more environment variables.
    pub async fn start_with(redis_url: &str, tg: &FakeTelegram, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let child = server_command(Command::new(server_binary()), redis_url, port)
            .envs(env.iter().copied())
            .env("COLLECT_INTERVAL", "100ms")
            .env("DISCOVER_INTERVAL", "200ms")
            .env("TELEGRAM_BOT_TOKEN", "123:test-token")
            .env("TELEGRAM_CHAT_ID", "42")
            .env("TELEGRAM_API_BASE", &tg.base)
            .env("ALERT_INTERVAL", "200ms")
            .env("ALERT_LEASE", "1s")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            base: format!("http://127.0.0.1:{port}"),
            stop: None,
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server
            .http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "agent-office did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { server, child }
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
