//! The HUD: one HTML label per worker (and a ❌ badge per degraded tube) laid over the canvas at
//! the projection of its 3D anchor, so text stays crisp, selectable and testable. Labels that
//! would overlap are hidden, problems first (see `declutter`).

use wasm_bindgen::JsCast;
use web_sys::{Document, HtmlElement};

use shared::status::LinkStatus;
use shared::{Lang, NodesSnapshot, Word, WorkerView};

use super::declutter::{self, Rect};
use super::label;
use super::layout::{Layout, Tube, P3};

struct Label {
    name: String,
    el: HtmlElement,
    badge: Option<HtmlElement>,
    /// CSS pixel size, measured once after the text changes.
    size: Option<(f32, f32)>,
    priority: u8,
    /// What was last written, so an unchanged frame touches no style.
    shown: Option<(i32, i32, bool)>,
    badge_at: Option<(i32, i32)>,
    probe: Option<(i32, i32)>,
    cut: Option<(i32, i32)>,
}

impl Label {
    /// Moves the label to `at` (`x, y, shown`), hidden when off the canvas; writes styles only
    /// when something changed.
    fn show_at(&mut self, at: Option<(i32, i32, bool)>) {
        if at == self.shown {
            return;
        }
        self.shown = at;
        match at {
            Some((x, y, show)) => {
                set_style(&self.el, "transform", &format!("translate({x}px,{y}px)"));
                set_style(
                    &self.el,
                    "visibility",
                    if show { "visible" } else { "hidden" },
                );
            }
            None => set_style(&self.el, "visibility", "hidden"),
        }
    }

    /// The tube's probe and cut points for the tests, and the dead-letter badge on the tube.
    fn mark_tube(&mut self, tube: &Tube, on_canvas: &impl Fn(P3) -> Option<(f32, f32)>) {
        let px = |p: Option<(f32, f32)>| p.map(|(x, y)| (x as i32, y as i32));
        mark(
            &self.el,
            "data-probe",
            &mut self.probe,
            px(on_canvas(tube.probe())),
        );
        let cut = tube.broken.then(|| on_canvas(tube.cut())).flatten();
        mark(&self.el, "data-cut", &mut self.cut, px(cut));
        let Some(b) = &self.badge else {
            return;
        };
        let at = px(on_canvas(tube.badge()));
        if at == self.badge_at {
            return;
        }
        self.badge_at = at;
        match at {
            Some((x, y)) => {
                set_style(
                    b,
                    "transform",
                    &format!("translate({x}px,{y}px) translate(-50%,-50%)"),
                );
                set_style(b, "visibility", "visible");
            }
            None => set_style(b, "visibility", "hidden"),
        }
    }
}

pub struct Hud {
    root: HtmlElement,
    document: Document,
    /// The page's language, fixed at the first paint.
    lang: Lang,
    labels: Vec<Label>,
    /// The workers the labels describe, to rewrite them when the detail level changes.
    workers: Vec<WorkerView>,
    /// One line per label: rows are too close on screen for two.
    compact: bool,
    bus: Option<(i32, i32)>,
    /// The scene's parts named over them (NAS, Redis bus, Windows node), and where each was
    /// last put.
    parts: Vec<PartLabel>,
}

struct PartLabel {
    el: HtmlElement,
    part: Part,
    at: Option<(i32, i32)>,
}

/// A part of the scene that has a name on screen.
#[derive(Clone, Copy)]
enum Part {
    Nas,
    Bus,
    Windows,
}

impl Part {
    const ALL: [Self; 3] = [Self::Nas, Self::Bus, Self::Windows];

    fn word(self) -> Word {
        match self {
            Self::Nas => Word::PartNas,
            Self::Bus => Word::PartBus,
            Self::Windows => Word::PartWindows,
        }
    }

    /// Just above the part.
    fn anchor(self, layout: &Layout) -> P3 {
        let above =
            |b: &super::layout::Block| [b.centre[0], b.centre[1] + b.half[1] + 0.45, b.centre[2]];
        match self {
            Self::Nas => above(&layout.nas),
            Self::Bus => {
                let (_, top) = layout.bus;
                [top[0], top[1] + 0.45, top[2]]
            }
            Self::Windows => above(&layout.windows),
        }
    }
}

/// Row spacing on screen (CSS px) below which labels go compact, and above which they come back;
/// apart, so a pitch near the limit does not flip them every frame.
const COMPACT_BELOW: f32 = 38.0;
const FULL_ABOVE: f32 = 44.0;

/// Writes a canvas point as a `data-*` attribute ("x,y" in CSS pixels) when it changed. Tests
/// read the canvas's colour at these points.
fn mark(el: &HtmlElement, name: &str, last: &mut Option<(i32, i32)>, now: Option<(i32, i32)>) {
    if now != *last {
        *last = now;
        match now {
            Some((x, y)) => {
                let _ = el.set_attribute(name, &format!("{x},{y}"));
            }
            None => {
                let _ = el.remove_attribute(name);
            }
        }
    }
}

fn set_style(el: &HtmlElement, name: &str, value: &str) {
    // Setting a style property on a live element cannot fail for these names.
    let _ = el.style().set_property(name, value);
}

impl Hud {
    pub fn new(root: HtmlElement, lang: Lang) -> Option<Self> {
        let document = root.owner_document()?;
        let mut parts = Vec::new();
        for part in Part::ALL {
            let el = document
                .create_element("div")
                .ok()?
                .dyn_into::<HtmlElement>()
                .ok()?;
            el.set_class_name("hud-part");
            el.set_text_content(Some(lang.t(part.word())));
            // The page's own element; appending to it cannot fail.
            let _ = root.append_child(&el);
            parts.push(PartLabel { el, part, at: None });
        }
        Some(Self {
            root,
            lang,
            parts,
            document,
            labels: Vec::new(),
            workers: Vec::new(),
            compact: false,
            bus: None,
        })
    }

    fn element(&self, class: &str) -> Option<HtmlElement> {
        let el = self.document.create_element("div").ok()?;
        el.set_class_name(class);
        el.dyn_into::<HtmlElement>().ok()
    }

    /// Rewrites the labels' text for a new snapshot; elements are kept while the workers are
    /// the same ones in the same order, so a poll does not churn the DOM.
    pub fn update(&mut self, snap: &NodesSnapshot, layout: &Layout) {
        let same = self.labels.len() == snap.workers.len()
            && self
                .labels
                .iter()
                .zip(&snap.workers)
                .all(|(l, w)| l.name == w.name);
        if !same {
            for l in self.labels.drain(..) {
                l.el.remove();
                if let Some(b) = l.badge {
                    b.remove();
                }
            }
            for w in &snap.workers {
                let Some(el) = self.element("hud-label") else {
                    continue;
                };
                let _ = el.set_attribute("data-worker", &w.name);
                let _ = self.root.append_child(&el);
                self.labels.push(Label {
                    name: w.name.clone(),
                    el,
                    badge: None,
                    size: None,
                    priority: 0,
                    shown: None,
                    badge_at: None,
                    probe: None,
                    cut: None,
                });
            }
        }
        for (i, w) in snap.workers.iter().enumerate() {
            let wants_badge = layout
                .places
                .get(i)
                .and_then(|p| p.tube.as_ref())
                .is_some_and(|t| t.status == LinkStatus::Degraded);
            let status = w.status();
            let existing = self.labels.get(i).and_then(|l| l.badge.clone());
            let fresh = wants_badge && existing.is_none();
            let badge_el = match (wants_badge, existing) {
                (true, Some(b)) => Some(b),
                (true, None) => self.element("hud-badge").inspect(|b| {
                    let _ = b.set_attribute("data-worker", &w.name);
                    let _ = self.root.append_child(b);
                }),
                (false, Some(b)) => {
                    b.remove();
                    None
                }
                (false, None) => None,
            };
            let Some(l) = self.labels.get_mut(i) else {
                continue;
            };
            l.badge = badge_el;
            if fresh {
                l.badge_at = None;
            }
            if let Some(b) = &l.badge {
                b.set_text_content(Some(&format!("❌ {}", w.dead_letter)));
            }
            l.priority = status.severity();
            let _ = l.el.set_attribute("data-status", status.as_str());
            set_style(&l.el, "--status", status.colour());
        }
        self.workers = snap.workers.clone();
        self.write_texts();
    }

    /// Writes each label's lines at the current detail level, touching only labels that changed.
    fn write_texts(&mut self) {
        for (l, w) in self.labels.iter_mut().zip(&self.workers) {
            let status = w.status();
            let class = format!(
                "hud-label {}{}",
                status.as_str(),
                if self.compact { " compact" } else { "" }
            );
            let lines = label::lines(w, self.compact, self.lang);
            let text: String = lines.iter().flatten().map(|(_, t)| t.as_str()).collect();
            if l.el.class_name() == class && l.el.text_content().unwrap_or_default() == text {
                continue;
            }
            l.el.set_class_name(&class);
            l.el.set_text_content(None);
            for line in lines {
                let Ok(row) = self.document.create_element("div") else {
                    continue;
                };
                row.set_class_name("hud-line");
                for (class, piece) in line {
                    if let Ok(span) = self.document.create_element("span") {
                        span.set_class_name(class);
                        span.set_text_content(Some(&piece));
                        let _ = row.append_child(&span);
                    }
                }
                let _ = l.el.append_child(&row);
            }
            l.size = None;
        }
    }

    /// Moves the labels to where their anchors project. `project` gives CSS pixels from the
    /// canvas's top left, or None behind the camera; `width`, `height` are the canvas's size.
    pub fn place(
        &mut self,
        layout: &Layout,
        width: f32,
        height: f32,
        project: impl Fn(P3) -> Option<(f32, f32)>,
    ) {
        let on_canvas = |p: P3| {
            project(p).filter(|(x, y)| *x >= 0.0 && *y >= 0.0 && *x <= width && *y <= height)
        };
        self.fit_detail(layout, &project);
        let boxes = self.label_boxes(layout, &on_canvas);
        let (_, top) = layout.bus;
        let bus = on_canvas([top[0], top[1] - 0.6, top[2]]).map(|(x, y)| (x as i32, y as i32));
        mark(&self.root, "data-bus", &mut self.bus, bus);
        for p in &mut self.parts {
            let at = on_canvas(p.part.anchor(layout)).map(|(x, y)| (x as i32, y as i32));
            if at != p.at {
                p.at = at;
                match at {
                    Some((x, y)) => {
                        let t = format!("translate({x}px,{y}px) translate(-50%,-100%)");
                        set_style(&p.el, "transform", &t);
                        set_style(&p.el, "visibility", "visible");
                    }
                    None => set_style(&p.el, "visibility", "hidden"),
                }
            }
        }
        let visible = declutter::visible(&boxes);
        for (((l, place), (rect, _)), show) in self
            .labels
            .iter_mut()
            .zip(&layout.places)
            .zip(&boxes)
            .zip(visible)
        {
            l.show_at(rect.map(|r| (r.x.round() as i32, r.y.round() as i32, show)));
            if let Some(tube) = &place.tube {
                l.mark_tube(tube, &on_canvas);
            }
        }
    }

    /// Compact labels when rows come too close on screen, full ones when they part again. Two
    /// neighbours in a column (the layout fills columns first) give the row pitch.
    fn fit_detail(&mut self, layout: &Layout, project: &impl Fn(P3) -> Option<(f32, f32)>) {
        let [a, b, ..] = layout.places.as_slice() else {
            return;
        };
        let (Some(pa), Some(pb)) = (project(a.node), project(b.node)) else {
            return;
        };
        let pitch = (pa.1 - pb.1).hypot(pa.0 - pb.0);
        let compact = if self.compact {
            pitch < FULL_ABOVE
        } else {
            pitch < COMPACT_BELOW
        };
        if compact != self.compact {
            self.compact = compact;
            self.write_texts();
        }
    }

    /// Where each label would sit on the canvas (none: off it), with its priority.
    fn label_boxes(
        &mut self,
        layout: &Layout,
        on_canvas: &impl Fn(P3) -> Option<(f32, f32)>,
    ) -> Vec<(Option<Rect>, u8)> {
        self.labels
            .iter_mut()
            .zip(&layout.places)
            .map(|(l, place)| {
                let size = *l.size.get_or_insert_with(|| {
                    (l.el.offset_width() as f32, l.el.offset_height() as f32)
                });
                let rect = on_canvas(place.label).map(|(x, y)| Rect {
                    x,
                    y: y - size.1 / 2.0,
                    w: size.0,
                    h: size.1,
                });
                (rect, l.priority)
            })
            .collect()
    }

    /// Takes every label out of the page (the view is going away).
    pub fn clear(&mut self) {
        for p in self.parts.drain(..) {
            p.el.remove();
        }
        for l in self.labels.drain(..) {
            l.el.remove();
            if let Some(b) = l.badge {
                b.remove();
            }
        }
    }
}
