//! A test double (tests only): a provider that keeps backups in memory, regular
//! files and directories only, so that the orchestration's unit tests run without
//! a repository. It can be told to fail restoring one path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Listed, Provider, SnapshotRequest};
use crate::engine::Keep;
use crate::error::{BackupError, Result};
use crate::event::Reporter;

/// One folder's contents: relative path -> file contents (`None`: a directory).
type Tree = BTreeMap<PathBuf, Option<Vec<u8>>>;

#[derive(Default)]
pub struct Memory {
    backups: Mutex<Vec<(Listed, BTreeMap<PathBuf, Tree>)>>,
    /// Restoring this folder fails (after writing part of it).
    pub fail_restoring: Option<PathBuf>,
}

fn read(dir: &Path, rel: &Path, out: &mut Tree) {
    for e in std::fs::read_dir(dir.join(rel))
        .expect("readable")
        .flatten()
    {
        let r = rel.join(e.file_name());
        let t = e.file_type().expect("a type");
        if t.is_dir() {
            if e.path().join(crate::scratch::MARKER).exists() {
                continue;
            }
            out.insert(r.clone(), None);
            read(dir, &r, out);
        } else if t.is_file() {
            out.insert(r, Some(std::fs::read(e.path()).expect("readable")));
        }
    }
}

impl Memory {
    pub fn names(&self) -> Vec<String> {
        let b = self.backups.lock().expect("backups");
        b.iter().map(|(l, _)| l.name.clone()).collect()
    }
}

impl Provider for Memory {
    fn name(&self) -> &str {
        "memory"
    }

    fn create(&self, req: &SnapshotRequest, _: &dyn Reporter) -> Result<Listed> {
        let mut folders = BTreeMap::new();
        for p in &req.paths {
            let mut tree = Tree::new();
            read(p, Path::new(""), &mut tree);
            folders.insert(p.clone(), tree);
        }
        let listed = Listed {
            name: req.name.clone(),
            time: req.time.clone(),
            states: req.states.clone(),
            reason: Some(req.reason.clone()),
            size: None,
            missing: req
                .missing
                .iter()
                .map(|m| m.display().to_string())
                .collect(),
        };
        self.backups
            .lock()
            .expect("backups")
            .push((listed.clone(), folders));
        Ok(listed)
    }

    fn list(&self) -> Result<Vec<Listed>> {
        let b = self.backups.lock().expect("backups");
        Ok(b.iter().map(|(l, _)| l.clone()).collect())
    }

    fn restore_path(&self, name: &str, path: &Path, dest: &Path, _: &dyn Reporter) -> Result<()> {
        let b = self.backups.lock().expect("backups");
        let (_, folders) = b.iter().find(|(l, _)| l.name == name).expect("a backup");
        let tree = folders.get(path).ok_or_else(|| BackupError::NotInBackup {
            name: name.to_string(),
            path: path.to_path_buf(),
        })?;
        let io = |e: std::io::Error| BackupError::Config(e.to_string());
        std::fs::create_dir(dest).map_err(io)?;
        for (rel, content) in tree {
            match content {
                None => std::fs::create_dir(dest.join(rel)).map_err(io)?,
                Some(data) => std::fs::write(dest.join(rel), data).map_err(io)?,
            }
            if self.fail_restoring.as_deref() == Some(path) {
                return Err(BackupError::Provider {
                    provider: "memory".into(),
                    message: format!("restoring {} failed (as told)", path.display()),
                });
            }
        }
        Ok(())
    }

    fn check(&self, _: bool) -> Result<String> {
        Ok("in memory".into())
    }

    fn prune(&self, _: &Keep) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn forget(&self, name: &str) -> Result<()> {
        self.backups
            .lock()
            .expect("backups")
            .retain(|(l, _)| l.name != name);
        Ok(())
    }
}
