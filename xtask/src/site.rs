//! The site directory as Leptos serves it with `LEPTOS_HASH_FILES=true`: `pkg/<name>.<hash>.js`,
//! `.wasm` and `.css`, their `.gz` copies for a proxy's `gzip_static`, the assets at the site
//! root, and `hash.txt` beside the server binary. Hashes and names are cargo-leptos's (MD5,
//! URL-safe base64 without padding), so either tool's build can be served.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use md5::{Digest, Md5};

/// The content hash in a bundle file's name.
pub fn content_hash(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Md5::digest(bytes))
}

/// `<name>.<hash>.<ext>`, or `<name>.<ext>` without hashing.
pub fn file_name(name: &str, hash: Option<&str>, ext: &str) -> String {
    match hash {
        Some(h) => format!("{name}.{h}.{ext}"),
        None => format!("{name}.{ext}"),
    }
}

/// `hash.txt` as Leptos reads it: one `<ext>: <hash>` line for js, wasm and css.
pub fn hash_file(js: &str, wasm: &str, css: &str) -> String {
    format!("js: {js}\nwasm: {wasm}\ncss: {css}\n")
}

/// Writes `bytes` to `path` unless it already holds exactly them (keeps mtimes of unchanged
/// files, which proxies and browsers use for revalidation).
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Written beside and renamed, so a running server never serves half a file.
    let tmp = path.with_extension("xtask-tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// `<file>.gz` at the best compression, unless it is there and newer than the file.
pub fn gzip_copy(path: &Path) -> anyhow::Result<()> {
    let gz = path.with_file_name(format!(
        "{}.gz",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let newer = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if matches!((newer(&gz), newer(path)), (Some(g), Some(f)) if g >= f) {
        return Ok(());
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&bytes)?;
    write_if_changed(&gz, &enc.finish()?)?;
    Ok(())
}

/// Removes the files in `dir` that are not in `keep` (nor a `.gz` of one); directories stay.
pub fn prune(dir: &Path, keep: &BTreeSet<String>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let base = name.strip_suffix(".gz").unwrap_or(&name);
        if !keep.contains(base) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Makes `dest` hold a copy of the tree `src`, leaving `dest/<reserved>` (the pkg dir) alone:
/// changed files are copied, files no longer in `src` removed.
pub fn mirror(src: &Path, dest: &Path, reserved: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut wanted = BTreeSet::new();
    for entry in std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        wanted.insert(name.clone());
        let (from, to) = (entry.path(), dest.join(&name));
        if entry.file_type()?.is_dir() {
            mirror(&from, &to, "")?;
        } else {
            let bytes =
                std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
            write_if_changed(&to, &bytes)?;
        }
    }
    for entry in std::fs::read_dir(dest)? {
        let entry = entry?;
        let name = entry.file_name();
        if wanted.contains(&name) || (!reserved.is_empty() && name == reserved) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn names_carry_cargo_leptos_hashes() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e, in URL-safe base64 without padding.
        assert_eq!(content_hash(b""), "1B2M2Y8AsgTpgAmY7PhCfg");
        assert_eq!(content_hash(b"a").len(), 22);
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
        assert_eq!(file_name("ao", Some("h"), "js"), "ao.h.js");
        assert_eq!(file_name("ao", None, "css"), "ao.css");
        assert_eq!(hash_file("j", "w", "c"), "js: j\nwasm: w\ncss: c\n");
    }

    #[test]
    fn an_unchanged_file_is_not_rewritten() {
        let dir = temp_dir("write");
        let f = dir.join("a.js");
        assert!(write_if_changed(&f, b"x").unwrap());
        assert!(!write_if_changed(&f, b"x").unwrap());
        assert!(write_if_changed(&f, b"y").unwrap());
        assert_eq!(std::fs::read(&f).unwrap(), b"y");
    }

    #[test]
    fn gzip_copies_decompress_to_the_file_and_follow_changes() {
        use std::io::Read;
        let dir = temp_dir("gz");
        let f = dir.join("a.wasm");
        let read_gz = || {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(dir.join("a.wasm.gz")).unwrap())
                .read_to_end(&mut out)
                .unwrap();
            out
        };
        std::fs::write(&f, vec![7u8; 10_000]).unwrap();
        gzip_copy(&f).unwrap();
        assert_eq!(read_gz(), vec![7u8; 10_000]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&f, b"changed").unwrap();
        gzip_copy(&f).unwrap();
        assert_eq!(read_gz(), b"changed");
    }

    #[test]
    fn prune_keeps_the_current_bundle_and_its_gz() {
        let dir = temp_dir("prune");
        for f in ["ao.new.js", "ao.new.js.gz", "ao.old.js", "ao.old.js.gz"] {
            std::fs::write(dir.join(f), b"").unwrap();
        }
        std::fs::create_dir(dir.join("snippets")).unwrap();
        prune(&dir, &BTreeSet::from(["ao.new.js".to_string()])).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["ao.new.js", "ao.new.js.gz", "snippets"]);
    }

    #[test]
    fn mirror_copies_changes_removes_leftovers_and_spares_pkg() {
        let (src, dest) = (temp_dir("src"), temp_dir("dest"));
        std::fs::write(src.join("favicon.svg"), b"new").unwrap();
        std::fs::create_dir(src.join("img")).unwrap();
        std::fs::write(src.join("img/a.png"), b"png").unwrap();
        std::fs::write(dest.join("favicon.svg"), b"old").unwrap();
        std::fs::write(dest.join("gone.txt"), b"").unwrap();
        std::fs::create_dir(dest.join("pkg")).unwrap();
        std::fs::write(dest.join("pkg/ao.js"), b"js").unwrap();
        mirror(&src, &dest, "pkg").unwrap();
        assert_eq!(std::fs::read(dest.join("favicon.svg")).unwrap(), b"new");
        assert_eq!(std::fs::read(dest.join("img/a.png")).unwrap(), b"png");
        assert!(!dest.join("gone.txt").exists());
        assert_eq!(std::fs::read(dest.join("pkg/ao.js")).unwrap(), b"js");
    }
}
