//! The embedded backup engine, behind a narrow trait: the restic repository format,
//! implemented today by `rustic_core` (pinned exactly; its API changes every few
//! months, and this trait keeps that churn inside `rustic.rs`).

pub mod retention;
mod rustic;

use std::path::{Path, PathBuf};

pub use rustic::Rustic;

/// A snapshot as clan sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The repository's id (hex).
    pub id: String,
    /// clan's readable name (stored as the snapshot's label).
    pub label: String,
    pub time_utc: String,
    /// The machine that made it.
    pub host: String,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
    /// Bytes added to the repository by this snapshot, when known.
    pub added_bytes: Option<u64>,
    /// Files found unchanged against the parent snapshot (not read again), when known.
    pub unchanged_files: Option<u64>,
}

pub use clan_core::providers::Keep;

/// How far the engine is: sent over a channel while it works (it uses threads of
/// its own), turned into [`crate::Event::Progress`] by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressUpdate {
    pub title: String,
    pub done: u64,
    pub total: Option<u64>,
    pub bytes: bool,
}

pub type ProgressSender = std::sync::mpsc::Sender<ProgressUpdate>;

pub trait Engine {
    /// Creates the repository when it does not exist yet.
    fn ensure_initialized(&self) -> Result<(), String>;
    fn backup(
        &self,
        paths: &[PathBuf],
        label: &str,
        host: &str,
        tags: &[String],
        excludes: &[String],
        progress: Option<ProgressSender>,
    ) -> Result<Snapshot, String>;
    fn snapshots(&self) -> Result<Vec<Snapshot>, String>;
    /// Restores `path` (absolute, as backed up) of snapshot `id` to `dest`.
    fn restore(
        &self,
        id: &str,
        path: &Path,
        dest: &Path,
        progress: Option<ProgressSender>,
    ) -> Result<(), String>;
    /// Paths below `paths` (absolute, as backed up) of snapshot `id` that were one
    /// file: groups of two or more.
    fn hard_links(&self, id: &str, paths: &[PathBuf]) -> Result<Vec<Vec<PathBuf>>, String>;
    fn check(&self, read_data: bool) -> Result<(), String>;
    /// Forgets `host`'s snapshots beyond `keep` (never its newest) and prunes;
    /// returns the labels of the forgotten snapshots.
    fn forget(&self, host: &str, keep: &Keep) -> Result<Vec<String>, String>;
}

/// Where the repository is and how to open it.
#[derive(Debug, Clone)]
pub struct RepoSpec {
    pub repository: String,
    pub password_file: PathBuf,
}

#[cfg(test)]
mod tests;
