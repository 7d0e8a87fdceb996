//! The series in Redis: one string per series and range, a ring of fixed-size points
//! ([`POINT_BYTES`] each, slot `i` at byte `i × POINT_BYTES`) plus one padding byte, so the
//! string is made at its full length the first time (an exact allocation, never grown) and a
//! point is written in place with `SETRANGE`. All keys share the `{trends}` slot.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::fold::{slot_of, step_of, Point, Range, POINT_BYTES, RESOLUTIONS};
use super::folder::Folder;
use super::Series;
use crate::control::Store;
use crate::redis_conn::RedisCallError;

/// The lease: who writes the series.
pub const LEASE: &str = "agent-office:{trends}:lease";
const LEASE_MS: u64 = 6_000;

impl Series {
    /// The ring of this series for `r` (`agent-office:{trends}:ring:1h:w:image-render`).
    pub fn key(&self, r: Range) -> String {
        let r = r.as_str();
        match self {
            Self::Worker(n) => format!("agent-office:{{trends}}:ring:{r}:w:{n}"),
            Self::Group(g) => format!("agent-office:{{trends}}:ring:{r}:g:{g}"),
            Self::Fleet => format!("agent-office:{{trends}}:ring:{r}:fleet"),
        }
    }
}

/// Where the point of `step` starts in `r`'s ring.
fn offset(r: Range, step: i64) -> i64 {
    slot_of(r, step) * POINT_BYTES as i64
}

/// The ring's length: its points and the padding byte.
fn ring_len(r: Range) -> i64 {
    r.steps() * POINT_BYTES as i64 + 1
}

/// The points of a ring that lie in the range ending at `now`, oldest first.
pub fn points_of(ring: &[u8], r: Range, now: i64) -> Vec<Point> {
    let from = step_of(r, now) - r.span_s();
    let mut points: Vec<Point> = ring
        .chunks_exact(POINT_BYTES)
        .filter_map(|b| Point::from_bytes(b, r))
        .filter(|p| p.t > from && p.t <= now)
        .collect();
    points.sort_by_key(|p| p.t);
    points
}

/// KEYS: the lease. ARGV: me, ms. Takes the lease when free, renews it when ours.
static TAKE_LEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"#,
    )
});

pub async fn lease(store: &Store, me: &str) -> Result<bool, RedisCallError> {
    let me = me.to_string();
    let got: u32 = store
        .run(|mut c| async move {
            TAKE_LEASE
                .key(LEASE)
                .arg(me)
                .arg(LEASE_MS)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(got == 1)
}

/// How many series one write call carries (each up to 9 commands): a fleet's flush is many
/// short calls, each within the Redis deadline, never one that holds Redis for long.
const SERIES_PER_CALL: usize = 1_000;

/// The writes of every changed open point, as pipelines of [`SERIES_PER_CALL`] series each,
/// with the series they write. A ring whose step this holder has not written yet gets its
/// padding byte (made at full length if new) and its TTL (the range); `written` remembers
/// those steps.
pub fn flush_pipes(
    folder: &mut Folder,
    written: &mut HashMap<Series, [i64; 3]>,
) -> Vec<(Vec<Series>, redis::Pipeline)> {
    let dirty = folder.take_dirty();
    let mut calls = Vec::new();
    for chunk in dirty.chunks(SERIES_PER_CALL) {
        let mut p = redis::pipe();
        for s in chunk {
            let Some(points) = folder.points(s) else {
                continue;
            };
            let steps = written.entry(s.clone()).or_default();
            for ((pt, r), step) in points.iter().zip(RESOLUTIONS).zip(steps.iter_mut()) {
                let key = s.key(r);
                if *step != pt.t {
                    p.cmd("SETRANGE")
                        .arg(&key)
                        .arg(ring_len(r) - 1)
                        .arg(&[0u8][..])
                        .ignore()
                        .cmd("EXPIRE")
                        .arg(&key)
                        .arg(r.span_s())
                        .ignore();
                    *step = pt.t;
                }
                p.cmd("SETRANGE")
                    .arg(&key)
                    .arg(offset(r, pt.t))
                    .arg(&pt.to_bytes(r)[..])
                    .ignore();
            }
        }
        calls.push((chunk.to_vec(), p));
    }
    calls
}

pub async fn send(store: &Store, p: redis::Pipeline) -> Result<(), RedisCallError> {
    store
        .run(|mut c| async move { p.query_async::<()>(&mut c).await })
        .await
}

/// On taking the lease over: the open steps of `series` as Redis holds them, to seed from
/// (calls of [`SERIES_PER_CALL`] series).
pub async fn read_open(
    store: &Store,
    series: &[Series],
    t: i64,
) -> Result<Vec<Vec<u8>>, RedisCallError> {
    let mut out = Vec::with_capacity(series.len() * RESOLUTIONS.len());
    for chunk in series.chunks(SERIES_PER_CALL) {
        let mut p = redis::pipe();
        for s in chunk {
            for r in RESOLUTIONS {
                let at = offset(r, step_of(r, t));
                p.cmd("GETRANGE")
                    .arg(s.key(r))
                    .arg(at)
                    .arg(at + POINT_BYTES as i64 - 1);
            }
        }
        let got: Vec<Vec<u8>> = store
            .run(|mut c| async move { p.query_async(&mut c).await })
            .await?;
        out.extend(got);
    }
    Ok(out)
}

/// The open steps read by [`read_open`] replace the folder's (what the previous holder wrote
/// is kept, and added to from here).
pub fn seed(folder: &mut Folder, series: &[Series], stored: &[Vec<u8>], t: i64) {
    for (i, s) in series.iter().enumerate() {
        let mut points = [Point::default(); 3];
        for (j, r) in RESOLUTIONS.into_iter().enumerate() {
            let step = step_of(r, t);
            points[j] = stored
                .get(i * RESOLUTIONS.len() + j)
                .and_then(|b| Point::from_bytes(b, r))
                .filter(|p| p.t == step)
                .unwrap_or(Point {
                    t: step,
                    ..Point::default()
                });
        }
        folder.set_points(s, points);
    }
    folder.clear_dirty();
}

/// Every worker's last hour as Redis holds it, for the sparklines of a replica that starts
/// (pipelines of `BATCH` rings).
pub async fn read_hours(
    store: &Store,
    names: &[String],
    t: i64,
) -> Result<Vec<(String, Vec<Point>)>, RedisCallError> {
    const BATCH: usize = 1_000;
    let mut out = Vec::with_capacity(names.len());
    for chunk in names.chunks(BATCH) {
        let mut p = redis::pipe();
        for n in chunk {
            p.cmd("GET").arg(Series::Worker(n.clone()).key(Range::Hour));
        }
        let rings: Vec<Option<Vec<u8>>> = store
            .run(|mut c| async move { p.query_async(&mut c).await })
            .await?;
        for (name, ring) in chunk.iter().zip(rings) {
            out.push((
                name.clone(),
                points_of(ring.as_deref().unwrap_or_default(), Range::Hour, t),
            ));
        }
    }
    Ok(out)
}

/// A series' points in `r` as Redis holds them.
pub async fn read(
    store: &Store,
    s: &Series,
    r: Range,
    now: i64,
) -> Result<Vec<Point>, RedisCallError> {
    let key = s.key(r);
    let ring: Option<Vec<u8>> = store
        .run(|mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
        .await?;
    Ok(points_of(ring.as_deref().unwrap_or_default(), r, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_gives_the_points_of_its_range_oldest_first() {
        let r = Range::Hour;
        let mut ring = vec![0u8; ring_len(r) as usize];
        let now = 7_200 + 125;
        for (t, done) in [(3_720, 9), (1_800, 1), (7_320, 3), (7_260, 2)] {
            let p = Point {
                t,
                done,
                samples: 1,
                ..Point::default()
            };
            let at = offset(r, t) as usize;
            ring[at..at + POINT_BYTES].copy_from_slice(&p.to_bytes(r));
        }
        let got: Vec<(i64, u64)> = points_of(&ring, r, now)
            .iter()
            .map(|p| (p.t, p.done))
            .collect();
        // 3_720 was overwritten by 7_320 (same slot); 1_800 is older than the hour
        assert_eq!(got, vec![(7_260, 2), (7_320, 3)]);
        assert!(points_of(b"garbage", r, now).is_empty());
    }
}
