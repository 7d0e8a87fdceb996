//! A real Sentinel set (primary, replica, three sentinels, master `ao-test`) started by
//! `scripts/redis-sentinel.sh` on free ports, as the README tells a user to try it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{free_port, port_list, run_script};

/// Stopped (and its directory removed) on drop.
pub struct SentinelSet {
    dir: PathBuf,
    pub primary: u16,
    pub replica: u16,
    pub sentinels: Vec<u16>,
    /// The sentinels' own password (`SENTINEL_PASSWORD`), if any.
    password: Option<String>,
}

impl SentinelSet {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Sentinels that ask for `password` (their `requirepass`).
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password.to_string()))
    }

    fn start_with(password: Option<String>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ao-sentinel-{}-{}",
            std::process::id(),
            free_port()
        ));
        let set = Self {
            dir,
            primary: free_port(),
            replica: free_port(),
            sentinels: vec![free_port(), free_port(), free_port()],
            password,
        };
        let out = set.script("start");
        assert!(out.contains("REDIS_SENTINELS=127.0.0.1:"), "{out}");
        set
    }

    fn script(&self, cmd: &str) -> String {
        let env = [
            ("PRIMARY_PORT", self.primary.to_string()),
            ("REPLICA_PORT", self.replica.to_string()),
            ("SENTINEL_PORTS", port_list(&self.sentinels)),
            ("REDIS_SENTINEL_MASTER", "ao-test".to_string()),
            (
                "SENTINEL_PASSWORD",
                self.password.clone().unwrap_or_default(),
            ),
        ];
        run_script("redis-sentinel.sh", cmd, &self.dir, &env)
    }

    /// The sentinels' addresses.
    pub fn addrs(&self) -> Vec<(String, u16)> {
        self.sentinels
            .iter()
            .map(|p| ("127.0.0.1".to_string(), *p))
            .collect()
    }

    /// `REDIS_SENTINELS` for them.
    pub fn env(&self) -> String {
        self.addrs()
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The port the sentinels name as primary now (asked through the script).
    pub fn primary_now(&self) -> Option<u16> {
        self.script("primary")
            .trim()
            .rsplit(':')
            .next()?
            .parse()
            .ok()
    }

    pub fn kill_primary(&self) {
        let pid = std::fs::read_to_string(self.dir.join("primary.pid")).unwrap();
        let ok = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        self.script("stop");
        if std::env::var_os("AO_KEEP_SENTINEL").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The port the sentinels `sentinels` name primary of `ao-test` now.
pub async fn primary_of(sentinels: &[u16]) -> Option<u16> {
    for p in sentinels {
        let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{p}")) else {
            continue;
        };
        let Ok(Ok(mut c)) = tokio::time::timeout(
            Duration::from_millis(300),
            client.get_multiplexed_async_connection(),
        )
        .await
        else {
            continue;
        };
        let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg("ao-test")
            .query_async(&mut c)
            .await
            .ok()
            .flatten();
        if let Some((_, port)) = addr {
            return Some(port);
        }
    }
    None
}
