//! Sentinel (SPEC §12): the primary a set of sentinels names, asked on every new connection
//! (`redis_link::sentinel`, shared with `pipeline-agent`); here, the server's names for its
//! settings.

pub use redis_link::sentinel::{with_addr, Names, Sentinels};

/// `REDIS_SENTINELS` and `REDIS_SENTINEL_MASTER`.
pub type SentinelSettings = (Vec<(String, u16)>, String);

/// What the server's messages call the Sentinel settings.
pub const NAMES: Names = Names {
    sentinels: "REDIS_SENTINELS",
    master: "REDIS_SENTINEL_MASTER",
    password: "REDIS_SENTINEL_PASSWORD",
};

/// `host:port,host:port` (a port is required: a sentinel's is not Redis's 6379).
pub fn parse_sentinels(list: &str) -> anyhow::Result<Vec<(String, u16)>> {
    super::parse_addrs(list, "REDIS_SENTINELS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentinel_list_is_host_port_pairs() {
        assert_eq!(
            parse_sentinels("10.0.0.1:26379, s2:26380").unwrap(),
            vec![("10.0.0.1".into(), 26379), ("s2".into(), 26380)]
        );
        for bad in ["", "s1", "s1:x", ":26379"] {
            assert!(parse_sentinels(bad).is_err(), "{bad:?}");
        }
    }
}
