//! Master keys kept in memory-backed storage between runs, so that a re-run does not
//! derive the key again: scrypt with restic's parameters is ~0.3 s of one core on
//! every open, the largest part of an unchanged backup's CPU (bench/README.md).
//!
//! Where: `/run/clan/keys` for root, `$XDG_RUNTIME_DIR/clan/keys` for other users
//! (none without it): tmpfs, gone at reboot, never on a disk that is backed up or
//! stolen. The folder is the user's, mode 0700; one another user owns or can read
//! is not used. Files are written 0600 and read without following links.
//!
//! What: one file per repository location (named by its SHA-256): the master key,
//! the key file the password opened, and the password file's identity (device,
//! inode, size, mtime, ctime). A cached key is used only while the password file
//! is that same file, unchanged (writing it changes its ctime, which no user can
//! set), and its key file is still in the repository: a password removed from the
//! repository no longer opens it, as without the cache. A cached key that does not
//! open the repository is removed.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustic_core::repofile::MasterKey;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::safe_fs::Dir;

#[derive(Serialize, Deserialize)]
struct Cached {
    key_file: String,
    password_file: String,
    master: MasterKey,
}

/// The cache folder of this user, or `None` when there is none to use.
pub struct KeyCache {
    dir: PathBuf,
}

impl KeyCache {
    /// The user's cache: `/run/clan/keys` for root, below `$XDG_RUNTIME_DIR` else.
    pub fn for_user() -> Option<Self> {
        let dir = if rustix::process::geteuid().is_root() {
            PathBuf::from("/run/clan/keys")
        } else {
            PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?).join("clan/keys")
        };
        Some(Self { dir })
    }

    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The folder (created if missing and `create`); `None` (with a note in the log)
    /// when it is not there or not the user's alone.
    fn open(&self, create: bool) -> Option<Dir> {
        let dir = if create {
            Dir::create_all(&self.dir, 0o700).map(|(dir, _)| Some(dir))
        } else {
            Dir::open(&self.dir)
        }
        .inspect_err(|e| tracing::debug!("key cache {}: {e}", self.dir.display()))
        .ok()??;
        let meta = dir.meta().ok()?;
        if meta.uid != rustix::process::geteuid().as_raw() || meta.mode & 0o077 != 0 {
            tracing::warn!(
                "not keeping repository keys in {}: it is not this user's alone (owner {}, mode {:o})",
                self.dir.display(),
                meta.uid,
                meta.mode & 0o7777
            );
            return None;
        }
        Some(dir)
    }

    /// The cached master key of `repository`, if `password_file` is the one it was
    /// derived from and `key_files` (the repository's) still hold its key file.
    pub fn get(
        &self,
        repository: &str,
        password_file: &Path,
        key_files: &[String],
    ) -> Option<MasterKey> {
        let identity = identity(password_file)?;
        let data = self.open(false)?.read_file(&name(repository)).ok()??;
        let cached: Cached = serde_json::from_slice(&data).ok()?;
        (cached.password_file == identity && key_files.contains(&cached.key_file))
            .then_some(cached.master)
    }

    /// Keeps `master`, opened by `password_file` through `key_file`. A cache that
    /// cannot be written is skipped: the next run derives the key again.
    pub fn put(&self, repository: &str, password_file: &Path, key_file: &str, master: &MasterKey) {
        let (Some(identity), Some(dir)) = (identity(password_file), self.open(true)) else {
            return;
        };
        let cached = Cached {
            key_file: key_file.to_string(),
            password_file: identity,
            master: master.clone(),
        };
        let Ok(data) = serde_json::to_vec(&cached) else {
            return;
        };
        if let Err(e) = dir.write_file(&name(repository), &data) {
            tracing::debug!("key cache: {e}");
        }
    }

    pub fn forget(&self, repository: &str) {
        if let Some(dir) = self.open(false) {
            let _ = dir.remove(&name(repository));
        }
    }
}

fn name(repository: &str) -> OsString {
    let hash = sha2::Sha256::digest(repository.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    hex.into()
}

/// The password file as it is now: device, inode, size, mtime and ctime (ns).
fn identity(path: &Path) -> Option<String> {
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{}:{}:{}:{}.{:09}:{}.{:09}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

#[cfg(test)]
mod tests {
    use super::super::Rustic;
    use super::*;
    use crate::engine::{Engine, RepoSpec};
    use std::os::unix::fs::PermissionsExt;

    fn master() -> MasterKey {
        MasterKey::new()
    }

    #[test]
    fn a_key_is_used_only_with_the_same_password_file_and_key_file() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = KeyCache::at(tmp.path().join("keys"));
        let pw = tmp.path().join("pw");
        std::fs::write(&pw, "secret\n").unwrap();
        let keys = vec!["k1".to_string(), "k2".to_string()];
        assert!(cache.get("/repo", &pw, &keys).is_none());
        cache.forget("/repo");
        assert!(
            !tmp.path().join("keys").exists(),
            "a lookup creates no folder"
        );
        let m = master();
        cache.put("/repo", &pw, "k1", &m);
        let file = tmp.path().join("keys").join(name("/repo"));
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        let got = cache.get("/repo", &pw, &keys).expect("cached");
        assert_eq!(got.encrypt, m.encrypt);
        // Another repository, a removed key file, a rewritten password file: no key.
        assert!(cache.get("/other", &pw, &keys).is_none());
        assert!(cache.get("/repo", &pw, &keys[1..]).is_none());
        std::fs::write(&pw, "secret\n").unwrap();
        assert!(cache.get("/repo", &pw, &keys).is_none());
        cache.put("/repo", &pw, "k1", &m);
        assert!(cache.get("/repo", &pw, &keys).is_some());
        cache.forget("/repo");
        assert!(cache.get("/repo", &pw, &keys).is_none());
    }

    #[test]
    fn a_folder_others_can_read_is_not_used() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cache = KeyCache::at(dir.clone());
        let pw = tmp.path().join("pw");
        std::fs::write(&pw, "secret\n").unwrap();
        cache.put("/repo", &pw, "k1", &master());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        // One another user owns (root can give it away), even if only theirs.
        if rustix::process::geteuid().is_root() {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(&dir, Some(54321), Some(54321)).unwrap();
            cache.put("/repo", &pw, "k1", &master());
            assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        }
    }

    /// A cached master key opens the repository while its password file and key file
    /// are unchanged (here even though the file now holds a wrong password, which only
    /// the cache can explain); not once the key file is gone; and a cached key that
    /// does not open the repository is removed.
    #[test]
    fn the_key_cache_is_used_only_while_password_file_and_key_file_are_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let cache_dir = tmp.path().join("keys");
        let engine = || {
            let spec = RepoSpec {
                repository: tmp.path().join("repo").display().to_string(),
                password_file: tmp.path().join("pw"),
            };
            Rustic::new(spec).keeping_keys(Some(KeyCache::at(cache_dir.clone())))
        };
        std::fs::write(tmp.path().join("pw"), "secret\n").unwrap();
        engine().ensure_initialized().unwrap();
        assert!(engine().snapshots().unwrap().is_empty());
        let cached: Vec<_> = std::fs::read_dir(&cache_dir).unwrap().collect();
        assert_eq!(cached.len(), 1, "the password's key was kept");
        let entry = cached[0].as_ref().unwrap().path();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();

        // A wrong password in a rewritten file: the cached entry, made for the file as
        // it is now, opens the repository; without the cache the password is refused.
        std::fs::write(tmp.path().join("pw"), "wrong\n").unwrap();
        let forge = |json: &serde_json::Value| {
            let mut json = json.clone();
            json["password_file"] = identity(&tmp.path().join("pw")).unwrap().into();
            std::fs::write(&entry, serde_json::to_vec(&json).unwrap()).unwrap();
        };
        forge(&json);
        assert!(engine().snapshots().is_ok(), "opened by the cached key");
        let plain = Rustic::new(RepoSpec {
            repository: tmp.path().join("repo").display().to_string(),
            password_file: tmp.path().join("pw"),
        });
        assert!(plain.snapshots().is_err(), "the wrong password is refused");

        // The key file gone (as after `restic key remove`): the cache is not used.
        let mut other = json.clone();
        other["key_file"] = "0".repeat(64).into();
        forge(&other);
        assert!(engine().snapshots().is_err());

        // A cached key that does not open the repository is removed, and the password
        // is used instead.
        std::fs::write(tmp.path().join("pw"), "secret\n").unwrap();
        let mut bad = json.clone();
        bad["master"] = serde_json::to_value(rustic_core::repofile::MasterKey::new()).unwrap();
        forge(&bad);
        assert!(engine().snapshots().unwrap().is_empty());
        let now: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
        assert_eq!(now["master"], json["master"], "the wrong key was replaced");
    }
}
