// Leptos's nested view types (the /infra page) go deeper than the default limit in the release wasm build.
#![recursion_limit = "256"]
//! The WASM entry point: hydrates the page the server rendered.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
