//! The two cargo builds: the server (and pipeline-agent) for the host in the release profile,
//! and the frontend for wasm32 in its own profile and target directory. Both get the
//! `LEPTOS_*` environment cargo-leptos gives them, so its builds and ours share one cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::project::Project;

/// Where the frontend's wasm32 build goes (cargo-leptos's default too: `target/front`).
pub fn front_target_dir(root: &Path) -> PathBuf {
    root.join("target").join("front")
}

/// The wasm file the frontend build writes.
pub fn front_wasm(root: &Path, p: &Project) -> PathBuf {
    front_target_dir(root)
        .join("wasm32-unknown-unknown")
        .join(Project::profile_dir(&p.lib_profile_release))
        .join(format!("{}.wasm", p.lib_package.replace('-', "_")))
}

/// The directory of the server binary; `hash.txt` goes beside it, where Leptos looks.
pub fn bin_dir(root: &Path, p: &Project) -> PathBuf {
    root.join("target")
        .join(Project::profile_dir(&p.bin_profile_release))
}

/// What cargo-leptos sets for a release build (`Project::to_envs` in cargo-leptos 0.3).
/// Leptos reads `LEPTOS_OUTPUT_NAME` at compile time (`option_env!`), so this must match for
/// the two tools to reuse each other's build.
pub fn leptos_env(p: &Project) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("LEPTOS_OUTPUT_NAME", p.name.clone()),
        ("LEPTOS_SITE_ROOT", p.site_root.display().to_string()),
        ("LEPTOS_SITE_PKG_DIR", p.site_pkg_dir.clone()),
        ("LEPTOS_SITE_ADDR", p.site_addr.clone()),
        ("LEPTOS_RELOAD_PORT", p.reload_port.to_string()),
        ("LEPTOS_LIB_DIR", p.lib_package.clone()),
        ("LEPTOS_BIN_DIR", p.bin_package.clone()),
        ("LEPTOS_JS_MINIFY", "true".into()),
        ("LEPTOS_HASH_FILES", p.hash_files.to_string()),
    ];
    if p.hash_files {
        env.push(("LEPTOS_HASH_FILE_NAME", p.hash_file_name.clone()));
    }
    env
}

fn profile_args(profile: &str) -> Vec<String> {
    match profile {
        "release" => vec!["--release".into()],
        "dev" => vec![],
        other => vec![format!("--profile={other}")],
    }
}

fn feature_args(default: bool, features: &[String]) -> Vec<String> {
    let mut args = Vec::new();
    if !default {
        args.push("--no-default-features".into());
    }
    if !features.is_empty() {
        args.push(format!("--features={}", features.join(",")));
    }
    args
}

/// `cargo build` of the server binary plus `extra` (package, binary) pairs in one invocation,
/// so the dependencies they share compile once.
pub fn server_build(root: &Path, p: &Project, extra: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args(["build", "--locked", "--package", &p.bin_package])
        .args(["--bin", &p.bin_target]);
    for (package, bin) in extra {
        cmd.args(["--package", package, "--bin", bin]);
    }
    cmd.args(profile_args(&p.bin_profile_release))
        .args(feature_args(p.bin_default_features, &p.bin_features))
        .envs(leptos_env(p));
    cmd
}

/// `cargo build` of the frontend library for the browser.
pub fn front_build(root: &Path, p: &Project) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args(["build", "--locked", "--lib", "--package", &p.lib_package])
        .args(["--target", "wasm32-unknown-unknown"])
        .arg(format!("--target-dir={}", front_target_dir(root).display()))
        .args(profile_args(&p.lib_profile_release))
        .args(feature_args(p.lib_default_features, &p.lib_features))
        .envs(leptos_env(p));
    cmd
}

/// The cargo that runs us (`cargo xtask`), or the one on PATH.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> Project {
        Project::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml")).unwrap()
    }

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_front_builds_for_wasm32_in_its_profile_and_dir() {
        let p = project();
        let root = Path::new("/w");
        let a = args(&front_build(root, &p));
        assert!(a.contains(&"wasm32-unknown-unknown".to_string()), "{a:?}");
        assert!(a.contains(&"--profile=wasm-release".to_string()), "{a:?}");
        assert!(
            a.contains(&"--target-dir=/w/target/front".to_string()),
            "{a:?}"
        );
        assert_eq!(
            front_wasm(root, &p),
            Path::new("/w/target/front/wasm32-unknown-unknown/wasm-release/frontend.wasm")
        );
    }

    #[test]
    fn the_server_builds_release_with_the_output_name_set() {
        let p = project();
        let cmd = server_build(Path::new("/w"), &p, &[("pipeline-agent", "pipeline-agent")]);
        let a = args(&cmd).join(" ");
        assert!(a.contains("--release"), "{a}");
        assert!(a.contains("--bin agent-office"), "{a}");
        // `--bin` selects targets across every package: the agent needs its own.
        assert!(
            a.contains("--package pipeline-agent --bin pipeline-agent"),
            "{a}"
        );
        let name = cmd
            .get_envs()
            .find(|(k, _)| *k == "LEPTOS_OUTPUT_NAME")
            .and_then(|(_, v)| v);
        assert_eq!(name, Some(std::ffi::OsStr::new("agent-office")));
        assert_eq!(bin_dir(Path::new("/w"), &p), Path::new("/w/target/release"));
    }
}
