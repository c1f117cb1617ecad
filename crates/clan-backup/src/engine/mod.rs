//! The embedded backup engine, behind a narrow trait: the restic repository format,
//! implemented today by `rustic_core` (pinned exactly; its API changes every few
//! months, and this trait keeps that churn inside `rustic.rs`).

pub mod retention;
mod rustic;

use std::path::{Path, PathBuf};

pub use rustic::{KeyCache, Rustic};

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

/// What went wrong in the engine: kinds the provider acts on, each with its
/// one-line message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Another process holds a conflicting lock on the repository.
    #[error("{0}")]
    Locked(String),
    /// The repository's server cannot be reached (for SFTP: rclone could not
    /// connect, e.g. an unknown host key).
    #[error("{0}")]
    Unreachable(String),
    /// What the repository or the engine reported.
    #[error("{0}")]
    Repository(String),
}

impl From<String> for EngineError {
    fn from(message: String) -> Self {
        Self::Repository(message)
    }
}

pub type EngineResult<T> = Result<T, EngineError>;

pub trait Engine {
    /// Creates the repository when it does not exist yet.
    fn ensure_initialized(&self) -> EngineResult<()>;
    fn backup(
        &self,
        paths: &[PathBuf],
        label: &str,
        host: &str,
        tags: &[String],
        excludes: &[String],
        progress: Option<ProgressSender>,
    ) -> EngineResult<Snapshot>;
    fn snapshots(&self) -> EngineResult<Vec<Snapshot>>;
    /// Restores `path` (absolute, as backed up) of snapshot `id` to `dest`.
    fn restore(
        &self,
        id: &str,
        path: &Path,
        dest: &Path,
        progress: Option<ProgressSender>,
    ) -> EngineResult<()>;
    /// Paths below `paths` (absolute, as backed up) of snapshot `id` that were one
    /// file: groups of two or more.
    fn hard_links(&self, id: &str, paths: &[PathBuf]) -> EngineResult<Vec<Vec<PathBuf>>>;
    /// A drill's restore: `restore` once `room` accepted the size of the files
    /// (`false` and nothing written otherwise), then every entry `path` holds in
    /// the snapshot, with each file's blobs, passed to `each`.
    fn restore_checked(
        &self,
        id: &str,
        path: &Path,
        dest: &Path,
        progress: Option<ProgressSender>,
        room: &mut dyn FnMut(u64) -> bool,
        each: &mut dyn FnMut(crate::drill::Entry),
    ) -> EngineResult<bool>;
    fn check(&self, read_data: bool) -> EngineResult<()>;
    /// Forgets `host`'s snapshots beyond `keep` (never its newest) and prunes;
    /// returns the labels of the forgotten snapshots.
    fn forget(&self, host: &str, keep: &Keep) -> EngineResult<Vec<String>>;
    /// Forgets snapshot `id` and prunes what only it used.
    fn forget_one(&self, id: &str) -> EngineResult<()>;
}

/// Where the repository is and how to open it.
#[derive(Debug, Clone)]
pub struct RepoSpec {
    pub repository: String,
    pub password_file: PathBuf,
}

#[cfg(test)]
mod tests;
