//! Backup providers behind one trait. A provider stores one snapshot of a set of
//! absolute paths per backup, lists its backups, and restores a path of a backup
//! into a directory (the orchestration then swaps it into place exactly).

mod borg;
mod command;
mod local;
#[cfg(test)]
pub(crate) mod memory;
mod restic;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::ProviderConfig;
use crate::engine::Keep;
use crate::error::Result;
use crate::event::Reporter;

/// One backup as listed.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Listed {
    pub name: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`; empty when the provider does not say.
    pub time: String,
    pub states: Vec<String>,
    pub reason: Option<String>,
    /// Bytes the backup added to the repository, when known.
    pub size: Option<u64>,
    /// State folders that did not exist when the backup was made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// What to store.
#[derive(Debug, Clone)]
pub struct SnapshotRequest {
    pub name: String,
    pub machine: String,
    pub time: String,
    pub paths: Vec<PathBuf>,
    pub states: Vec<String>,
    pub reason: String,
    pub excludes: Vec<String>,
    /// State folders that do not exist (recorded with the snapshot).
    pub missing: Vec<PathBuf>,
}

impl SnapshotRequest {
    /// Tags stored with the snapshot: `clan`, `state:<s>`, `reason:<r>`,
    /// `missing:<folder>` (percent-encoded).
    pub fn tags(&self) -> Vec<String> {
        let mut tags = vec!["clan".to_string()];
        tags.extend(self.states.iter().map(|s| format!("state:{s}")));
        tags.push(format!("reason:{}", self.reason));
        tags.extend(
            self.missing
                .iter()
                .map(|m| format!("missing:{}", encode(m))),
        );
        tags
    }
}

/// A path as one word without spaces or commas (for tags and archive comments).
pub(crate) fn encode(path: &Path) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'.')
        .remove(b'-')
        .remove(b'_');
    use std::os::unix::ffi::OsStrExt;
    percent_encode(path.as_os_str().as_bytes(), KEEP).to_string()
}

/// The path `encode` made (shown lossily when it is not UTF-8).
pub(crate) fn decode(word: &str) -> String {
    percent_encoding::percent_decode_str(word)
        .decode_utf8_lossy()
        .into_owned()
}

/// What the tags say: states, reason and missing folders.
pub(crate) fn from_tags(tags: &[String]) -> (Vec<String>, Option<String>, Vec<String>) {
    let states = tags
        .iter()
        .filter_map(|t| t.strip_prefix("state:"))
        .map(str::to_string)
        .collect();
    let reason = tags
        .iter()
        .find_map(|t| t.strip_prefix("reason:"))
        .map(str::to_string);
    let missing = tags
        .iter()
        .filter_map(|t| t.strip_prefix("missing:"))
        .map(decode)
        .collect();
    (states, reason, missing)
}

pub trait Provider {
    fn name(&self) -> &str;
    fn create(&self, req: &SnapshotRequest, reporter: &dyn Reporter) -> Result<Listed>;
    /// Backups, oldest first.
    fn list(&self) -> Result<Vec<Listed>>;
    /// Whether `name` names one of the backups (as listed, or `dest::name`).
    fn has_backup(&self, name: &str) -> Result<bool> {
        Ok(self
            .list()?
            .iter()
            .any(|b| b.name == name || b.name.ends_with(&format!("::{name}"))))
    }
    /// Puts the contents of `path` as it was in backup `name` into `dest` (a new
    /// directory).
    fn restore_path(
        &self,
        name: &str,
        path: &Path,
        dest: &Path,
        reporter: &dyn Reporter,
    ) -> Result<()>;
    /// Paths below `folders` that were one file (hard links) in backup `name`, as
    /// groups of two or more absolute paths. Restores bring folders back one by one;
    /// the orchestration links these again across them.
    fn link_groups(&self, _name: &str, _folders: &[PathBuf]) -> Result<Vec<Vec<PathBuf>>> {
        Ok(Vec::new())
    }
    /// True for providers that can only restore in place (not exactly).
    fn restores_in_place_only(&self) -> bool {
        false
    }
    /// For providers that restore in place only: restore these folders.
    fn restore_in_place(
        &self,
        _name: &str,
        _folders: &[PathBuf],
        _reporter: &dyn Reporter,
    ) -> Result<()> {
        Ok(())
    }
    /// For drills: `restore_path` once `room` accepted the size of the files, then
    /// every entry the backup says `path` holds passed to `check`. `false` when the
    /// provider cannot say what its backups hold (command providers).
    fn restore_checked(
        &self,
        _name: &str,
        _path: &Path,
        _dest: &Path,
        _reporter: &dyn Reporter,
        _room: &(dyn Fn(u64) -> Result<()> + Sync),
        _check: &mut crate::drill::Verifier,
    ) -> Result<bool> {
        Ok(false)
    }
    /// Verifies the repository; a short report.
    fn check(&self, read_data: bool) -> Result<String>;
    /// Removes backups beyond `keep` (never the newest); returns their names.
    fn prune(&self, keep: &Keep) -> Result<Vec<String>>;
    /// Removes one backup (and the data only it used).
    fn forget(&self, name: &str) -> Result<()>;
}

/// The provider `name` as machine `owner` sees it: listing, retention and restore
/// see only `owner`'s backups, though several machines may share a repository
/// (the command provider's own commands decide for themselves).
/// `state_dir` is clan's staging directory (the borg provider writes pinned host
/// keys there).
pub fn open(
    name: &str,
    config: &ProviderConfig,
    owner: &str,
    state_dir: &Path,
) -> Box<dyn Provider> {
    match config {
        ProviderConfig::Restic(c) => Box::new(restic::Restic::new(name, c, owner)),
        ProviderConfig::Borg(c) => Box::new(borg::Borg::new(name, c, owner, state_dir)),
        ProviderConfig::Local(c) => Box::new(local::Local::new(name, c, owner)),
        ProviderConfig::Command(c) => Box::new(command::Command::new(name, c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_folders_survive_tags_and_comments_as_one_word() {
        let odd = Path::new("/srv/a b,c%d/é");
        let word = encode(odd);
        assert!(!word.contains([' ', ',']), "{word}");
        assert_eq!(decode(&word), "/srv/a b,c%d/é");
        let req = SnapshotRequest {
            name: "n".into(),
            machine: "m".into(),
            time: String::new(),
            paths: vec![],
            states: vec!["s".into()],
            reason: "explicit".into(),
            excludes: vec![],
            missing: vec![odd.into(), "/plain".into()],
        };
        let (states, reason, missing) = from_tags(&req.tags());
        assert_eq!(states, ["s"]);
        assert_eq!(reason.as_deref(), Some("explicit"));
        assert_eq!(missing, ["/srv/a b,c%d/é", "/plain"]);
    }
}
