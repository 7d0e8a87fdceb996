//! `cargo xtask build`: what `cargo leptos build --release` does for this workspace, without
//! installing cargo-leptos or the wasm-bindgen CLI — the server (and pipeline-agent) in the
//! release profile, the frontend to wasm32 beside it, wasm-bindgen, wasm-opt, the stylesheet,
//! the assets, content-hashed names with `hash.txt`, and `.gz` copies. Each step whose inputs
//! did not change is skipped, so a warm run is two no-op cargo checks.
//!
//! `cargo leptos watch` stays the development loop (scripts/dev.sh); both read
//! `[[workspace.metadata.leptos]]` and write the same site.

mod cargo;
mod front;
mod project;
mod site;
mod stamps;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context};

use project::Project;
use stamps::{Stamp, Stamps};

const USAGE: &str = "usage: cargo xtask build   (release site, server and pipeline-agent)";

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["build"] => build(&project_root()),
        _ => {
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask's own directory's parent (the cargo-xtask convention).
fn project_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

fn say(msg: &str) {
    eprintln!("\x1b[1;36m==>\x1b[0m {msg}");
}

fn build(root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let p = Project::load(&root.join("Cargo.toml"))?;
    if p.hash_files && p.style_file.is_none() {
        bail!("hash-files needs a style-file: Leptos's hash.txt lists js, wasm and css");
    }
    let tools = front::tools_identity()?;

    say(
        "building the server and pipeline-agent (cargo build --release), beside the browser bundle",
    );
    let mut server = cargo::server_build(root, &p, &[("pipeline-agent", "pipeline-agent")])
        .spawn()
        .context("starting cargo")?;
    let site = build_site(root, &p, &tools);
    let server = server.wait().context("waiting for cargo")?;
    let hashes = site?;
    ensure!(server.success(), "the server build failed ({server})");

    if let Some(h) = hashes {
        let file = cargo::bin_dir(root, &p).join(&p.hash_file_name);
        site::write_if_changed(
            &file,
            site::hash_file(&h["js"], &h["wasm"], &h["css"]).as_bytes(),
        )?;
    }
    say(&format!(
        "built in {:.1} s: {} and {}",
        started.elapsed().as_secs_f64(),
        cargo::bin_dir(root, &p).join(&p.bin_target).display(),
        root.join(&p.site_root).display()
    ));
    Ok(())
}

/// The site directory. Returns the content hashes by extension when names are hashed.
fn build_site(
    root: &Path,
    p: &Project,
    tools: &str,
) -> anyhow::Result<Option<BTreeMap<String, String>>> {
    let step = Instant::now();
    say(&format!(
        "building the browser bundle (cargo build -p {} --target wasm32-unknown-unknown --profile {})",
        p.lib_package, p.lib_profile_release
    ));
    let status = cargo::front_build(root, p)
        .status()
        .context("starting cargo")?;
    ensure!(status.success(), "the wasm build failed ({status})");
    eprintln!("    wasm build: {:.1} s", step.elapsed().as_secs_f64());

    let site_root = root.join(&p.site_root);
    let pkg = site_root.join(&p.site_pkg_dir);
    let mut stamps = Stamps::load(root.join("target/xtask/stamps.json"));
    let named = |h: &BTreeMap<String, String>, ext: &str| {
        site::file_name(&p.name, p.hash_files.then(|| h[ext].as_str()), ext)
    };

    let wasm_in = cargo::front_wasm(root, p);
    let raw = std::fs::read(&wasm_in).with_context(|| format!("reading {}", wasm_in.display()))?;
    let key = site::content_hash(format!("{}{tools}", site::content_hash(&raw)).as_bytes());
    let front = match stamps.fresh("front", &key, |s| {
        stamps::has(&pkg, &named(&s.hashes, "js")) && stamps::has(&pkg, &named(&s.hashes, "wasm"))
    }) {
        Some(s) => {
            say("wasm unchanged since the last build: wasm-bindgen and wasm-opt skipped");
            s.hashes.clone()
        }
        None => {
            let step = Instant::now();
            say("wasm-bindgen, wasm-opt -Oz and a minified JS glue (about 30 s)");
            let out = front::build(&wasm_in, &p.name, &root.join("target/xtask/front"))?;
            let mut hashes = BTreeMap::new();
            for (ext, file) in [("js", &out.js), ("wasm", &out.wasm)] {
                let bytes = std::fs::read(file)?;
                hashes.insert(ext.to_string(), site::content_hash(&bytes));
                site::write_if_changed(&pkg.join(named(&hashes, ext)), &bytes)?;
            }
            match &out.snippets {
                Some(dir) => site::mirror(dir, &pkg.join("snippets"), "")?,
                None => remove_dir(&pkg.join("snippets"))?,
            }
            stamps.record(
                "front",
                Stamp {
                    key,
                    hashes: hashes.clone(),
                },
            )?;
            eprintln!("    bundle: {:.1} s", step.elapsed().as_secs_f64());
            hashes
        }
    };

    let css = match &p.style_file {
        Some(style) => {
            let scratch = root.join("target/xtask/style.min.css");
            Some(build_style(
                &root.join(style),
                &scratch,
                &pkg,
                &mut stamps,
                tools,
                &named,
            )?)
        }
        None => None,
    };
    if let Some(assets) = &p.assets_dir {
        site::mirror(&root.join(assets), &site_root, &p.site_pkg_dir)?;
    }

    let mut hashes = front;
    let mut keep = BTreeSet::from([named(&hashes, "js"), named(&hashes, "wasm")]);
    if let Some(css) = css {
        hashes.insert("css".into(), css);
        keep.insert(named(&hashes, "css"));
    }
    site::prune(&pkg, &keep)?;
    for file in &keep {
        site::gzip_copy(&pkg.join(file))?;
    }
    Ok(p.hash_files.then_some(hashes))
}

/// The minified stylesheet in the pkg dir; returns its content hash.
fn build_style(
    file: &Path,
    scratch: &Path,
    pkg: &Path,
    stamps: &mut Stamps,
    tools: &str,
    named: &dyn Fn(&BTreeMap<String, String>, &str) -> String,
) -> anyhow::Result<String> {
    let source = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let key = site::content_hash(format!("{}{tools}", site::content_hash(&source)).as_bytes());
    if let Some(s) = stamps.fresh("style", &key, |s| {
        stamps::has(pkg, &named(&s.hashes, "css"))
    }) {
        return Ok(s.hashes["css"].clone());
    }
    say(&format!("minifying {}", file.display()));
    front::minify(file, scratch)?;
    let bytes = std::fs::read(scratch)?;
    let hashes = BTreeMap::from([("css".to_string(), site::content_hash(&bytes))]);
    site::write_if_changed(&pkg.join(named(&hashes, "css")), &bytes)?;
    let hash = hashes["css"].clone();
    stamps.record("style", Stamp { key, hashes })?;
    Ok(hash)
}

fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", dir.display()))
        }
        _ => Ok(()),
    }
}
