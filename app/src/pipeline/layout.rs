//! Where everything in the 3D pipeline sits, computed from a snapshot. Pure, so it is tested
//! natively: the scene only turns these places into meshes, the HUD into label positions.
//!
//! World units, x to the right, y up, z toward the default camera. The NAS is on the left, the
//! Redis bus is a vertical column at x = 0, the Windows node on the right holds one sub-node per
//! worker in columns of at most [`ROWS_MAX`] rows, filled top to bottom.

use std::collections::HashMap;

use shared::nodes::{Link, LinkKind};
use shared::status::LinkStatus;
use shared::{NodesSnapshot, WorkerState};

/// A point in world space.
pub type P3 = [f32; 3];

/// Workers per column before another column starts.
pub const ROWS_MAX: usize = 24;
const ROW: f32 = 1.5;
const COL: f32 = 3.4;
const WINDOWS_X: f32 = 6.0;
const NAS_X: f32 = -7.0;
/// Room kept right of the last column for the HUD labels.
const LABEL_ROOM: f32 = 4.0;

/// An axis-aligned box: centre and half extents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Block {
    pub centre: P3,
    pub half: P3,
}

/// How particles move along a tube.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Flow {
    /// World units per second; 0 = still.
    pub speed: f32,
    /// Particles run both ways (the trader's HTTP pull).
    pub two_way: bool,
}

impl Flow {
    /// SPEC §5, from the link: flowing when healthy (faster while its worker is busy), a crawl
    /// when paused, still when down; both ways on an HTTP pull.
    pub fn of(link: &Link, busy: bool) -> Self {
        let speed = match link.status {
            LinkStatus::Down | LinkStatus::Unknown => 0.0,
            LinkStatus::Paused => 0.15,
            LinkStatus::Healthy | LinkStatus::Degraded if busy => 3.5,
            LinkStatus::Healthy | LinkStatus::Degraded => 1.2,
        };
        Self {
            speed,
            two_way: link.kind == LinkKind::HttpPull,
        }
    }

    const STILL: Self = Self {
        speed: 0.0,
        two_way: false,
    };
}

/// A tube as a polyline from its source to the worker: one per link of the snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Tube {
    pub points: Vec<P3>,
    /// The link's status, as `/nodes` gives it: the tube's colour.
    pub status: LinkStatus,
    /// Cut in the middle of its last segment: the link is down.
    pub broken: bool,
}

/// How long the gap of a broken tube is, and how far before the worker it ends (world units).
/// Near the worker, so with many columns the break is not among other workers' nodes.
const GAP: f32 = 1.1;
const GAP_END_BEFORE_NODE: f32 = 0.9;

impl Tube {
    pub fn length(&self) -> f32 {
        self.points.windows(2).map(|w| dist(w[0], w[1])).sum()
    }

    /// The point `s` world units along the tube (clamped to its ends).
    pub fn point_at(&self, s: f32) -> P3 {
        let mut left = s.max(0.0);
        for w in self.points.windows(2) {
            let len = dist(w[0], w[1]);
            if left <= len && len > 0.0 {
                return lerp(w[0], w[1], left / len);
            }
            left -= len;
        }
        self.points.last().copied().unwrap_or([0.0; 3])
    }

    /// The segments to draw: all of them, with a gap in the last one when broken.
    pub fn segments(&self) -> Vec<(P3, P3)> {
        let mut out: Vec<(P3, P3)> = self.points.windows(2).map(|w| (w[0], w[1])).collect();
        if self.broken {
            if let Some((a, b)) = out.pop() {
                let (start, end) = self.gap();
                out.push((a, lerp(a, b, start)));
                out.push((lerp(a, b, end), b));
            }
        }
        out
    }

    /// The gap as fractions of the last segment.
    fn gap(&self) -> (f32, f32) {
        let (a, b) = self.last_segment();
        let len = dist(a, b).max(1e-3);
        let end = (1.0 - GAP_END_BEFORE_NODE / len).max(0.6);
        let start = (end - GAP / len).max(0.4);
        (start, end)
    }

    /// `s` world units before the end of the last segment, but not before its middle.
    fn before_end(&self, s: f32) -> P3 {
        let (a, b) = self.last_segment();
        let len = dist(a, b).max(1e-3);
        lerp(a, b, (1.0 - s / len).max(0.5))
    }

    fn last_segment(&self) -> (P3, P3) {
        match self.points.as_slice() {
            [.., a, b] => (*a, *b),
            [a] => (*a, *a),
            [] => ([0.0; 3], [0.0; 3]),
        }
    }

    /// Where a break shows its sparks.
    pub fn cut(&self) -> P3 {
        let (a, b) = self.last_segment();
        let (start, end) = self.gap();
        lerp(a, b, (start + end) / 2.0)
    }

    /// A point that is always on the drawn tube (never in the gap): tests read the colour here.
    pub fn probe(&self) -> P3 {
        let (a, b) = self.last_segment();
        lerp(a, b, 0.25)
    }

    /// Where the dead-letter badge sits: on the tube, just before its worker.
    pub fn badge(&self) -> P3 {
        self.before_end(1.4)
    }
}

/// One worker in the picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    pub name: String,
    /// The worker's status (its card's): the sub-node's colour.
    pub status: LinkStatus,
    /// Centre of the worker's sub-node on the Windows node.
    pub node: P3,
    /// Where its HUD label starts (right of the sub-node).
    pub label: P3,
    /// None for workers without a link (the watcher moves no jobs).
    pub tube: Option<Tube>,
    pub flow: Flow,
}

/// The whole picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub nas: Block,
    pub nas_stock: Block,
    pub windows: Block,
    /// The Redis bus: bottom and top centre of its column.
    pub bus: (P3, P3),
    pub places: Vec<Place>,
    /// Everything worth framing, labels included.
    pub min: P3,
    pub max: P3,
}

/// The size of a worker's sub-node (half extent).
pub const NODE_HALF: f32 = 0.32;
/// Tube and bus radii.
pub const TUBE_RADIUS: f32 = 0.07;
pub const BUS_RADIUS: f32 = 0.35;

impl Layout {
    pub fn of(snap: &NodesSnapshot) -> Self {
        let n = snap.workers.len();
        let cols = n.div_ceil(ROWS_MAX).max(1);
        let rows = n.div_ceil(cols).max(1);
        let top = (rows as f32 - 1.0) * ROW / 2.0;
        let bottom = -top;

        let nas_half_y = (top + 0.8).clamp(1.6, 4.0);
        let nas = Block {
            centre: [NAS_X, 0.0, 0.0],
            half: [1.2, nas_half_y, 1.2],
        };
        let nas_stock = Block {
            centre: [NAS_X, nas_half_y + 0.9, 0.0],
            half: [0.8, 0.55, 0.8],
        };
        let last_col_x = WINDOWS_X + (cols as f32 - 1.0) * COL;
        let windows = Block {
            centre: [(WINDOWS_X + last_col_x) / 2.0 + 0.9, 0.0, -0.9],
            half: [(last_col_x - WINDOWS_X) / 2.0 + 1.6, top + 1.0, 0.3],
        };
        let bus = ([0.0, bottom - 1.5, 0.0], [0.0, top + 1.5, 0.0]);
        let nas_port_x = NAS_X + nas.half[0];
        let stock_port = [
            NAS_X + nas_stock.half[0],
            nas_stock.centre[1],
            nas_stock.centre[2],
        ];

        // A link names its worker at its `to` end (a queue feeds it) or its `from` end (it pulls).
        let links: HashMap<&str, &Link> = snap
            .links
            .iter()
            .map(|l| match l.kind {
                LinkKind::RedisQueue => (l.to.as_str(), l),
                LinkKind::HttpPull => (l.from.as_str(), l),
            })
            .collect();
        let places = snap
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let (col, row) = (i / rows, i % rows);
                let y = top - row as f32 * ROW;
                let node = [WINDOWS_X + col as f32 * COL, y, 0.0];
                let entry = [node[0] - NODE_HALF, y, 0.0];
                // Each column taps the bus at its own height, so no two tubes lie on one line.
                let tap_y = y + (col as f32 - (cols as f32 - 1.0) / 2.0) * ROW / cols as f32 * 0.8;
                let link = links.get(w.name.as_str()).copied();
                let tube = link.map(|link| Tube {
                    points: match link.kind {
                        LinkKind::RedisQueue => {
                            vec![[nas_port_x, y * 0.6, 0.0], [0.0, tap_y, 0.0], entry]
                        }
                        // The trader pulls market data over HTTP: around the bus, in front of it.
                        LinkKind::HttpPull => vec![stock_port, [0.0, tap_y, 1.6], entry],
                    },
                    status: link.status,
                    broken: link.status == LinkStatus::Down,
                });
                Place {
                    name: w.name.clone(),
                    status: w.status(),
                    node,
                    label: [node[0] + NODE_HALF + 0.15, y, 0.0],
                    tube,
                    flow: link.map_or(Flow::STILL, |l| {
                        Flow::of(l, w.state == Some(WorkerState::Busy))
                    }),
                }
            })
            .collect();

        Self {
            nas,
            nas_stock,
            windows,
            bus,
            places,
            min: [NAS_X - nas.half[0], bus.0[1], -1.2],
            max: [
                last_col_x + LABEL_ROOM,
                bus.1[1].max(nas_stock.centre[1] + 0.6),
                1.6,
            ],
        }
    }
}

/// Where the particles of one tube are at time `t` (seconds), one every `spacing` world units.
pub fn particles(tube: &Tube, flow: Flow, t: f32, spacing: f32, out: &mut Vec<P3>) {
    // A cut tube carries nothing; a still one keeps its particles where they are.
    if tube.broken {
        return;
    }
    let len = tube.length();
    if len <= 0.0 || spacing <= 0.0 {
        return;
    }
    let count = (len / spacing).floor().max(1.0) as usize;
    let step = len / count as f32;
    let shift = (t * flow.speed).rem_euclid(step);
    for k in 0..count {
        let s = k as f32 * step + shift;
        let s = if flow.two_way && k % 2 == 1 {
            len - s
        } else {
            s
        };
        out.push(tube.point_at(s));
    }
}

pub fn dist(a: P3, b: P3) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

pub fn lerp(a: P3, b: P3, f: f32) -> P3 {
    [
        a[0] + (b[0] - a[0]) * f,
        a[1] + (b[1] - a[1]) * f,
        a[2] + (b[2] - a[2]) * f,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::nodes::derive_links;
    use shared::{WorkerKind, WorkerView};

    fn worker(name: &str, kind: WorkerKind, alive: bool, state: &str, dead: u64) -> WorkerView {
        WorkerView {
            alive,
            state: Some(state.into()),
            dead_letter: dead,
            ..WorkerView::down(name, kind)
        }
    }

    fn snap(workers: Vec<WorkerView>) -> NodesSnapshot {
        NodesSnapshot {
            links: derive_links(&workers),
            workers,
            ..NodesSnapshot::empty(chrono::DateTime::UNIX_EPOCH)
        }
    }

    fn fleet(n: usize) -> NodesSnapshot {
        snap(
            (0..n)
                .map(|i| worker(&format!("w{i}"), WorkerKind::Render, true, "idle", 0))
                .collect(),
        )
    }

    #[test]
    fn render_tubes_run_nas_then_bus_then_worker_and_the_trader_skips_the_bus() {
        let l = Layout::of(&snap(vec![
            worker("video-render", WorkerKind::Render, true, "idle", 0),
            worker("ai_trade", WorkerKind::Trader, true, "trading", 0),
            worker(
                "market-watcher",
                WorkerKind::Watcher,
                true,
                "market_open",
                0,
            ),
        ]));
        let render = l.places[0].tube.as_ref().unwrap();
        assert!(render.points[0][0] < -5.0, "starts at the NAS");
        assert_eq!(render.points[1][0], 0.0, "touches the bus");
        assert!(render.points[2][0] > 5.0, "ends at the Windows node");

        let trade = l.places[1].tube.as_ref().unwrap();
        assert_eq!(trade.points[0][1], l.nas_stock.centre[1], "from NAS-stock");
        assert!(
            trade.points[1][2] > BUS_RADIUS * 2.0,
            "passes in front of the bus"
        );
        assert!(l.places[1].flow.two_way);
        assert!(l.places[2].tube.is_none(), "the watcher moves no jobs");
    }

    #[test]
    fn flow_speed_follows_the_status() {
        let flow = |alive, state| {
            let l = Layout::of(&snap(vec![worker(
                "a",
                WorkerKind::Render,
                alive,
                state,
                0,
            )]));
            l.places[0].flow
        };
        let (busy, idle) = (flow(true, "busy"), flow(true, "idle"));
        let (paused, down) = (flow(true, "paused"), flow(false, "down"));
        assert!(busy.speed > idle.speed && idle.speed > paused.speed && paused.speed > 0.0);
        assert_eq!(down.speed, 0.0);
    }

    #[test]
    fn tubes_are_the_snapshots_links() {
        // A trader with dead letters: its card is degraded, but its link (and so its tube) is
        // healthy by `alive` alone (SPEC §4), exactly as `/nodes` says.
        let trader = worker("ai_trade", WorkerKind::Trader, true, "market_open", 2);
        let render = worker("image-render", WorkerKind::Render, true, "idle", 1);
        let mut s = snap(vec![trader, render]);
        let l = Layout::of(&s);
        assert_eq!(l.places[0].status, LinkStatus::Degraded);
        assert_eq!(
            l.places[0].tube.as_ref().unwrap().status,
            LinkStatus::Healthy
        );
        assert_eq!(
            l.places[1].tube.as_ref().unwrap().status,
            LinkStatus::Degraded
        );
        // Whatever the snapshot's links say is what is drawn; no link, no tube.
        s.links[1].status = LinkStatus::Down;
        s.links.remove(0);
        let l = Layout::of(&s);
        assert!(l.places[0].tube.is_none());
        assert!(l.places[1].tube.as_ref().unwrap().broken);
    }

    #[test]
    fn a_down_worker_has_a_gap_and_no_particles() {
        let l = Layout::of(&snap(vec![worker(
            "r",
            WorkerKind::Render,
            false,
            "down",
            0,
        )]));
        let tube = l.places[0].tube.as_ref().unwrap();
        assert!(tube.broken);
        let segs = tube.segments();
        assert_eq!(segs.len(), 3);
        let gap = dist(segs[1].1, segs[2].0);
        assert!(gap > 0.5, "gap {gap}");
        let cut = tube.cut();
        assert!(dist(cut, segs[1].1) < gap && dist(cut, segs[2].0) < gap);
        // The probe is on the drawn part, before the gap; the gap is near the worker.
        assert!(tube.probe()[0] < segs[1].1[0]);
        assert!(dist(segs[2].1, segs[2].0) < 1.0);
        let mut out = Vec::new();
        particles(tube, l.places[0].flow, 3.0, 1.0, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn particles_move_toward_the_worker_and_stay_on_the_tube() {
        let l = Layout::of(&fleet(1));
        let tube = l.places[0].tube.as_ref().unwrap();
        let flow = l.places[0].flow;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        particles(tube, flow, 0.0, 1.5, &mut a);
        particles(tube, flow, 0.1, 1.5, &mut b);
        assert_eq!(a.len(), b.len());
        assert!(a.len() >= 5);
        // The first particle moved forward along the first segment (x grows toward the bus).
        assert!(b[0][0] > a[0][0]);
        let end = tube.points.last().unwrap();
        for p in &b {
            assert!(p[0] >= tube.points[0][0] - 1e-3 && p[0] <= end[0] + 1e-3);
        }
    }

    #[test]
    fn up_to_24_workers_make_one_column_and_200_stay_inside_a_few_columns() {
        let one = Layout::of(&fleet(24));
        assert!(one.places.iter().all(|p| p.node[0] == WINDOWS_X));

        let many = Layout::of(&fleet(200));
        let cols: std::collections::BTreeSet<i32> =
            many.places.iter().map(|p| p.node[0] as i32).collect();
        assert_eq!(cols.len(), 9);
        // No two sub-nodes share a spot, and every one is inside the framed box.
        for (i, a) in many.places.iter().enumerate() {
            for b in &many.places[i + 1..] {
                assert!(dist(a.node, b.node) >= ROW - 1e-3);
            }
            for k in 0..3 {
                assert!(a.node[k] >= many.min[k] && a.node[k] <= many.max[k]);
            }
        }
        // Every column taps the bus at its own height.
        let taps: std::collections::BTreeSet<i32> = many
            .places
            .iter()
            .map(|p| (p.tube.as_ref().unwrap().points[1][1] * 100.0) as i32)
            .collect();
        assert_eq!(taps.len(), 200);
    }

    #[test]
    fn an_empty_fleet_still_has_a_picture() {
        let l = Layout::of(&fleet(0));
        assert!(l.places.is_empty());
        assert!(l.bus.1[1] > l.bus.0[1]);
    }
}
