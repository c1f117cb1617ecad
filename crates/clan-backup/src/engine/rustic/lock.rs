//! restic's lock protocol, which rustic_core does not implement: so that clan and
//! the restic CLI (or two machines) never prune while another backs up.
//!
//! A lock is a file in `locks/`, named by the SHA-256 of its contents, holding
//! JSON (`time`, `exclusive`, `hostname`, `username`, `pid`, `uid`, `gid`)
//! encrypted with the repository's master key (restic's format: nonce,
//! AES-256-CTR, Poly1305-AES tag; repository version 2 may compress it with zstd
//! behind a `2` byte). A backup, restore or check takes a shared lock; forget and
//! prune an exclusive one. A lock conflicts with an exclusive one, and an exclusive
//! one with any. As in restic, a lock is stale when it is older than 30 minutes
//! or was made on this host by a process that no longer runs; a held lock is
//! refreshed every 5 minutes. After writing its lock, clan looks again and backs
//! off if a conflicting lock appeared meanwhile.
//!
//! Only repositories on a local path are locked: rustic_core's backends cannot
//! address `locks/` (a known gap for SFTP and REST repositories).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aes256ctr_poly1305aes::Aes256CtrPoly1305Aes;
use aes256ctr_poly1305aes::aead::AeadInPlace;
use rustic_core::repofile::MasterKey;
use serde::{Deserialize, Serialize};
use sha2::Digest;

const STALE: Duration = Duration::from_secs(30 * 60);
const REFRESH: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LockFile {
    time: String,
    exclusive: bool,
    hostname: String,
    #[serde(default)]
    username: String,
    pid: u32,
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    gid: u32,
}

/// A lock held on a repository; released (its file removed) when dropped.
pub struct Held {
    dir: PathBuf,
    name: Arc<std::sync::Mutex<String>>,
    stop: Arc<AtomicBool>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(self.dir.join(&*self.name.lock().expect("lock name")));
    }
}

fn key_bytes(master: &MasterKey) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(&master.encrypt);
    k[32..48].copy_from_slice(&master.mac.k);
    k[48..].copy_from_slice(&master.mac.r);
    k
}

fn open(master: &MasterKey, data: &[u8]) -> Option<LockFile> {
    if data.len() < 32 {
        return None;
    }
    let (nonce, rest) = data.split_at(16);
    let (body, tag) = rest.split_at(rest.len() - 16);
    let mut plain = body.to_vec();
    Aes256CtrPoly1305Aes::new((&key_bytes(master)).into())
        .decrypt_in_place_detached(nonce.into(), &[], &mut plain, tag.into())
        .ok()?;
    if plain.first() == Some(&2) {
        plain = zstd::decode_all(&plain[1..]).ok()?;
    }
    serde_json::from_slice(&plain).ok()
}

fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

impl LockFile {
    fn stale(&self) -> bool {
        let old = self
            .time
            .parse::<jiff::Timestamp>()
            .map(|t| {
                jiff::Timestamp::now().duration_since(t)
                    > jiff::SignedDuration::try_from(STALE).expect("fits")
            })
            .unwrap_or(false);
        let gone =
            self.hostname == hostname() && !Path::new(&format!("/proc/{}", self.pid)).exists();
        old || gone
    }

    fn describe(&self) -> String {
        format!(
            "{} lock of {} (process {}, user {}) since {}",
            if self.exclusive { "an exclusive" } else { "a" },
            self.hostname,
            self.pid,
            self.username,
            self.time
        )
    }
}

/// The first live lock in `dir` that conflicts with one of ours (`exclusive` or not),
/// not counting our own file `ours`.
fn conflict(dir: &Path, master: &MasterKey, exclusive: bool, ours: &str) -> Option<LockFile> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries.flatten().find_map(|e| {
        if e.file_name().to_string_lossy() == ours {
            return None;
        }
        let lock = open(master, &std::fs::read(e.path()).ok()?)?;
        ((exclusive || lock.exclusive) && !lock.stale()).then_some(lock)
    })
}

fn write(dir: &Path, master: &MasterKey, exclusive: bool) -> Result<String, String> {
    let lock = LockFile {
        time: jiff::Zoned::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.9f%:z")
            .to_string(),
        exclusive,
        hostname: hostname(),
        username: std::env::var("USER").unwrap_or_else(|_| "root".into()),
        pid: std::process::id(),
        uid: rustix::process::getuid().as_raw(),
        gid: rustix::process::getgid().as_raw(),
    };
    let data = super::key::encrypt(
        &key_bytes(master),
        &serde_json::to_vec(&lock).expect("serialises"),
    )?;
    let name = hex(&sha2::Sha256::digest(&data));
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    std::fs::write(dir.join(&name), data)
        .map_err(|e| format!("writing a lock in {}: {e}", dir.display()))?;
    Ok(name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Takes a lock on the repository at `repo` (a local path).
pub fn acquire(repo: &Path, master: &MasterKey, exclusive: bool) -> Result<Held, String> {
    let dir = repo.join("locks");
    let refuse = |l: LockFile| {
        format!(
            "the repository {} is locked: {}. Wait for it to finish; if that process is gone, \
             `restic unlock` (or waiting 30 minutes) removes the lock",
            repo.display(),
            l.describe()
        )
    };
    if let Some(l) = conflict(&dir, master, exclusive, "") {
        return Err(refuse(l));
    }
    let name = write(&dir, master, exclusive)?;
    if let Some(l) = conflict(&dir, master, exclusive, &name) {
        let _ = std::fs::remove_file(dir.join(&name));
        return Err(refuse(l));
    }
    let name = Arc::new(std::sync::Mutex::new(name));
    let stop = Arc::new(AtomicBool::new(false));
    let refresher = {
        let (dir, name, stop, master) = (dir.clone(), name.clone(), stop.clone(), master.clone());
        std::thread::spawn(move || {
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(200));
                waited += Duration::from_millis(200);
                if waited >= REFRESH {
                    waited = Duration::ZERO;
                    if let Ok(new) = write(&dir, &master, exclusive) {
                        let old = std::mem::replace(&mut *name.lock().expect("lock name"), new);
                        let _ = std::fs::remove_file(dir.join(old));
                    }
                }
            }
        })
    };
    Ok(Held {
        dir,
        name,
        stop,
        refresher: Some(refresher),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, RepoSpec, Rustic};
    use std::process::{Command, Stdio};

    /// The restic CLI and clan respect each other's locks, both ways.
    #[test]
    fn the_restic_cli_and_clan_respect_each_others_locks() {
        let tmp = tempfile::tempdir().unwrap();
        let pw = tmp.path().join("pw");
        std::fs::write(&pw, "secret\n").unwrap();
        let repo = tmp.path().join("repo");
        let engine = Rustic::new(RepoSpec {
            repository: repo.display().to_string(),
            password_file: pw.clone(),
        });
        engine.ensure_initialized().unwrap();
        let master = engine.key.get().unwrap().clone();
        let restic = |args: &[&str]| {
            let mut c = Command::new("restic");
            c.arg("-r")
                .arg(&repo)
                .arg("--password-file")
                .arg(&pw)
                .args(args);
            c.arg("--no-cache");
            c
        };

        // clan's exclusive lock stops the restic CLI.
        let held = acquire(&repo, &master, true).unwrap();
        let out = restic(&["backup"]).arg(&pw).output().unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("locked"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        drop(held);

        // A restic backup waiting on its input holds a lock: clan's exclusive lock
        // (forget, prune) is refused until it ends.
        let mut child = restic(&["backup", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let locks = repo.join("locks");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::fs::read_dir(&locks).map(|d| d.count()).unwrap_or(0) == 0 {
            assert!(std::time::Instant::now() < deadline, "restic took no lock");
            std::thread::sleep(Duration::from_millis(50));
        }
        let e = engine
            .forget(
                "m",
                &crate::engine::Keep {
                    last: 1,
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(e.contains("is locked: a lock of"), "{e}");
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, b"some data").unwrap();
        drop(stdin);
        assert!(child.wait().unwrap().success());
        engine
            .forget(
                "m",
                &crate::engine::Keep {
                    last: 1,
                    ..Default::default()
                },
            )
            .unwrap();
    }

    #[test]
    fn locks_round_trip_and_conflict_as_restic_says() {
        let tmp = tempfile::tempdir().unwrap();
        let master = MasterKey::new();
        let shared = acquire(tmp.path(), &master, false).unwrap();
        let second = acquire(tmp.path(), &master, false).unwrap();
        let e = acquire(tmp.path(), &master, true).err().unwrap();
        assert!(e.contains("is locked: a lock of"), "{e}");
        drop((shared, second));
        let exclusive = acquire(tmp.path(), &master, true).unwrap();
        assert!(acquire(tmp.path(), &master, false).is_err());
        drop(exclusive);
        assert_eq!(
            std::fs::read_dir(tmp.path().join("locks")).unwrap().count(),
            0
        );
        // A lock of a process that is gone is stale.
        let mut l: LockFile = serde_json::from_str(
            r#"{"time":"2026-01-01T00:00:00Z","exclusive":true,"hostname":"x","pid":1}"#,
        )
        .unwrap();
        assert!(l.stale(), "older than 30 minutes");
        l.time = jiff::Zoned::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.9f%:z")
            .to_string();
        assert!(!l.stale());
        l.hostname = hostname();
        l.pid = u32::MAX - 1;
        assert!(l.stale(), "its process is gone");
    }
}
