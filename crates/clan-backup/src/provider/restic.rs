//! The `restic` provider: the embedded engine.

use std::path::{Path, PathBuf};

use super::{Listed, Provider, SnapshotRequest, from_tags};
use crate::config::ResticConfig;
use crate::engine::{
    Engine, EngineError, Keep, KeyCache, ProgressSender, RepoSpec, Rustic, Snapshot,
};
use crate::error::{BackupError, Result};
use crate::event::{Event, Reporter};

pub struct Restic {
    name: String,
    owner: String,
    engine: Rustic,
    /// For `sftp:` repositories, what to check when the server cannot be reached.
    sftp_hint: Option<String>,
    /// Files and directories the engine reads besides the folders.
    needs: Vec<PathBuf>,
    /// The owner's snapshots once listed (a restore looks a backup up several
    /// times); kept up to date by create and prune.
    listed: std::sync::Mutex<Option<Vec<Snapshot>>>,
}

impl Restic {
    pub fn new(name: &str, c: &ResticConfig, owner: &str) -> Self {
        let spec = RepoSpec {
            repository: backend_location(c),
            password_file: c.password_file.clone(),
        };
        let sftp_hint = parse_sftp(&c.repository).map(|(_, host, _, _)| {
            let known = c.ssh_known_hosts_file.clone().unwrap_or_else(|| "/root/.ssh/known_hosts".into());
            format!(
                "could not reach the SFTP server {host}: check that its host key is in {} and that the key {} is authorized there",
                known.display(),
                c.ssh_key_file.as_ref().map(|k| k.display().to_string()).unwrap_or_else(|| "(ssh-agent)".into())
            )
        });
        let mut needs = vec![c.password_file.clone()];
        needs.extend(c.ssh_key_file.clone());
        needs.extend(c.ssh_known_hosts_file.clone());
        if c.repository.starts_with('/') {
            needs.push(c.repository.clone().into());
        }
        Self {
            name: name.to_string(),
            owner: owner.to_string(),
            engine: Rustic::new(spec).keeping_keys(KeyCache::for_user()),
            sftp_hint,
            needs,
            listed: std::sync::Mutex::new(None),
        }
    }

    fn fail(&self, e: EngineError) -> BackupError {
        let message = match (&e, &self.sftp_hint) {
            (EngineError::Unreachable(m), Some(hint)) => format!("{hint}\n{m}"),
            _ => e.to_string(),
        };
        BackupError::Provider {
            provider: self.name.clone(),
            message,
        }
    }

    /// Snapshot `name`, which must hold `path`.
    fn held(&self, name: &str, path: &Path) -> Result<Snapshot> {
        let snap = self.find(name)?;
        if !snap.paths.iter().any(|p| Path::new(p) == path) {
            return Err(BackupError::NotInBackup {
                name: name.to_string(),
                path: path.to_path_buf(),
            });
        }
        Ok(snap)
    }

    /// A failed restore of `path`, named.
    fn restoring(&self, path: &Path, e: EngineError) -> BackupError {
        let what = format!("restoring {}: ", path.display());
        self.fail(match e {
            EngineError::Repository(m) => EngineError::Repository(what + &m),
            other => other,
        })
    }

    /// The owner's snapshots.
    fn own(&self) -> Result<Vec<Snapshot>> {
        let mut listed = self.listed.lock().expect("listed");
        if let Some(snaps) = listed.as_ref() {
            return Ok(snaps.clone());
        }
        let mut snaps = self.engine.snapshots().map_err(|e| self.fail(e))?;
        snaps.retain(|s| s.host == self.owner);
        *listed = Some(snaps.clone());
        Ok(snaps)
    }

    fn find(&self, name: &str) -> Result<Snapshot> {
        self.own()?
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
                machine: self.owner.clone(),
            })
    }
}

/// The engine's location for a repository. `sftp:` goes through rclone's SFTP client
/// (an on-the-fly remote), with the key and known_hosts given, so that the server's
/// host key is verified.
fn backend_location(c: &ResticConfig) -> String {
    let Some((user, host, port, path)) = parse_sftp(&c.repository) else {
        return c.repository.clone();
    };
    let quote = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
    let mut params = vec![format!("host={}", quote(&host))];
    if let Some(u) = user {
        params.push(format!("user={}", quote(&u)));
    }
    if let Some(p) = port {
        params.push(format!("port={p}"));
    }
    if let Some(k) = &c.ssh_key_file {
        params.push(format!("key_file={}", quote(&k.to_string_lossy())));
    }
    let known = c
        .ssh_known_hosts_file
        .clone()
        .unwrap_or_else(|| "/root/.ssh/known_hosts".into());
    params.push(format!(
        "known_hosts_file={}",
        quote(&known.to_string_lossy())
    ));
    format!("rclone::sftp,{}:{path}", params.join(","))
}

/// `sftp:[user@]host:/path` or `sftp://[user@]host[:port]/path`.
fn parse_sftp(repo: &str) -> Option<(Option<String>, String, Option<u16>, String)> {
    let split_user = |s: &str| match s.split_once('@') {
        Some((u, h)) => (Some(u.to_string()), h.to_string()),
        None => (None, s.to_string()),
    };
    if let Some(rest) = repo.strip_prefix("sftp://") {
        let (authority, path) = rest.split_at(rest.find('/')?);
        let (user, hostport) = split_user(authority);
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.parse().ok()?)),
            None => (hostport, None),
        };
        return Some((user, host, port, path.to_string()));
    }
    let rest = repo.strip_prefix("sftp:")?;
    let (authority, path) = rest.split_once(':')?;
    let (user, host) = split_user(authority);
    Some((user, host, None, path.to_string()))
}

/// Runs `work` on a scoped thread while its progress is reported from this one.
fn with_progress<T: Send>(
    reporter: &dyn Reporter,
    work: impl FnOnce(ProgressSender) -> std::result::Result<T, EngineError> + Send,
) -> std::result::Result<T, EngineError> {
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
            .unwrap_or_else(|_| Err(EngineError::Repository("the backup engine panicked".into())))
    })
}

fn listed(s: Snapshot) -> Listed {
    let (states, reason, missing) = from_tags(&s.tags);
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
        missing,
    }
}

impl Provider for Restic {
    fn name(&self) -> &str {
        &self.name
    }

    fn create(&self, req: &SnapshotRequest, reporter: &dyn Reporter) -> Result<Listed> {
        self.engine.ensure_initialized().map_err(|e| self.fail(e))?;
        let pinned = std::sync::atomic::AtomicBool::new(true);
        let snap = with_progress(reporter, |tx| {
            // The engine reads through descriptors, except rustic_core's archiver
            // (fixed-size chunkers), which reads by path on this thread and the ones
            // it starts: pinned, so that no link placed meanwhile redirects it.
            let done =
                crate::pin::this_thread(&req.paths, &self.needs).map_err(|e| e.to_string())?;
            pinned.store(done, std::sync::atomic::Ordering::Relaxed);
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
        if !pinned.into_inner()
            && self.engine.read_by_path()
            && rustix::process::geteuid().is_root()
        {
            reporter.report(Event::Warning {
                message: "cannot make a mount namespace here (no CAP_SYS_ADMIN): the folders were \
                          read by path, so a user who swapped a folder for a link during the \
                          backup could have redirected it"
                    .into(),
            });
        }
        if let Some(snaps) = self.listed.lock().expect("listed").as_mut() {
            snaps.push(snap.clone());
        }
        Ok(listed(snap))
    }

    fn list(&self) -> Result<Vec<Listed>> {
        Ok(self.own()?.into_iter().map(listed).collect())
    }

    /// Labels, and snapshot ids (8 or more hex digits).
    fn has_backup(&self, name: &str) -> Result<bool> {
        match self.find(name) {
            Ok(_) => Ok(true),
            Err(BackupError::NoSuchBackup { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn restore_path(
        &self,
        name: &str,
        path: &Path,
        dest: &Path,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let snap = self.held(name, path)?;
        with_progress(reporter, |tx| {
            self.engine.restore(&snap.id, path, dest, Some(tx))
        })
        .map_err(|e| self.restoring(path, e))
    }

    fn restore_checked(
        &self,
        name: &str,
        path: &Path,
        dest: &Path,
        reporter: &dyn Reporter,
        room: &(dyn Fn(u64) -> Result<()> + Sync),
        check: &mut crate::drill::Verifier,
    ) -> Result<bool> {
        let snap = self.held(name, path)?;
        let mut refused = None;
        let mut accept = |size| match room(size) {
            Ok(()) => true,
            Err(e) => {
                refused = Some(e);
                false
            }
        };
        with_progress(reporter, |tx| {
            let each = &mut |e: crate::drill::Entry| check.check(&e);
            self.engine
                .restore_checked(&snap.id, path, dest, Some(tx), &mut accept, each)
        })
        .map_err(|e| self.restoring(path, e))?;
        refused.map_or(Ok(true), Err)
    }

    fn link_groups(&self, name: &str, folders: &[PathBuf]) -> Result<Vec<Vec<PathBuf>>> {
        let snap = self.find(name)?;
        let held: Vec<PathBuf> = folders
            .iter()
            .filter(|f| snap.paths.iter().any(|p| Path::new(p) == f.as_path()))
            .cloned()
            .collect();
        self.engine
            .hard_links(&snap.id, &held)
            .map_err(|e| self.fail(e))
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
        *self.listed.lock().expect("listed") = None;
        self.engine
            .forget(&self.owner, keep)
            .map_err(|e| self.fail(e))
    }

    fn forget(&self, name: &str) -> Result<()> {
        let snap = self.find(name)?;
        *self.listed.lock().expect("listed") = None;
        self.engine.forget_one(&snap.id).map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sftp_locations_become_rclone_remotes_that_verify_host_keys() {
        let c = |repo: &str| ResticConfig {
            repository: repo.into(),
            ssh_key_file: Some("/k".into()),
            ssh_known_hosts_file: None,
            password_file: "/p".into(),
            keep: Keep::default(),
            start_at: None,
            drill_at: None,
        };
        assert_eq!(
            backend_location(&c("sftp://backup@nas:2222/srv/restic")),
            r#"rclone::sftp,host="nas",user="backup",port=2222,key_file="/k",known_hosts_file="/root/.ssh/known_hosts":/srv/restic"#
        );
        assert_eq!(
            backend_location(&c("sftp:nas:/srv/restic")),
            r#"rclone::sftp,host="nas",key_file="/k",known_hosts_file="/root/.ssh/known_hosts":/srv/restic"#
        );
        assert_eq!(backend_location(&c("/srv/restic")), "/srv/restic");
        assert_eq!(
            backend_location(&c("rest:http://h:8000/r")),
            "rest:http://h:8000/r"
        );
    }
}
