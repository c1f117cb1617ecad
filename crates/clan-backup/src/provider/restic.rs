//! The `restic` provider: the embedded engine.

use std::path::Path;

use super::{Listed, Provider, SnapshotRequest, from_tags};
use crate::config::ResticConfig;
use crate::engine::{Engine, Keep, ProgressSender, RepoSpec, Rustic, Snapshot};
use crate::error::{BackupError, Result};
use crate::event::{Event, Reporter};

pub struct Restic {
    name: String,
    engine: Rustic,
}

impl Restic {
    pub fn new(name: &str, c: &ResticConfig) -> Self {
        let spec = RepoSpec {
            repository: c.repository.clone(),
            password_file: c.password_file.clone(),
        };
        Self {
            name: name.to_string(),
            engine: Rustic::new(spec),
        }
    }

    fn fail(&self, message: String) -> BackupError {
        BackupError::Provider {
            provider: self.name.clone(),
            message,
        }
    }

    fn find(&self, name: &str) -> Result<Snapshot> {
        let snaps = self.engine.snapshots().map_err(|e| self.fail(e))?;
        snaps
            .into_iter()
            .find(|s| {
                s.label == name
                    || (name.len() >= 8
                        && name.bytes().all(|b| b.is_ascii_hexdigit())
                        && s.id.starts_with(name))
            })
            .ok_or_else(|| BackupError::NoSuchBackup {
                provider: self.name.clone(),
                name: name.to_string(),
            })
    }
}

/// Runs `work` on a scoped thread while its progress is reported from this one.
fn with_progress<T: Send>(
    reporter: &dyn Reporter,
    work: impl FnOnce(ProgressSender) -> std::result::Result<T, String> + Send,
) -> std::result::Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || work(tx));
        for u in rx {
            reporter.report(Event::Progress {
                step: u.title,
                done: u.done,
                total: u.total,
                bytes: u.bytes,
            });
        }
        worker
            .join()
            .unwrap_or_else(|_| Err("the backup engine panicked".into()))
    })
}

fn listed(s: Snapshot) -> Listed {
    let (states, reason) = from_tags(&s.tags);
    Listed {
        name: if s.label.is_empty() {
            s.id[..8].to_string()
        } else {
            s.label
        },
        time: s.time_utc,
        states,
        reason,
        size: s.added_bytes,
    }
}

impl Provider for Restic {
    fn name(&self) -> &str {
        &self.name
    }

    fn create(&self, req: &SnapshotRequest, reporter: &dyn Reporter) -> Result<Listed> {
        self.engine.ensure_initialized().map_err(|e| self.fail(e))?;
        let snap = with_progress(reporter, |tx| {
            self.engine.backup(
                &req.paths,
                &req.name,
                &req.machine,
                &req.tags(),
                &req.excludes,
                Some(tx),
            )
        })
        .map_err(|e| self.fail(e))?;
        Ok(listed(snap))
    }

    fn list(&self) -> Result<Vec<Listed>> {
        Ok(self
            .engine
            .snapshots()
            .map_err(|e| self.fail(e))?
            .into_iter()
            .map(listed)
            .collect())
    }

    fn restore_path(
        &self,
        name: &str,
        path: &Path,
        dest: &Path,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let snap = self.find(name)?;
        with_progress(reporter, |tx| {
            self.engine.restore(&snap.id, path, dest, Some(tx))
        })
        .map_err(|e| self.fail(format!("restoring {}: {e}", path.display())))?;
        Ok(())
    }

    fn check(&self, read_data: bool) -> Result<String> {
        self.engine.check(read_data).map_err(|e| self.fail(e))?;
        Ok(if read_data {
            "repository and all data are intact".into()
        } else {
            "repository structure is intact".into()
        })
    }

    fn prune(&self, keep: &Keep) -> Result<Vec<String>> {
        self.engine.forget(keep).map_err(|e| self.fail(e))
    }
}
