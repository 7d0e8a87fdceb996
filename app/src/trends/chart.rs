//! Charts as SVG, drawn from a series on the server (readable without JavaScript) and again in
//! the browser on refresh. The geometry is pure: a time axis over the range, bars per step.

use leptos::prelude::*;
use shared::series::{Range, SeriesPoint, Spark, SPARK_STEPS};
use shared::time::{clock, parse_ts};
use shared::Word;

use crate::i18n::use_lang;

/// The drawing area of a chart (viewBox units).
const W: f64 = 600.0;
const H: f64 = 90.0;

/// The time axis of a range ending with the step `now` falls in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    pub start: i64,
    pub step_s: i64,
    pub steps: i64,
}

impl Axis {
    pub fn new(range: Range, now: i64) -> Self {
        let step_s = range.step_s();
        let end = now - now.rem_euclid(step_s) + step_s;
        Self {
            start: end - range.span_s(),
            step_s,
            steps: range.steps(),
        }
    }

    pub fn end(self) -> i64 {
        self.start + self.step_s * self.steps
    }

    /// Where `t` lies across `width` (clamped to the chart).
    pub fn x(self, t: i64, width: f64) -> f64 {
        let f = (t - self.start) as f64 / (self.end() - self.start) as f64;
        f.clamp(0.0, 1.0) * width
    }

    /// Whether the step starting at `t` is on the axis.
    pub fn holds(self, t: i64) -> bool {
        t >= self.start && t < self.end()
    }
}

/// A round top for a scale holding `v` (1, 2 or 5 × 10ⁿ; at least 1).
pub fn nice_max(v: u64) -> u64 {
    let mut unit = 1u64;
    loop {
        for m in [1, 2, 5] {
            if let Some(top) = unit.checked_mul(m).filter(|top| *top >= v) {
                return top;
            }
        }
        match unit.checked_mul(10) {
            Some(u) => unit = u,
            None => return u64::MAX,
        }
    }
}

/// Bars as one path: `(slot, below, value)` of `slots` slots across `width`, scaled to `top`,
/// each standing on `below` (stacked bars; 0 is the base line). Zero values draw nothing.
pub fn bars_path(
    bars: &[(usize, u64, u64)],
    slots: usize,
    width: f64,
    height: f64,
    top: u64,
) -> String {
    let w = width / slots.max(1) as f64;
    let gap = if w > 3.0 { 1.0 } else { 0.0 };
    let mut d = String::new();
    for &(i, below, v) in bars {
        if v == 0 {
            continue;
        }
        let y0 = height - scale(below, top, height);
        let h = scale(below + v, top, height) - scale(below, top, height);
        let x = i as f64 * w;
        d.push_str(&format!(
            "M{x:.1} {y0:.1}v-{h:.1}h{:.1}v{h:.1}z",
            (w - gap).max(0.5)
        ));
    }
    d
}

fn scale(v: u64, top: u64, height: f64) -> f64 {
    if top == 0 {
        0.0
    } else {
        (v as f64 / top as f64).min(1.0) * height
    }
}

/// A line through `(x, value)`, a new stroke after each gap of more than one step.
pub fn line_path(points: &[(f64, u64)], step_w: f64, height: f64, top: u64) -> String {
    let mut d = String::new();
    let mut last_x = f64::NEG_INFINITY;
    for &(x, v) in points {
        let y = height - scale(v, top, height);
        let cmd = if x - last_x > step_w * 1.5 { 'M' } else { 'L' };
        d.push_str(&format!("{cmd}{x:.1} {y:.1}"));
        last_x = x;
    }
    d
}

/// A time on the chart: an alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub t: i64,
    pub text: String,
}

/// The series' points with their times, those on the axis.
fn on_axis(points: &[SeriesPoint], axis: Axis) -> Vec<(i64, &SeriesPoint)> {
    points
        .iter()
        .filter_map(|p| Some((parse_ts(&p.t)?, p)))
        .filter(|(t, _)| axis.holds(*t))
        .collect()
}

/// Three charts of one series over one range: done and failed per step (stacked bars), the
/// queue depth (a line), the fraction alive (a strip) — alerts drawn across all three.
#[component]
pub fn SeriesCharts(
    points: Vec<SeriesPoint>,
    range: Range,
    now: i64,
    #[prop(optional)] marks: Vec<Mark>,
    /// Only done/failed and the depth, smaller (the fleet chart on `/infra`).
    #[prop(optional)]
    compact: bool,
) -> impl IntoView {
    let lang = use_lang();
    let axis = Axis::new(range, now);
    let pts = on_axis(&points, axis);
    if pts.is_empty() {
        return view! { <p class="chart-empty">{lang.t(Word::ChartNoData)}</p> }.into_any();
    }
    let dated = range == Range::Month;
    let slots = axis.steps as usize;
    let slot = |t: i64| ((t - axis.start) / axis.step_s) as usize;
    let step_w = W / slots as f64;
    let top_jobs = nice_max(
        pts.iter()
            .map(|(_, p)| p.done + p.failed)
            .max()
            .unwrap_or(0),
    );
    let done: Vec<_> = pts.iter().map(|(t, p)| (slot(*t), 0, p.done)).collect();
    let failed: Vec<_> = pts
        .iter()
        .map(|(t, p)| (slot(*t), p.done, p.failed))
        .collect();
    let top_depth = nice_max(pts.iter().map(|(_, p)| p.queue_depth).max().unwrap_or(0));
    let depth: Vec<_> = pts
        .iter()
        .map(|(t, p)| (axis.x(*t, W) + step_w / 2.0, p.queue_depth))
        .collect();
    // A transparent bar per step carries its numbers as a tooltip.
    let tips = pts
        .iter()
        .map(|(t, p)| {
            let text = lang.chart_step(&clock(*t, dated), p.done, p.failed, p.queue_depth);
            view! {
                <rect class="tip" x=format!("{:.1}", axis.x(*t, W)) y="0" width=format!("{step_w:.1}") height=H>
                    <title>{text}</title>
                </rect>
            }
        })
        .collect_view();
    let marks_view = |h: f64| {
        marks
            .iter()
            .filter(|m| m.t >= axis.start && m.t < axis.end())
            .map(|m| {
                let x = format!("{:.1}", axis.x(m.t, W));
                view! {
                    <line class="mark" x1=x.clone() x2=x y1="0" y2=h>
                        <title>{format!("{} {}", clock(m.t, true), m.text)}</title>
                    </line>
                }
            })
            .collect_view()
    };
    let axis_labels = move || {
        view! {
            <text class="axis" x="0" y=H + 14.0>{clock(axis.start, dated)}</text>
            <text class="axis" x=W y=H + 14.0 text-anchor="end">{format!("{} UTC", clock(axis.end(), dated))}</text>
        }
    };
    let jobs_chart = view! {
        <figure class="chart chart-jobs" data-range=range.as_str()>
            <figcaption>{lang.t(Word::ChartDoneFailed)} " " <span class="top">" (≤ " {top_jobs} ")"</span></figcaption>
            <svg viewBox=format!("0 -4 {W} {}", H + 22.0) role="img" aria-label=lang.t(Word::ChartDoneFailed)>
                <line class="base" x1="0" x2=W y1=H y2=H/>
                <path class="done" d=bars_path(&done, slots, W, H, top_jobs)/>
                <path class="failed" d=bars_path(&failed, slots, W, H, top_jobs)/>
                {marks_view(H)}
                {tips.clone()}
                {axis_labels()}
            </svg>
        </figure>
    };
    let depth_chart = view! {
        <figure class="chart chart-depth" data-range=range.as_str()>
            <figcaption>{lang.t(Word::ChartQueueDepth)} " " <span class="top">" (≤ " {top_depth} ")"</span></figcaption>
            <svg viewBox=format!("0 -4 {W} {}", H + 22.0) role="img" aria-label=lang.t(Word::ChartQueueDepth)>
                <line class="base" x1="0" x2=W y1=H y2=H/>
                <path class="depth" d=line_path(&depth, step_w, H, top_depth)/>
                {marks_view(H)}
                {tips}
                {axis_labels()}
            </svg>
        </figure>
    };
    let alive_chart = (!compact).then(|| {
        let strip = pts
            .iter()
            .map(|(t, p)| {
                let class = if p.alive >= 0.999 {
                    "alive"
                } else if p.alive <= 0.001 {
                    "dead"
                } else {
                    "partly"
                };
                view! {
                    <rect class=class x=format!("{:.1}", axis.x(*t, W)) y="0" width=format!("{step_w:.1}") height="14">
                        <title>{format!("{} {:.0}%", clock(*t, dated), p.alive * 100.0)}</title>
                    </rect>
                }
            })
            .collect_view();
        view! {
            <figure class="chart chart-alive" data-range=range.as_str()>
                <figcaption>{lang.t(Word::ChartAlive)}</figcaption>
                <svg viewBox=format!("0 -2 {W} 36") role="img" aria-label=lang.t(Word::ChartAlive)>
                    {strip}
                    {marks_view(14.0)}
                    <text class="axis" x="0" y="30">{clock(axis.start, dated)}</text>
                    <text class="axis" x=W y="30" text-anchor="end">{format!("{} UTC", clock(axis.end(), dated))}</text>
                </svg>
            </figure>
        }
    });
    view! { <div class=if compact { "charts compact" } else { "charts" }>{jobs_chart} {depth_chart} {alive_chart}</div> }
        .into_any()
}

/// A card's last hour: done (green) and failed (red, on top) a minute, as two paths.
#[component]
pub fn Sparkline(spark: Option<Spark>) -> impl IntoView {
    let lang = use_lang();
    const SW: f64 = 120.0;
    const SH: f64 = 22.0;
    let spark = spark.unwrap_or_default();
    let value = |v: &[u32], i: usize| u64::from(v.get(i).copied().unwrap_or(0));
    let top = nice_max(
        (0..SPARK_STEPS)
            .map(|i| value(&spark.done, i) + value(&spark.failed, i))
            .max()
            .unwrap_or(0),
    );
    let done: Vec<_> = (0..SPARK_STEPS)
        .map(|i| (i, 0, value(&spark.done, i)))
        .collect();
    let failed: Vec<_> = (0..SPARK_STEPS)
        .map(|i| (i, value(&spark.done, i), value(&spark.failed, i)))
        .collect();
    let total: u64 = done.iter().map(|b| b.2).sum();
    let total_failed: u64 = failed.iter().map(|b| b.2).sum();
    view! {
        <svg class="spark" viewBox=format!("0 0 {SW} {SH}") role="img"
            aria-label=format!("{} — {}", lang.t(Word::SparkTitle), lang.chart_step("1h", total, total_failed, 0))
            data-done=total data-failed=total_failed>
            <title>{lang.t(Word::SparkTitle)}</title>
            <line class="base" x1="0" x2=SW y1=SH y2=SH/>
            <path class="done" d=bars_path(&done, SPARK_STEPS, SW, SH, top)/>
            <path class="failed" d=bars_path(&failed, SPARK_STEPS, SW, SH, top)/>
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_axis_ends_with_the_open_step() {
        let a = Axis::new(Range::Hour, 7_325);
        assert_eq!((a.start, a.end()), (3_780, 7_380));
        assert_eq!(a.x(3_780, 600.0), 0.0);
        assert_eq!(a.x(7_380, 600.0), 600.0);
        assert_eq!(a.x(0, 600.0), 0.0, "clamped");
        assert!(a.holds(7_320) && !a.holds(3_720) && !a.holds(7_380));
    }

    #[test]
    fn scales_round_up() {
        assert_eq!(
            [0, 1, 3, 7, 10, 11, 240, 5_001].map(nice_max),
            [1, 1, 5, 10, 10, 20, 500, 10_000]
        );
        assert_eq!(nice_max(u64::MAX), u64::MAX);
    }

    #[test]
    fn bars_stand_on_the_base_and_zero_draws_nothing() {
        // two slots of 100 wide, height 10, top 10: a 5 at slot 1 on top of 2
        assert_eq!(
            bars_path(&[(0, 0, 0), (1, 2, 5)], 2, 200.0, 10.0, 10),
            "M100.0 8.0v-5.0h99.0v5.0z"
        );
        assert_eq!(bars_path(&[], 60, 120.0, 20.0, 1), "");
    }

    #[test]
    fn a_line_breaks_at_gaps() {
        let d = line_path(&[(5.0, 0), (15.0, 10), (45.0, 5)], 10.0, 10.0, 10);
        assert_eq!(d, "M5.0 10.0L15.0 0.0M45.0 5.0");
    }
}
