//! Following a running job's output in the browser: an `EventSource` on
//! `/api/jobs/{id}/log` whose `out` and `err` events are appended to a text signal (its last
//! [`KEPT`] bytes), closed at the job's `end` or when the page goes.

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// Bytes of output the page keeps (the start goes first).
const KEPT: usize = 64 * 1024;

pub struct Follow {
    source: Option<web_sys::EventSource>,
    _listeners: Vec<Closure<dyn FnMut(web_sys::MessageEvent)>>,
}

impl Follow {
    pub fn open(id: &str, text: RwSignal<String>) -> Self {
        let url = format!("/api/jobs/{}/log", shared::fleet::encode(id));
        let Ok(source) = web_sys::EventSource::new(&url) else {
            return Self {
                source: None,
                _listeners: Vec::new(),
            };
        };
        let mut listeners = Vec::new();
        for name in ["out", "err"] {
            let on = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
                move |e: web_sys::MessageEvent| {
                    if let Some(chunk) = e.data().as_string() {
                        text.try_update(|t| append(t, &chunk));
                    }
                },
            );
            let _ = source.add_event_listener_with_callback(name, on.as_ref().unchecked_ref());
            listeners.push(on);
        }
        let closing = source.clone();
        let on_end = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| closing.close());
        let _ = source.add_event_listener_with_callback("end", on_end.as_ref().unchecked_ref());
        listeners.push(on_end);
        Self {
            source: Some(source),
            _listeners: listeners,
        }
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        if let Some(s) = &self.source {
            s.close();
        }
    }
}

/// Appends a chunk as written (line breaks included), keeping the last [`KEPT`] bytes.
fn append(text: &mut String, chunk: &str) {
    text.push_str(chunk);
    if text.len() > KEPT {
        let mut cut = text.len() - KEPT;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text.drain(..cut);
    }
}
