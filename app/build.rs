//! Defines `cfg(browser)`, the one name for "this is the hydrated page in a browser": the
//! `hydrate` feature on a wasm32 target without `ssr`. A native build with both features (the
//! workspace's clippy) is not a browser, so WebGL and timers stay out of it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(browser)");
    let feature = |name: &str| std::env::var_os(format!("CARGO_FEATURE_{name}")).is_some();
    let wasm32 = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "wasm32");
    if wasm32 && feature("HYDRATE") && !feature("SSR") {
        println!("cargo::rustc-cfg=browser");
    }
}
