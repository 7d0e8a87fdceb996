//! What the last build made from which inputs, so a step whose inputs did not change is skipped
//! (`target/xtask/stamps.json`). A stamp only counts while the files it names still exist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    /// Digest of everything the step read (input bytes, tool identities).
    pub key: String,
    /// The content hashes of what it wrote, by extension (`js`, `wasm`, `css`).
    pub hashes: BTreeMap<String, String>,
}

pub struct Stamps {
    path: PathBuf,
    steps: BTreeMap<String, Stamp>,
}

impl Stamps {
    /// Reads the record; a missing or unreadable one means "build everything".
    pub fn load(path: PathBuf) -> Self {
        let steps = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self { path, steps }
    }

    /// The step's stamp if it was made from `key` and every file `exists` says is there.
    pub fn fresh(&self, step: &str, key: &str, exists: impl Fn(&Stamp) -> bool) -> Option<&Stamp> {
        self.steps.get(step).filter(|s| s.key == key && exists(s))
    }

    pub fn record(&mut self, step: &str, stamp: Stamp) -> anyhow::Result<()> {
        self.steps.insert(step.to_string(), stamp);
        crate::site::write_if_changed(&self.path, &serde_json::to_vec_pretty(&self.steps)?)?;
        Ok(())
    }

    #[cfg(test)]
    fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether `dir` holds the named file.
pub fn has(dir: &Path, file: &str) -> bool {
    dir.join(file).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_holds_only_for_its_key_and_while_its_files_exist() {
        let dir = std::env::temp_dir().join(format!("xtask-stamps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = Stamps::load(dir.join("stamps.json"));
        assert!(s.fresh("front", "k1", |_| true).is_none());
        let stamp = Stamp {
            key: "k1".into(),
            hashes: BTreeMap::from([("js".into(), "h".into())]),
        };
        s.record("front", stamp.clone()).unwrap();

        let again = Stamps::load(s.path().to_path_buf());
        assert_eq!(again.fresh("front", "k1", |_| true), Some(&stamp));
        assert!(
            again.fresh("front", "k2", |_| true).is_none(),
            "another input"
        );
        assert!(
            again.fresh("front", "k1", |_| false).is_none(),
            "its output was deleted"
        );
        assert!(again.fresh("style", "k1", |_| true).is_none());

        std::fs::write(dir.join("stamps.json"), b"{not json").unwrap();
        assert!(Stamps::load(dir.join("stamps.json"))
            .fresh("front", "k1", |_| true)
            .is_none());
    }
}
