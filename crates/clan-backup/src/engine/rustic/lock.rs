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
//! The lock files are written where restic writes them: `locks/` of a repository on
//! a local path, or of a REST server (`rest:`, and clan's SFTP repositories, which
//! go through a REST server of rclone's: serve.rs); rustic_core's backends cannot
//! address `locks/`, so this module talks to the directory or the server itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use aes256ctr_poly1305aes::Aes256CtrPoly1305Aes;
use aes256ctr_poly1305aes::aead::AeadInPlace;
use rustic_core::repofile::MasterKey;

use crate::engine::EngineError;
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

/// Where a repository's lock files are.
#[derive(Clone)]
pub enum Store {
    /// The `locks` directory of a repository on a local path.
    Dir(PathBuf),
    /// A REST server's repository: `url` (credentials included) ends with '/'.
    Rest {
        client: reqwest::blocking::Client,
        url: String,
    },
}

impl Store {
    pub fn rest(url: &str) -> Result<Store, String> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let url = if url.ends_with('/') {
            url.to_string()
        } else {
            format!("{url}/")
        };
        Ok(Store::Rest { client, url })
    }

    /// The names of the lock files (none when `locks/` does not exist yet).
    fn list(&self) -> Result<Vec<String>, String> {
        match self {
            Store::Dir(dir) => Ok(match std::fs::read_dir(dir) {
                Ok(entries) => entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(_) => Vec::new(),
            }),
            Store::Rest { client, url } => {
                let r = client
                    .get(format!("{url}locks/"))
                    .header("Accept", "application/vnd.x.restic.rest.v2")
                    .send()
                    .map_err(|e| rest_error("listing locks", e))?;
                if r.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(Vec::new());
                }
                let r = r
                    .error_for_status()
                    .map_err(|e| rest_error("listing locks", e))?;
                // Version 2 lists objects with a name; version 1 only names.
                let list: Vec<serde_json::Value> =
                    r.json().map_err(|e| rest_error("listing locks", e))?;
                Ok(list
                    .iter()
                    .filter_map(|v| v["name"].as_str().or(v.as_str()).map(str::to_string))
                    .collect())
            }
        }
    }

    fn read(&self, name: &str) -> Option<Vec<u8>> {
        match self {
            Store::Dir(dir) => std::fs::read(dir.join(name)).ok(),
            Store::Rest { client, url } => client
                .get(format!("{url}locks/{name}"))
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.bytes())
                .ok()
                .map(|b| b.to_vec()),
        }
    }

    fn write(&self, name: &str, data: Vec<u8>) -> Result<(), String> {
        match self {
            Store::Dir(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                std::fs::write(dir.join(name), data)
                    .map_err(|e| format!("writing a lock in {}: {e}", dir.display()))
            }
            Store::Rest { client, url } => client
                .post(format!("{url}locks/{name}"))
                .body(data)
                .send()
                .and_then(|r| r.error_for_status())
                .map(drop)
                .map_err(|e| rest_error("writing a lock", e)),
        }
    }

    fn remove(&self, name: &str) {
        match self {
            Store::Dir(dir) => {
                let _ = std::fs::remove_file(dir.join(name));
            }
            Store::Rest { client, url } => {
                let _ = client.delete(format!("{url}locks/{name}")).send();
            }
        }
    }
}

/// reqwest's message without the URL (which holds the server's credentials).
fn rest_error(what: &str, e: reqwest::Error) -> String {
    format!("{what} on the REST server: {}", e.without_url())
}

/// A lock held on a repository; released (its file removed) when dropped.
pub struct Held {
    store: Store,
    name: Arc<std::sync::Mutex<String>>,
    /// Dropping it wakes the refresher, which then ends (no polling: a backup's
    /// last step used to wait up to one poll interval for it).
    stop: Option<std::sync::mpsc::Sender<()>>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        self.store.remove(&self.name.lock().expect("lock name"));
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

/// The first live lock in `store` that conflicts with one of ours (`exclusive` or
/// not), not counting our own file `ours`.
fn conflict(
    store: &Store,
    master: &MasterKey,
    exclusive: bool,
    ours: &str,
) -> Result<Option<LockFile>, String> {
    Ok(store.list()?.iter().find_map(|name| {
        if name == ours {
            return None;
        }
        let lock = open(master, &store.read(name)?)?;
        ((exclusive || lock.exclusive) && !lock.stale()).then_some(lock)
    }))
}

fn write(store: &Store, master: &MasterKey, exclusive: bool) -> Result<String, String> {
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
    store.write(&name, data)?;
    Ok(name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Takes a lock on the repository `repo` (named so in messages) whose lock files
/// are in `store`.
pub fn acquire(
    store: Store,
    repo: &str,
    master: &MasterKey,
    exclusive: bool,
) -> Result<Held, EngineError> {
    let refuse = |l: LockFile| {
        EngineError::Locked(format!(
            "the repository {repo} is locked: {}. Wait for it to finish; if that process is \
             gone, `restic unlock` (or waiting 30 minutes) removes the lock",
            l.describe()
        ))
    };
    if let Some(l) = conflict(&store, master, exclusive, "")? {
        return Err(refuse(l));
    }
    let name = write(&store, master, exclusive)?;
    let found = conflict(&store, master, exclusive, &name);
    if !matches!(found, Ok(None)) {
        store.remove(&name);
    }
    if let Some(l) = found? {
        return Err(refuse(l));
    }
    let name = Arc::new(std::sync::Mutex::new(name));
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let refresher = {
        let (store, name, master) = (store.clone(), name.clone(), master.clone());
        std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(REFRESH) {
                if let Ok(new) = write(&store, &master, exclusive) {
                    let old = std::mem::replace(&mut *name.lock().expect("lock name"), new);
                    store.remove(&old);
                }
            }
        })
    };
    Ok(Held {
        store,
        name,
        stop: Some(stop),
        refresher: Some(refresher),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, RepoSpec, Rustic};
    use std::process::{Command, Stdio};

    /// The restic CLI and clan respect each other's locks, both ways, on the
    /// repository `engine_repo` (clan's location; the CLI's `restic_repo` with
    /// options), whose lock files are in the local directory `locks`.
    fn respect_each_other(
        root: &Path,
        engine_repo: &str,
        restic_repo: &str,
        restic_opts: &[String],
        locks: &Path,
    ) {
        let pw = root.join("pw");
        std::fs::write(&pw, "secret\n").unwrap();
        let engine = Rustic::new(RepoSpec {
            repository: engine_repo.to_string(),
            password_file: pw.clone(),
        });
        engine.ensure_initialized().unwrap();
        engine.snapshots().unwrap();
        let restic = |args: &[&str]| {
            let mut c = Command::new("restic");
            c.arg("-r")
                .arg(restic_repo)
                .arg("--password-file")
                .arg(&pw)
                .args(restic_opts)
                .arg("--no-cache")
                .args(args);
            c
        };

        // clan's exclusive lock stops the restic CLI.
        let held = engine
            .lock(true)
            .unwrap()
            .expect("the repository is locked");
        assert_eq!(
            std::fs::read_dir(locks).unwrap().count(),
            1,
            "{engine_repo}"
        );
        let out = restic(&["backup"]).arg(&pw).output().unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("locked"),
            "{engine_repo}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        drop(held);
        assert_eq!(
            std::fs::read_dir(locks).unwrap().count(),
            0,
            "{engine_repo}"
        );

        // A restic backup waiting on its input holds a lock: clan's exclusive lock
        // (forget, prune) is refused until it ends.
        let mut child = restic(&["backup", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::fs::read_dir(locks).map(|d| d.count()).unwrap_or(0) == 0 {
            assert!(std::time::Instant::now() < deadline, "restic took no lock");
            std::thread::sleep(Duration::from_millis(50));
        }
        let keep = crate::engine::Keep {
            last: 1,
            ..Default::default()
        };
        let e = engine.forget("m", &keep).unwrap_err();
        assert!(
            matches!(&e, EngineError::Locked(m) if m.contains("is locked: a lock of")),
            "{engine_repo}: {e}"
        );
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, b"some data").unwrap();
        drop(stdin);
        assert!(child.wait().unwrap().success());
        engine.forget("m", &keep).unwrap();
    }

    #[test]
    fn the_restic_cli_and_clan_respect_each_others_locks_on_a_local_path() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        let r = repo.display().to_string();
        respect_each_other(tmp.path(), &r, &r, &[], &repo.join("locks"));
    }

    #[test]
    fn the_restic_cli_and_clan_respect_each_others_locks_on_a_rest_server() {
        let tmp = tempfile::tempdir().unwrap();
        let port = clan_lab::free_port();
        let served = tmp.path().join("served");
        std::fs::create_dir_all(&served).unwrap();
        let mut server = clan_lab::Server(
            Command::new("rclone")
                .args(["serve", "restic", "--addr", &format!("127.0.0.1:{port}")])
                .arg(&served)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        clan_lab::wait_listening(port, &mut server);
        let url = format!("rest:http://127.0.0.1:{port}/repo/");
        respect_each_other(tmp.path(), &url, &url, &[], &served.join("repo/locks"));
    }

    /// Over SFTP, clan's engine goes through a REST server of rclone's (serve.rs)
    /// that it starts itself; its lock files land in the repository on the server.
    #[test]
    fn the_restic_cli_and_clan_respect_each_others_locks_over_sftp() {
        let tmp = tempfile::tempdir().unwrap();
        let ssh = clan_lab::Sshd::start(tmp.path());
        let repo = tmp.path().join("sftp-repo");
        let engine_repo = format!(
            r#"rclone::sftp,host="127.0.0.1",user="root",port={},key_file="{}",known_hosts_file="{}":{}"#,
            ssh.port,
            ssh.client_key.display(),
            ssh.known_hosts.display(),
            repo.display()
        );
        let command = format!(
            "sftp.command=ssh root@127.0.0.1 -p {} -i {} -o UserKnownHostsFile={} \
             -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes -s sftp",
            ssh.port,
            ssh.client_key.display(),
            ssh.known_hosts.display()
        );
        respect_each_other(
            tmp.path(),
            &engine_repo,
            &format!("sftp:root@127.0.0.1:{}", repo.display()),
            &["-o".into(), command],
            &repo.join("locks"),
        );
    }

    #[test]
    fn locks_round_trip_and_conflict_as_restic_says() {
        let tmp = tempfile::tempdir().unwrap();
        let master = MasterKey::new();
        let store = Store::Dir(tmp.path().join("locks"));
        let acquire = |exclusive| acquire(store.clone(), "r", &master, exclusive);
        let shared = acquire(false).unwrap();
        let second = acquire(false).unwrap();
        let e = acquire(true).err().unwrap();
        assert!(
            matches!(&e, EngineError::Locked(m) if m.contains("is locked: a lock of")),
            "{e}"
        );
        drop((shared, second));
        let exclusive = acquire(true).unwrap();
        assert!(acquire(false).is_err());
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
