//! What the agent keeps on disk in `CONFIG_DIR`: its stable id (`agent-id`) and its record
//! of applied commands (`commands.json`: the last cursor, the ids it applied with their
//! results, and the results the server has not confirmed yet).
//!
//! Applying is exactly-once because an id is recorded here *before* its result is reported:
//! a command seen again (pub/sub and stream, a retried poll, a restart) is recognised and
//! only its recorded result is sent again.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use shared::control::{valid, ResultStatus};

/// Applied command ids remembered (oldest forgotten first).
pub const MAX_APPLIED: usize = 1_000;

/// `AGENT_ID` (or `agent.id`) when set, else the id kept in `dir/agent-id`, made once.
pub fn agent_id(configured: Option<&str>, dir: &Path) -> anyhow::Result<String> {
    if let Some(id) = configured {
        return Ok(id.to_string());
    }
    let path = dir.join("agent-id");
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let id = s.trim().to_string();
            valid::id("agent-id", &id).map_err(|e| {
                anyhow::anyhow!("{} holds no valid id: {}", path.display(), e.message)
            })?;
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = new_uuid();
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            write_atomic(&path, format!("{id}\n").as_bytes())?;
            Ok(id)
        }
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// A random (version 4) UUID.
fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Writes through a temporary file and a rename, so a crash leaves the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("cannot replace {}: {e}", path.display()))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub command_id: String,
    pub status: ResultStatus,
    pub message: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    cursor: String,
    applied: VecDeque<Applied>,
    unreported: Vec<String>,
}

/// The applied-command record, saved after every change.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    saved: Saved,
}

impl Ledger {
    /// Opens `dir/commands.json`; a missing file is an empty record, a broken one an error
    /// (silently forgetting what was applied would apply it twice).
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("commands.json");
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not a command record ({e}); move it away to start afresh",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        };
        Ok(Self { path, saved })
    }

    pub fn cursor(&self) -> &str {
        &self.saved.cursor
    }

    pub fn applied(&self, command_id: &str) -> Option<&Applied> {
        self.saved
            .applied
            .iter()
            .find(|a| a.command_id == command_id)
    }

    /// Moves the cursor forward (stream ids compare as `ms-seq`); never back.
    pub fn advance(&mut self, cursor: &str) -> anyhow::Result<()> {
        if shared::control::stream::is_after(cursor, &self.saved.cursor) {
            self.saved.cursor = cursor.to_string();
            self.save()?;
        }
        Ok(())
    }

    /// Records an applied command and its result, before the result is reported.
    pub fn record(&mut self, applied: Applied) -> anyhow::Result<()> {
        self.saved.unreported.push(applied.command_id.clone());
        self.saved.applied.push_back(applied);
        while self.saved.applied.len() > MAX_APPLIED {
            self.saved.applied.pop_front();
        }
        self.save()
    }

    /// Results not yet confirmed by the server, oldest first.
    pub fn unreported(&self) -> Vec<Applied> {
        self.saved
            .unreported
            .iter()
            .filter_map(|id| self.applied(id).cloned())
            .collect()
    }

    pub fn reported(&mut self, command_id: &str) -> anyhow::Result<()> {
        let before = self.saved.unreported.len();
        self.saved.unreported.retain(|id| id != command_id);
        if before != self.saved.unreported.len() {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> anyhow::Result<()> {
        // Plain strings and enums; an error here would be a bug, and must not write an empty
        // record over the one on disk.
        let bytes = serde_json::to_vec(&self.saved).context("encoding the command record")?;
        write_atomic(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("pa-state-{}", new_uuid()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_id_is_made_once_and_kept() {
        let d = dir();
        let a = agent_id(None, &d).unwrap();
        assert_eq!(a.len(), 36);
        assert_eq!(agent_id(None, &d).unwrap(), a);
        assert_eq!(agent_id(Some("fixed"), &d).unwrap(), "fixed");
        std::fs::write(d.join("agent-id"), "not an id!").unwrap();
        assert!(agent_id(None, &d).is_err());
    }

    #[test]
    fn an_applied_command_survives_a_restart_and_its_result_stays_until_reported() {
        let d = dir();
        let mut l = Ledger::open(&d).unwrap();
        l.record(Applied {
            command_id: "c1".into(),
            status: ResultStatus::Succeeded,
            message: "ok".into(),
        })
        .unwrap();
        l.advance("1700000000000-1").unwrap();
        l.advance("1600000000000-0").unwrap();
        let mut l = Ledger::open(&d).unwrap();
        assert!(l.applied("c1").is_some());
        assert_eq!(l.cursor(), "1700000000000-1", "the cursor never goes back");
        assert_eq!(l.unreported().len(), 1);
        l.reported("c1").unwrap();
        assert!(Ledger::open(&d).unwrap().unreported().is_empty());
        std::fs::write(d.join("commands.json"), "{broken").unwrap();
        assert!(Ledger::open(&d).is_err());
    }

    #[test]
    fn the_record_is_capped() {
        let d = dir();
        let mut l = Ledger::open(&d).unwrap();
        for i in 0..MAX_APPLIED + 5 {
            l.saved.applied.push_back(Applied {
                command_id: format!("c{i}"),
                status: ResultStatus::Failed,
                message: String::new(),
            });
        }
        l.record(Applied {
            command_id: "last".into(),
            status: ResultStatus::Succeeded,
            message: String::new(),
        })
        .unwrap();
        assert_eq!(l.saved.applied.len(), MAX_APPLIED);
        assert!(l.applied("c0").is_none() && l.applied("last").is_some());
    }
}
