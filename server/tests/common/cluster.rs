//! A real three-primary Redis Cluster started by `scripts/redis-cluster.sh` on free ports, as
//! the README tells a user to try it.

use std::path::PathBuf;

use redis::aio::MultiplexedConnection;

use super::{free_port, port_list, run_script};

/// Stopped (and its directory removed) on drop.
pub struct ClusterSet {
    dir: PathBuf,
    pub ports: Vec<u16>,
    bus: Vec<u16>,
    replicas: bool,
    /// `CLUSTER_TLS_DIR`: the nodes speak TLS only, with the certificates there.
    tls: Option<PathBuf>,
}

impl ClusterSet {
    /// Three primaries.
    pub fn start() -> Self {
        Self::start_with(false, None)
    }

    /// Three primaries, each with a replica that takes over when it dies.
    pub fn start_with_replicas() -> Self {
        Self::start_with(true, None)
    }

    /// Three primaries speaking TLS only with `dir`'s `redis.crt`, `redis.key` and `ca.crt`.
    pub fn start_tls(dir: &std::path::Path) -> Self {
        Self::start_with(false, Some(dir.to_path_buf()))
    }

    fn start_with(replicas: bool, tls: Option<PathBuf>) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ao-cluster-{}-{}", std::process::id(), free_port()));
        let n = if replicas { 6 } else { 3 };
        let set = Self {
            dir,
            ports: (0..n).map(|_| free_port()).collect(),
            bus: (0..n).map(|_| free_port()).collect(),
            replicas,
            tls,
        };
        let out = set.script("start");
        assert!(out.contains("REDIS_CLUSTER_NODES=127.0.0.1:"), "{out}");
        set
    }

    fn script(&self, cmd: &str) -> String {
        let mut env = vec![
            ("CLUSTER_PORTS", port_list(&self.ports)),
            ("CLUSTER_BUS_PORTS", port_list(&self.bus)),
            ("CLUSTER_REPLICAS", u8::from(self.replicas).to_string()),
        ];
        if let Some(dir) = &self.tls {
            env.push(("CLUSTER_TLS_DIR", dir.display().to_string()));
        }
        run_script("redis-cluster.sh", cmd, &self.dir, &env)
    }

    /// The ports of the primaries now (`scripts/redis-cluster.sh primaries`).
    pub fn primaries(&self) -> Vec<u16> {
        self.script("primaries")
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// SIGKILLs the node on `port` (its pid file is the script's).
    pub fn kill(&self, port: u16) {
        let pid = std::fs::read_to_string(self.dir.join(format!("{port}.pid"))).unwrap();
        let status = std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The nodes' addresses (`REDIS_CLUSTER_NODES`).
    pub fn addrs(&self) -> Vec<(String, u16)> {
        self.ports
            .iter()
            .map(|p| ("127.0.0.1".to_string(), *p))
            .collect()
    }

    /// A plain connection to one node (its keys only: others answer MOVED).
    pub async fn node(&self, port: u16) -> MultiplexedConnection {
        redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for ClusterSet {
    fn drop(&mut self) {
        self.script("stop");
        if std::env::var_os("AO_KEEP_CLUSTER").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
