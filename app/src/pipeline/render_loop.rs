//! The browser side of the pipeline view: a WebGL2 context on our own canvas, mouse input, and
//! the frame loop. Each frame takes the newest snapshot from the channel, follows the canvas's
//! size and pixel ratio, draws, and places the HUD. The loop ends when `stop` is set.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{
    AddEventListenerOptions, HtmlCanvasElement, HtmlElement, PointerEvent, WebGl2RenderingContext,
    WebGlContextAttributes, WheelEvent,
};

use shared::NodesSnapshot;

use super::hud::Hud;
use super::latest::Receiver;
use super::orbit::Orbit;
use super::resolution::Resolution;
use super::scene::Scene;
use super::stats::FrameStats;
use crate::error::SceneError;

/// Canvas sides are capped so a huge screen at a high pixel ratio cannot ask for a giant buffer.
const MAX_SIDE: f64 = 4096.0;
/// How often (frames) the timings are written onto the canvas.
const PUBLISH_EVERY: u64 = 30;

/// Mouse input gathered between frames.
#[derive(Default)]
struct Input {
    drag: Option<(i32, i32)>,
    dx: f32,
    dy: f32,
    wheel: f32,
    reset: bool,
}

/// The frame callback, which re-schedules itself until it drops itself on stop.
type FrameCallback = Rc<RefCell<Option<Closure<dyn FnMut(f64)>>>>;
type Listener = (&'static str, Closure<dyn FnMut(web_sys::Event)>);

/// Creates the WebGL2 context and starts the loop. An error (no WebGL2, a failed context) is
/// for the caller to fall back to the cards.
pub fn start(
    canvas: HtmlCanvasElement,
    hud_root: HtmlElement,
    rx: Receiver<NodesSnapshot>,
    stop: Arc<AtomicBool>,
    lang: shared::Lang,
) -> Result<(), SceneError> {
    let window = web_sys::window().ok_or(SceneError::NoWindow)?;
    let attrs = WebGlContextAttributes::new();
    attrs.set_antialias(false);
    // Lets tests read back the last frame; costs a copy per frame.
    attrs.set_preserve_drawing_buffer(true);
    let gl = canvas
        .get_context_with_context_options("webgl2", &attrs)
        .map_err(|_| SceneError::NoContext)?
        .ok_or(SceneError::NotWebGl2)?
        .dyn_into::<WebGl2RenderingContext>()
        .map_err(|_| SceneError::NotWebGl2)?;
    let glow = three_d::context::Context::from_webgl2_context(gl);
    // three-d's API takes an Arc; the browser has one thread, so nothing is shared across threads.
    #[allow(clippy::arc_with_non_send_sync)]
    let glow = Arc::new(glow);
    let context =
        three_d::Context::from_gl_context(glow).map_err(|e| SceneError::Unusable(e.to_string()))?;
    let hud = Hud::new(hud_root, lang).ok_or(SceneError::NoWindow)?;

    let input = Rc::new(RefCell::new(Input::default()));
    let listeners = listen(&canvas, &input);

    let scene = Scene::new(context, three_d::Viewport::new_at_origo(1, 1));
    let state = Loop {
        hud,
        orbit: None,
        size: (0, 0, 0.0),
        stats: FrameStats::default(),
        resolution: Resolution::default(),
        t0: None,
    };
    let mut owned = Owned {
        scene,
        state,
        canvas: canvas.clone(),
        window: window.clone(),
        rx,
        input,
    };

    let frame: FrameCallback = Rc::new(RefCell::new(None));
    let again = frame.clone();
    let mut listeners = Some(listeners);
    *frame.borrow_mut() = Some(Closure::new(move |now: f64| {
        if stop.load(Ordering::Relaxed) {
            if let Some(listeners) = listeners.take() {
                for (name, f) in &listeners {
                    let _ = owned
                        .canvas
                        .remove_event_listener_with_callback(name, f.as_ref().unchecked_ref());
                }
            }
            owned.state.hud.clear();
            // Dropping the closure ends the loop and frees the scene it owns.
            again.borrow_mut().take();
            return;
        }
        owned.frame(now);
        if let Some(f) = again.borrow().as_ref() {
            let _ = owned
                .window
                .request_animation_frame(f.as_ref().unchecked_ref());
        }
    }));
    if let Some(f) = frame.borrow().as_ref() {
        window
            .request_animation_frame(f.as_ref().unchecked_ref())
            .map_err(|_| SceneError::NoAnimationFrame)?;
    }
    Ok(())
}

struct Loop {
    hud: Hud,
    orbit: Option<Orbit>,
    /// Canvas size in physical pixels and the pixel ratio it was set for.
    size: (u32, u32, f64),
    stats: FrameStats,
    resolution: Resolution,
    t0: Option<f64>,
}

struct Owned {
    scene: Scene,
    state: Loop,
    canvas: HtmlCanvasElement,
    window: web_sys::Window,
    rx: Receiver<NodesSnapshot>,
    input: Rc<RefCell<Input>>,
}

impl Owned {
    fn frame(&mut self, now: f64) {
        let performance = self.window.performance();
        let started = performance.as_ref().map(|p| p.now()).unwrap_or(now);
        let t0 = *self.state.t0.get_or_insert(now);
        let mut reframe = false;
        if let Some(snap) = self.rx.take() {
            self.scene.update(&snap);
            self.state.hud.update(&snap, self.scene.layout());
            reframe = true;
        }
        let (w, h, dpr, css) = self.fit_canvas(&mut reframe);
        let orbit = self.steer(w as f32 / h as f32, reframe);
        let t = ((now - t0) / 1000.0) as f32;
        self.scene
            .render(t, three_d::Viewport::new_at_origo(w, h), &orbit);
        let scene = &self.scene;
        let scale = dpr as f32;
        self.state.hud.place(scene.layout(), css.0, css.1, |p| {
            scene.project(p).map(|(x, y)| (x / scale, y / scale))
        });
        let ended = performance.as_ref().map(|p| p.now()).unwrap_or(now);
        self.count(now, ended - started, ended);
    }

    /// Sizes the canvas buffer: CSS size × the screen's pixel ratio, lowered while frames come
    /// slowly. Returns buffer width and height, the ratio, and the CSS size; a new size asks
    /// for the camera to frame the picture again.
    fn fit_canvas(&mut self, reframe: &mut bool) -> (u32, u32, f64, (f32, f32)) {
        let dpr = self.window.device_pixel_ratio().clamp(0.5, 4.0) * self.state.resolution.scale();
        let css_w = self.canvas.client_width().max(1) as f64;
        let css_h = self.canvas.client_height().max(1) as f64;
        let w = (css_w * dpr).round().clamp(1.0, MAX_SIDE) as u32;
        let h = (css_h * dpr).round().clamp(1.0, MAX_SIDE) as u32;
        if (w, h, dpr) != self.state.size {
            self.canvas.set_width(w);
            self.canvas.set_height(h);
            self.state.size = (w, h, dpr);
            *reframe = true;
        }
        (w, h, dpr, (css_w as f32, css_h as f32))
    }

    /// The camera for this frame: framed on the picture (again when it changed), then moved by
    /// what the mouse did since the last frame.
    fn steer(&mut self, aspect: f32, reframe: bool) -> Orbit {
        let layout = self.scene.layout();
        let orbit = self
            .state
            .orbit
            .get_or_insert_with(|| Orbit::framing(layout.min, layout.max, aspect));
        if reframe {
            orbit.reframe(layout.min, layout.max, aspect);
        }
        let mut input = self.input.borrow_mut();
        if input.reset {
            *orbit = Orbit::framing(layout.min, layout.max, aspect);
        }
        orbit.drag(input.dx, input.dy);
        orbit.zoom(input.wheel);
        // Consumed; `drag` (a button held down) stays.
        (input.dx, input.dy, input.wheel, input.reset) = (0.0, 0.0, 0.0, false);
        *orbit
    }

    /// Frame timings: the resolution's feedback, and the figures tests and benches read from
    /// the canvas's `data-*` attributes.
    fn count(&mut self, now: f64, cpu_ms: f64, ended: f64) {
        if let Some(interval) = self.state.stats.record(now, cpu_ms) {
            // A new scale resizes the canvas buffer at the start of the next frame.
            self.state.resolution.record(interval);
        }
        let frames = self.state.stats.frames;
        if frames == 1 {
            // Milliseconds since navigation started: the "first 3D frame" figure.
            let _ = self
                .canvas
                .set_attribute("data-first-frame-ms", &format!("{ended:.0}"));
        }
        if frames.is_multiple_of(PUBLISH_EVERY) {
            let c = &self.canvas;
            let _ = c.set_attribute("data-frames", &frames.to_string());
            let _ = c.set_attribute(
                "data-frame-ms",
                &format!("{:.1}", self.state.stats.frame_ms()),
            );
            let _ = c.set_attribute("data-cpu-ms", &format!("{:.2}", self.state.stats.cpu_ms()));
            let _ = c.set_attribute(
                "data-render-scale",
                &format!("{:.2}", self.state.resolution.scale()),
            );
        }
    }
}

/// Drag to orbit, wheel to zoom, double-click to reset.
fn listen(canvas: &HtmlCanvasElement, input: &Rc<RefCell<Input>>) -> Vec<Listener> {
    let mut out: Vec<Listener> = Vec::new();
    let target = canvas.clone();
    let i = input.clone();
    out.push((
        "pointerdown",
        Closure::new(move |e: web_sys::Event| {
            if let Some(e) = e.dyn_ref::<PointerEvent>() {
                let _ = target.set_pointer_capture(e.pointer_id());
                i.borrow_mut().drag = Some((e.client_x(), e.client_y()));
            }
        }),
    ));
    let i = input.clone();
    out.push((
        "pointermove",
        Closure::new(move |e: web_sys::Event| {
            let Some(e) = e.dyn_ref::<PointerEvent>() else {
                return;
            };
            let mut input = i.borrow_mut();
            if let Some((x, y)) = input.drag {
                input.dx += (e.client_x() - x) as f32;
                input.dy += (e.client_y() - y) as f32;
                input.drag = Some((e.client_x(), e.client_y()));
            }
        }),
    ));
    for name in ["pointerup", "pointercancel"] {
        let i = input.clone();
        out.push((
            name,
            Closure::new(move |_: web_sys::Event| i.borrow_mut().drag = None),
        ));
    }
    let i = input.clone();
    out.push((
        "wheel",
        Closure::new(move |e: web_sys::Event| {
            if let Some(w) = e.dyn_ref::<WheelEvent>() {
                e.prevent_default();
                i.borrow_mut().wheel += w.delta_y() as f32;
            }
        }),
    ));
    let i = input.clone();
    out.push((
        "dblclick",
        Closure::new(move |_: web_sys::Event| i.borrow_mut().reset = true),
    ));
    let options = AddEventListenerOptions::new();
    // Not passive: the wheel zooms the scene instead of scrolling the page.
    options.set_passive(false);
    for (name, f) in &out {
        let _ = canvas.add_event_listener_with_callback_and_add_event_listener_options(
            name,
            f.as_ref().unchecked_ref(),
            &options,
        );
    }
    out
}
