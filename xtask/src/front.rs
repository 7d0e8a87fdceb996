//! The browser bundle from the frontend's wasm: wasm-bindgen through its library (the
//! `wasm-bindgen-cli-support` crate pinned to the `wasm-bindgen` of Cargo.lock, so there is no
//! CLI to install or keep in step), then `wasm-opt -Oz` and a minified JS glue, as cargo-leptos
//! does for a release build. The external tools come from npm (scripts/lib.sh puts them on PATH).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use wasm_bindgen_cli_support::Bindgen;

/// What the bundle step produced, in a scratch directory.
pub struct Output {
    pub js: PathBuf,
    pub wasm: PathBuf,
    /// `snippets/…` files the JS glue imports by relative path (kept unhashed, as cargo-leptos).
    pub snippets: Option<PathBuf>,
}

/// wasm-opt's flags: cargo-leptos's release defaults.
const WASM_OPT_ARGS: [&str; 3] = [
    "-Oz",
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
];

/// Runs wasm-bindgen (`--target web`, the CLI's defaults otherwise), wasm-opt and the JS
/// minifier on `input`, writing `<name>.js` and `<name>_bg.wasm` into `scratch`.
pub fn build(input: &Path, name: &str, scratch: &Path) -> anyhow::Result<Output> {
    if scratch.exists() {
        std::fs::remove_dir_all(scratch)
            .with_context(|| format!("clearing {}", scratch.display()))?;
    }
    let t = std::time::Instant::now();
    let mut bindgen = Bindgen::new();
    bindgen
        .input_path(input)
        .web(true)?
        .out_name(name)
        .typescript(false)
        // The CLI's default; Leptos passes the wasm path itself, so either would load.
        .omit_default_module_path(false);
    bindgen
        .generate(scratch)
        .with_context(|| format!("wasm-bindgen on {}", input.display()))?;

    eprintln!("    wasm-bindgen: {:.1} s", t.elapsed().as_secs_f64());

    let t = std::time::Instant::now();
    let wasm = scratch.join(format!("{name}_bg.wasm"));
    let mut opt = Command::new("wasm-opt");
    opt.args(WASM_OPT_ARGS).arg(&wasm).arg("-o").arg(&wasm);
    run(opt, "wasm-opt")?;
    eprintln!("    wasm-opt: {:.1} s", t.elapsed().as_secs_f64());

    let glue = scratch.join(format!("{name}.js"));
    let js = scratch.join(format!("{name}.min.js"));
    minify(&glue, &js)?;

    let snippets = scratch.join("snippets");
    Ok(Output {
        js,
        wasm,
        snippets: snippets.is_dir().then_some(snippets),
    })
}

/// Minifies a `.js` or `.css` file with esbuild (cargo-leptos uses swc and lightningcss; both
/// would be compiled into this tool, esbuild is one prebuilt npm binary).
pub fn minify(input: &Path, output: &Path) -> anyhow::Result<()> {
    let mut cmd = Command::new("esbuild");
    cmd.arg(input)
        .arg("--minify")
        .arg("--log-level=warning")
        .arg(format!("--outfile={}", output.display()));
    run(cmd, "esbuild")
}

/// What identifies this tool and the external ones without running them (each `--version` of
/// npm's wasm-opt starts node, about a second): resolved path, size and modification time.
/// This tool is in it because a rebuilt xtask may bundle differently (another wasm-bindgen).
pub fn tools_identity() -> anyhow::Result<String> {
    let mut id = format!("{WASM_OPT_ARGS:?};");
    let me = std::env::current_exe().context("finding this program")?;
    for (tool, path) in [
        ("xtask", me),
        ("wasm-opt", which("wasm-opt")?),
        ("esbuild", which("esbuild")?),
    ] {
        let real = std::fs::canonicalize(&path).unwrap_or(path);
        let meta = std::fs::metadata(&real).with_context(|| format!("{}", real.display()))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        id.push_str(&format!(
            "{tool} {} {} {mtime};",
            real.display(),
            meta.len()
        ));
    }
    Ok(id)
}

fn which(tool: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .with_context(|| missing(tool))
}

fn missing(tool: &str) -> String {
    format!(
        "{tool} is not on PATH: scripts/lib.sh (ensure_npm_tools) installs it from npm into \
         .tools/node_modules/.bin"
    )
}

fn run(mut cmd: Command, tool: &str) -> anyhow::Result<()> {
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(missing(tool)),
        Err(e) => return Err(e).with_context(|| format!("starting {tool}")),
    };
    if !status.success() {
        bail!("{tool} failed ({status})");
    }
    Ok(())
}
