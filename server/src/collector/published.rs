//! The snapshot as handlers serve it: parsed, serialised and gzipped once per cycle, so a
//! request costs a pointer copy however many dashboards poll.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use flate2::{write::GzEncoder, Compression};
use shared::NodesSnapshot;

#[derive(Debug)]
pub struct Published {
    pub snapshot: Arc<NodesSnapshot>,
    pub json: Bytes,
    pub gzip: Bytes,
    /// `NodesSnapshot::digest`, computed once per cycle for every open push stream.
    pub digest: u64,
}

impl Published {
    pub fn new(snapshot: NodesSnapshot) -> Self {
        // The snapshot is strings, numbers and bools: serialising it cannot fail.
        let json = serde_json::to_vec(&snapshot).unwrap_or_default();
        let gzip = gzip(&json);
        let digest = snapshot.digest();
        Self {
            digest,
            snapshot: Arc::new(snapshot),
            json: Bytes::from(json),
            gzip: Bytes::from(gzip),
        }
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    // The fast level keeps the 10,000-worker snapshot (~2.5 MB) well inside the cycle budget.
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 6), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_and_json_carry_the_same_snapshot() {
        let snap = NodesSnapshot::empty(chrono::Utc::now());
        let p = Published::new(snap.clone());
        let mut out = String::new();
        flate2::read::GzDecoder::new(&p.gzip[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out.as_bytes(), &p.json[..]);
        assert_eq!(
            serde_json::from_slice::<NodesSnapshot>(&p.json).unwrap(),
            snap
        );
    }
}
