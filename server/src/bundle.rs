//! At start: do the bundle files the page will link exist? A page whose `/pkg/` links 404 is
//! unstyled and never hydrates, with nothing in the log — so say which setting is wrong, or use
//! the content-hashed names when `hash.txt` is there but `LEPTOS_HASH_FILES` was forgotten.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use leptos::config::LeptosOptions;

/// The `js`/`wasm`/`css` hashes the build (xtask or cargo-leptos) wrote beside the binary, if any.
fn hashes(options: &LeptosOptions) -> Option<(PathBuf, HashMap<String, String>)> {
    let path = std::env::current_exe()
        .ok()?
        .parent()?
        .join(options.hash_file.as_ref());
    let text = std::fs::read_to_string(&path).ok()?;
    let map = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some((path, map))
}

/// The files the page links for these settings.
fn linked(options: &LeptosOptions, hashes: Option<&HashMap<String, String>>) -> Vec<String> {
    let name = options.output_name.as_ref();
    ["js", "wasm", "css"]
        .iter()
        .map(|ext| match hashes.and_then(|h| h.get(*ext)) {
            Some(hash) => format!("{name}.{hash}.{ext}"),
            // Leptos links `<name>_bg.wasm` when the build did not set LEPTOS_OUTPUT_NAME.
            None if *ext == "wasm" && option_env!("LEPTOS_OUTPUT_NAME").is_none() => {
                format!("{name}_bg.wasm")
            }
            None => format!("{name}.{ext}"),
        })
        .collect()
}

fn missing(dir: &Path, files: &[String]) -> Vec<String> {
    files
        .iter()
        .filter(|f| !dir.join(f).is_file())
        .cloned()
        .collect()
}

/// Checks the bundle; may switch `hash_files` on. An error names the file and the setting.
pub fn check(options: &mut LeptosOptions) -> anyhow::Result<()> {
    let dir = Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let found = hashes(options);
    if options.hash_files {
        let Some((path, h)) = &found else {
            anyhow::bail!(
                "LEPTOS_HASH_FILES=true but there is no {} beside the binary: build with \
                 `cargo xtask build` (or scripts/run.sh), or unset LEPTOS_HASH_FILES",
                options.hash_file
            );
        };
        let lost = missing(&dir, &linked(options, Some(h)));
        anyhow::ensure!(
            lost.is_empty(),
            "the bundle named in {} is not under LEPTOS_SITE_ROOT/LEPTOS_SITE_PKG_DIR ({}): \
             missing {}; rebuild, or point LEPTOS_SITE_ROOT at the site that build wrote",
            path.display(),
            dir.display(),
            lost.join(", ")
        );
        return Ok(());
    }
    let plain = linked(options, None);
    let lost = missing(&dir, &plain);
    if lost.is_empty() {
        return Ok(());
    }
    if let Some((path, h)) = &found {
        if missing(&dir, &linked(options, Some(h))).is_empty() {
            tracing::warn!(
                hash_file = %path.display(),
                "LEPTOS_HASH_FILES is not set but the bundle is content-hashed; linking the \
                 hashed names (set LEPTOS_HASH_FILES=true to say so)"
            );
            options.hash_files = true;
            return Ok(());
        }
    }
    anyhow::bail!(
        "the page would link {} but {} holds no {}: check LEPTOS_SITE_ROOT, LEPTOS_SITE_PKG_DIR \
         and LEPTOS_OUTPUT_NAME, or build the site first (`cargo xtask build`); \
         API_ONLY=true serves the API and an unstyled page without a bundle",
        plain.join(", "),
        dir.display(),
        lost.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(root: &Path, hash: bool) -> LeptosOptions {
        LeptosOptions::builder()
            .output_name("agent-office")
            .site_root(root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .hash_files(hash)
            .build()
    }

    #[test]
    fn a_missing_bundle_names_what_to_fix() {
        let root = std::env::temp_dir().join(format!("ao-bundle-{}", rand::random::<u64>()));
        std::fs::create_dir_all(root.join("pkg")).unwrap();
        let err = check(&mut options(&root, false)).unwrap_err().to_string();
        assert!(
            err.contains("LEPTOS_SITE_ROOT") && err.contains(".wasm"),
            "{err}"
        );
        for f in [
            "agent-office.js",
            "agent-office.wasm",
            "agent-office_bg.wasm",
            "agent-office.css",
        ] {
            std::fs::write(root.join("pkg").join(f), "x").unwrap();
        }
        assert!(check(&mut options(&root, false)).is_ok());
        let _ = std::fs::remove_dir_all(&root);
    }
}
