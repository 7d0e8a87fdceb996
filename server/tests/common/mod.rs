//! Test harness: a real `redis-server` on a free port and the real server on `127.0.0.1:0`.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use server::config::Config;
use shared::NodesSnapshot;
use tokio::sync::oneshot;

fn free_port() -> u16 {
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
}

impl Redis {
    pub async fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("ao-redis-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self {
            port: free_port(),
            child: None,
            dir,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
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
                "no",
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

    pub async fn start(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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
        "ts": shared::nodes::format_ts(ts),
        "last_job_at": "2026-11-23T10:00:00Z", "jobs_done": 42, "jobs_failed": 1,
    })
    .to_string()
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
