//! The site's settings, read from `[[workspace.metadata.leptos]]` in the workspace Cargo.toml —
//! the table `cargo leptos watch` reads too, so both paths build and serve the same site.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// The keys of one `[[workspace.metadata.leptos]]` entry this build uses (others are ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Project {
    /// The output name: `pkg/<name>.js`, `.wasm`, `.css`.
    pub name: String,
    pub bin_package: String,
    pub bin_target: String,
    pub lib_package: String,
    #[serde(default = "release")]
    pub lib_profile_release: String,
    #[serde(default = "release")]
    pub bin_profile_release: String,
    pub site_root: PathBuf,
    #[serde(default = "pkg")]
    pub site_pkg_dir: String,
    pub style_file: Option<PathBuf>,
    pub assets_dir: Option<PathBuf>,
    #[serde(default)]
    pub hash_files: bool,
    #[serde(default = "hash_txt")]
    pub hash_file_name: String,
    #[serde(default = "site_addr")]
    pub site_addr: String,
    #[serde(default = "reload_port")]
    pub reload_port: u16,
    #[serde(default = "yes")]
    pub bin_default_features: bool,
    #[serde(default = "yes")]
    pub lib_default_features: bool,
    #[serde(default)]
    pub bin_features: Vec<String>,
    #[serde(default)]
    pub lib_features: Vec<String>,
}

fn release() -> String {
    "release".into()
}
fn pkg() -> String {
    "pkg".into()
}
fn hash_txt() -> String {
    "hash.txt".into()
}
fn site_addr() -> String {
    "127.0.0.1:3000".into()
}
fn reload_port() -> u16 {
    3001
}
fn yes() -> bool {
    true
}

impl Project {
    /// Reads the single leptos project of the workspace whose manifest is `manifest`.
    pub fn load(manifest: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", manifest.display()))
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        let doc: toml::Table = toml::from_str(text)?;
        let entries = doc
            .get("workspace")
            .and_then(|w| w.get("metadata"))
            .and_then(|m| m.get("leptos"))
            .and_then(|l| l.as_array())
            .context("no [[workspace.metadata.leptos]] table")?;
        let [entry] = entries.as_slice() else {
            bail!(
                "[[workspace.metadata.leptos]] has {} entries; this build handles exactly one",
                entries.len()
            );
        };
        let project: Project = entry
            .clone()
            .try_into()
            .context("[[workspace.metadata.leptos]]")?;
        Ok(project)
    }

    /// The cargo profile directory of a profile name (`release` → `release`, `dev` → `debug`).
    pub fn profile_dir(profile: &str) -> &str {
        if profile == "dev" {
            "debug"
        } else {
            profile
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_workspace_table() {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let p = Project::load(&manifest).unwrap();
        assert_eq!(p.name, "agent-office");
        assert_eq!(p.bin_package, "server");
        assert_eq!(p.lib_package, "frontend");
        assert_eq!(p.lib_profile_release, "wasm-release");
        assert!(p.hash_files);
        assert_eq!(p.style_file.as_deref(), Some(Path::new("style/main.css")));
    }

    #[test]
    fn two_projects_or_none_are_refused_by_name() {
        let none = Project::parse("[workspace]\nmembers = []\n").unwrap_err();
        assert!(format!("{none:#}").contains("workspace.metadata.leptos"));
        let two = r#"
[[workspace.metadata.leptos]]
name = "a"
[[workspace.metadata.leptos]]
name = "b"
"#;
        let err = Project::parse(two).unwrap_err();
        assert!(format!("{err:#}").contains("2 entries"), "{err:#}");
    }

    #[test]
    fn a_missing_key_is_named() {
        let err = Project::parse("[[workspace.metadata.leptos]]\nname = \"a\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("bin-package"), "{err:#}");
    }
}
