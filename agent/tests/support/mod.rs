//! Agent test harness: the real `pipeline-agent` binary as a child process with a config file
//! written per test, and a TCP proxy between it and Redis that a test can cut (Redis gone for
//! the agent while the server still reaches it).

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use crate::common::free_port;

/// A running `pipeline-agent`; SIGKILLed on drop.
pub struct AgentProcess {
    pub dir: PathBuf,
    pub api: String,
    child: Option<Child>,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl AgentProcess {
    /// Writes `yaml` (which must not set `api`) to a fresh CONFIG_DIR and starts the agent
    /// with `env` on top, the way the README runs it.
    pub fn start(yaml: &str, env: &[(&str, String)]) -> Self {
        let dir =
            std::env::temp_dir().join(format!("pa-test-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let yaml = format!("api: {{ listen: \"127.0.0.1:{port}\" }}\n{yaml}");
        std::fs::write(dir.join("agent.yaml"), yaml).unwrap();
        let mut a = Self {
            api: format!("http://127.0.0.1:{port}"),
            log: dir.join("agent.log"),
            dir,
            child: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        a.spawn();
        a
    }

    /// Starts the agent (again) with the same CONFIG_DIR, config and environment.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pipeline-agent"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CONFIG_DIR", &self.dir)
            .env("RUST_LOG", "info,pipeline_agent=debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit; returns the exit code.
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("the agent did not exit within {limit:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit by itself (a shutdown command).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let mut c = self.child.take().expect("running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s.code();
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> Option<Value> {
        let r = reqwest::get(format!("{}{path}", self.api)).await.ok()?;
        r.json().await.ok()
    }

    pub async fn text(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.api))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Polls `path` until `ready` holds, failing after `limit` with the last answer and log.
    pub async fn wait(&self, path: &str, limit: Duration, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.get(path).await;
            if let Some(v) = &v {
                if ready(v) {
                    return v.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out on {path}: {v:?}\n--- agent log ---\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One pipeline's entry in `/pipelines`.
    pub async fn pipeline(&self, id: &str) -> Value {
        let v = self
            .get(&format!("/pipelines/{id}"))
            .await
            .unwrap_or(Value::Null);
        v
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The environment that points an agent at a test Redis, as the README configures it.
pub fn redis_env(port: u16, agent_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_HOST", "127.0.0.1".into()),
        ("REDIS_PORT", port.to_string()),
        ("AGENT_ID", agent_id.into()),
    ]
}

/// Polls `check` every 50 ms until it returns true, failing after `limit` with `what`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP proxy to Redis that a test can cut: while cut, every connection through it is
/// closed and new ones are dropped at once.
pub struct CutProxy {
    pub port: u16,
    cut: Arc<watch::Sender<bool>>,
}

impl CutProxy {
    pub async fn start(target_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(watch::Sender::new(false));
        let c = cut.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if *c.borrow() {
                    drop(client);
                    continue;
                }
                let mut rx = c.subscribe();
                tokio::spawn(async move {
                    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target_port)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = rx.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { port, cut }
    }

    pub fn cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// LLEN, retried for up to 10 s: the chaos test reads while it restarts Redis and loads it with
/// three agents, and one slow reply (redis-rs gives up after 500 ms) is not a lost job.
pub async fn llen(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match redis::cmd("LLEN").arg(key).query_async(conn).await {
            Ok(n) => return n,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("LLEN {key}: {e}; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("LLEN {key}: {e}"),
        }
    }
}

pub async fn lpush(conn: &mut redis::aio::MultiplexedConnection, key: &str, jobs: &[String]) {
    let mut pipe = redis::pipe();
    for chunk in jobs.chunks(1000) {
        pipe.cmd("LPUSH").arg(key).arg(chunk).ignore();
    }
    pipe.query_async::<()>(conn).await.unwrap();
}
