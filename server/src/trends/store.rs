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

/// How many series one write call carries (three rings each): a fleet's flush is many short
/// calls, each within the Redis deadline, never one that holds Redis for long.
const SERIES_PER_CALL: usize = 1_000;

/// KEYS: rings. ARGV, four per ring: offset, point bytes, padding offset (-1: none), TTL s.
/// Writes each ring's open point in place; a ring whose step the holder writes for the first
/// time gets its padding byte first (made at full length if new) and its TTL. One call writes
/// [`SERIES_PER_CALL`] series with one reply, where a command per ring cost a reply each
/// (at 100,000 workers a flush was 300,000 replies to parse).
static WRITE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
for i = 1, #KEYS do
  local a = (i - 1) * 4
  local pad = tonumber(ARGV[a + 3])
  if pad >= 0 then
    redis.call('SETRANGE', KEYS[i], pad, '\0')
    redis.call('EXPIRE', KEYS[i], ARGV[a + 4])
  end
  redis.call('SETRANGE', KEYS[i], ARGV[a + 1], ARGV[a + 2])
end
return #KEYS
"#,
    )
});

/// One write call: the series it carries and its script invocation.
pub type Write = (Vec<Series>, redis::ScriptInvocation<'static>);

/// The write of `chunk`'s open points (at most [`SERIES_PER_CALL`] series, from
/// [`Folder::take_dirty`]); `written` remembers the steps whose padding and TTL are set.
pub fn write_of(
    folder: &Folder,
    chunk: &[Series],
    written: &mut HashMap<Series, [i64; 3]>,
) -> Write {
    let mut inv = WRITE.prepare_invoke();
    for s in chunk {
        let Some(points) = folder.points(s) else {
            continue;
        };
        let steps = match written.get_mut(s) {
            Some(steps) => steps,
            None => written.entry(s.clone()).or_default(),
        };
        for ((pt, r), step) in points.iter().zip(RESOLUTIONS).zip(steps.iter_mut()) {
            let (pad, ttl) = if *step != pt.t {
                *step = pt.t;
                (ring_len(r) - 1, r.span_s())
            } else {
                (-1, 0)
            };
            inv.key(s.key(r))
                .arg(offset(r, pt.t))
                .arg(&pt.to_bytes(r)[..])
                .arg(pad)
                .arg(ttl);
        }
    }
    (chunk.to_vec(), inv)
}

/// Series per write call.
pub fn chunks(dirty: &[Series]) -> std::slice::Chunks<'_, Series> {
    dirty.chunks(SERIES_PER_CALL)
}

pub async fn send(
    store: &Store,
    inv: redis::ScriptInvocation<'static>,
) -> Result<(), RedisCallError> {
    store
        .run(|mut c| async move { inv.invoke_async::<()>(&mut c).await })
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
