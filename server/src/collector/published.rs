//! The snapshot as handlers serve it. Its JSON body and that body's gzip are made once, by the
//! first request that wants them, and shared by every later one: a request costs a pointer copy
//! however many dashboards poll, and a cycle nobody asks about costs no serialising at all (at
//! 10,000 workers that is ~2.5 MB of JSON and its gzip, more than the rest of a cycle's CPU).

use std::io::Write;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use flate2::{write::GzEncoder, Compression};
use shared::NodesSnapshot;

#[derive(Debug)]
pub struct Published {
    pub snapshot: Arc<NodesSnapshot>,
    /// `NodesSnapshot::digest`, computed by the first push stream that asks (none open: never).
    digest: OnceLock<u64>,
    body: OnceLock<Body>,
}

#[derive(Debug)]
struct Body {
    json: Bytes,
    gzip: Bytes,
}

impl Published {
    pub fn new(snapshot: impl Into<Arc<NodesSnapshot>>) -> Self {
        Self {
            snapshot: snapshot.into(),
            digest: OnceLock::new(),
            body: OnceLock::new(),
        }
    }

    /// Whether the body was made already (then [`Published::json`] and [`Published::gzip`]
    /// return at once; otherwise the first call serialises and compresses, which blocks).
    pub fn is_encoded(&self) -> bool {
        self.body.get().is_some()
    }

    /// What the dashboard shows, as one number (see [`NodesSnapshot::digest`]).
    pub fn digest(&self) -> u64 {
        *self.digest.get_or_init(|| self.snapshot.digest())
    }

    pub fn json(&self) -> Bytes {
        self.body().json.clone()
    }

    pub fn gzip(&self) -> Bytes {
        self.body().gzip.clone()
    }

    fn body(&self) -> &Body {
        self.body.get_or_init(|| {
            // The snapshot is strings, numbers and bools: serialising it cannot fail.
            let json = serde_json::to_vec(&*self.snapshot).unwrap_or_default();
            let gzip = gzip(&json);
            Body {
                json: Bytes::from(json),
                gzip: Bytes::from(gzip),
            }
        })
    }
}

/// gzip at the fast level: the 10,000-worker body (~2.5 MB) in a few milliseconds.
pub fn gzip(data: &[u8]) -> Vec<u8> {
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
        assert!(
            !p.is_encoded(),
            "nothing is serialised before it is asked for"
        );
        let mut out = String::new();
        flate2::read::GzDecoder::new(&p.gzip()[..])
            .read_to_string(&mut out)
            .unwrap();
        assert!(p.is_encoded());
        assert_eq!(out.as_bytes(), &p.json()[..]);
        assert_eq!(
            serde_json::from_slice::<NodesSnapshot>(&p.json()).unwrap(),
            snap
        );
    }
}
