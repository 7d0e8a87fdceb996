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
}

impl ClusterSet {
    pub fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("ao-cluster-{}-{}", std::process::id(), free_port()));
        let set = Self {
            dir,
            ports: vec![free_port(), free_port(), free_port()],
            bus: vec![free_port(), free_port(), free_port()],
        };
        let out = set.script("start");
        assert!(out.contains("REDIS_CLUSTER_NODES=127.0.0.1:"), "{out}");
        set
    }

    fn script(&self, cmd: &str) -> String {
        let env = [
            ("CLUSTER_PORTS", port_list(&self.ports)),
            ("CLUSTER_BUS_PORTS", port_list(&self.bus)),
        ];
        run_script("redis-cluster.sh", cmd, &self.dir, &env)
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
