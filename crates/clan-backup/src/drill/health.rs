//! `health.json` beside the staging directory (`/var/lib/clan/health.json` by
//! default): the newest drill of each provider and state, and the newest backup
//! and newest failed backup of each provider, read by `clan backups status`. Updated under a lock, written to a temporary file and renamed, so a
//! reader sees the old or the new file, never half of one. Root's and 0600: the
//! mismatches name paths of the machine's data.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DrillResult;
use crate::error::{Result, io};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// The newest drill per provider and state.
    #[serde(default)]
    pub drills: Vec<DrillResult>,
    /// The newest successful and the newest failed backup per provider and state.
    #[serde(default)]
    pub backups: Vec<BackupRecord>,
}

/// One backup as health.json remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    pub provider: String,
    /// When it ended (UTC).
    pub time: String,
    pub ok: bool,
    /// Its name, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    pub state: String,
    /// Bytes it added to the repository, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where the machine's health file is, given its staging directory.
pub fn path(staging: &Path) -> PathBuf {
    staging
        .parent()
        .unwrap_or(Path::new("/var/lib/clan"))
        .join("health.json")
}

/// The health file; empty when there is none yet.
pub fn read(path: &Path) -> Result<Health> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            crate::BackupError::Config(format!(
                "{} is damaged ({e}); remove it, the next drill writes it again",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Health::default()),
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

/// Records drill `results`, replacing the older drill of each provider and state.
pub fn record(path: &Path, results: &[DrillResult]) -> Result<()> {
    update(path, |health| {
        for r in results {
            health
                .drills
                .retain(|d| !(d.provider == r.provider && d.state == r.state));
            health.drills.push(r.clone());
        }
        health
            .drills
            .sort_by(|a, b| (&a.provider, &a.state).cmp(&(&b.provider, &b.state)));
    })
}

/// Records backups, replacing the older success or failure of each provider and
/// state.
pub fn record_backups(path: &Path, records: &[BackupRecord]) -> Result<()> {
    update(path, |health| {
        for r in records {
            health
                .backups
                .retain(|b| !(b.provider == r.provider && b.state == r.state && b.ok == r.ok));
            health.backups.push(r.clone());
        }
        health
            .backups
            .sort_by(|a, b| (&a.provider, &a.state, a.ok).cmp(&(&b.provider, &b.state, b.ok)));
    })
}

/// Reads, changes and writes the file under its lock.
fn update(path: &Path, change: impl FnOnce(&mut Health)) -> Result<()> {
    let dir = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let lock_path = path.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&lock_path)
        .map_err(io(format!("opening {}", lock_path.display())))?;
    lock.lock()
        .map_err(io(format!("locking {}", lock_path.display())))?;
    // A damaged file is replaced: the drills about to be recorded are the news.
    let mut health = read(path).unwrap_or_default();
    change(&mut health);
    let mut tmp = tempfile::Builder::new()
        .prefix(".health-")
        .tempfile_in(dir)
        .map_err(io(format!("writing into {}", dir.display())))?;
    let written = (|| {
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        tmp.write_all(&serde_json::to_vec_pretty(&health).expect("serialisable"))?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        File::open(dir)?.sync_all()
    })();
    written.map_err(io(format!("writing {}", path.display())))
}
