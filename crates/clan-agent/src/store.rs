//! The agent's own data in SQLite: device tokens (hashed), the pending new-device
//! key and the recovery key (hashes of their entropy), and jobs. Created and migrated
//! on open; a file that is not the agent's database is an error, never replaced.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::Digest;

use crate::AgentError;

/// The schema version this build writes.
const VERSION: i64 = 2;

pub struct Store {
    path: PathBuf,
    db: Mutex<Connection>,
}

/// A device with API access.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub name: String,
    /// Naive UTC time, as SelfPrivacy shows it (`2026-11-30T18:00:00.123456`).
    pub created_at: String,
}

/// A pending or recovery key (SelfPrivacy's two kinds of one-time secret).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyKind {
    NewDevice,
    Recovery,
}

impl KeyKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::NewDevice => "new_device",
            Self::Recovery => "recovery",
        }
    }
}

/// A stored key's limits (the secret itself is only a hash).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyStatus {
    pub created_at: jiff::Timestamp,
    pub expires_at: Option<jiff::Timestamp>,
    pub uses_left: Option<i64>,
}

impl KeyStatus {
    pub fn valid(&self, now: jiff::Timestamp) -> bool {
        self.expires_at.is_none_or(|e| e > now) && self.uses_left.is_none_or(|u| u > 0)
    }
}

/// A job as SelfPrivacy's API shows it: status CREATED, RUNNING, FINISHED or ERROR,
/// times naive local (`datetime.now().isoformat()`).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub uid: String,
    pub type_id: String,
    pub name: String,
    pub description: String,
    pub status: String,
    pub status_text: Option<String>,
    pub progress: Option<i32>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub result: Option<String>,
}

/// The machine's local time without a zone, microseconds, as Python's isoformat.
pub fn local_now() -> String {
    jiff::Zoned::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// How long finished jobs are kept (SelfPrivacy: 10 days).
const JOB_DAYS: i64 = 10;

fn hash(token: &str) -> String {
    hash_bytes(token.as_bytes())
}

fn hash_bytes(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 32 random bytes, base64url without padding (43 characters), as SelfPrivacy's.
fn new_token() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// UTC without a zone, as SelfPrivacy shows device creation dates.
fn naive_utc_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// Device names as SelfPrivacy keeps them: other characters than letters and digits
/// become '_', an empty name is "Unknown device".
pub fn device_name(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if n.is_empty() {
        "Unknown device".into()
    } else {
        n
    }
}

impl Store {
    /// Opens (or creates) `dir/agent.sqlite`. A directory made here is root's alone
    /// (0700), and the database file is its owner's alone (0600): jobs' messages
    /// name paths and hosts.
    pub fn open(dir: &Path) -> Result<Store, AgentError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let io = |context: String| move |source| AgentError::Io { context, source };
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io(format!("creating {}", dir.display())))?;
        }
        let path = dir.join("agent.sqlite");
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .and_then(|f| f.set_permissions(std::fs::Permissions::from_mode(0o600)))
                .map_err(io(format!("creating {}", path.display())))?;
        }
        let fail = |e: rusqlite::Error| AgentError::Store {
            path: path.display().to_string(),
            message: format!(
                "{e}; it is kept as it is — move it aside to start with an empty one (device \
                 tokens are then issued again)"
            ),
        };
        let db = Connection::open(&path).map_err(fail)?;
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(fail)?;
        if version > VERSION {
            return Err(AgentError::Store {
                path: path.display().to_string(),
                message: format!(
                    "written by a newer clan (schema {version}, this one knows {VERSION})"
                ),
            });
        }
        if version < 1 {
            db.execute_batch(
                "BEGIN;
                 CREATE TABLE tokens (
                     device TEXT PRIMARY KEY,
                     hash TEXT NOT NULL UNIQUE,
                     created_at TEXT NOT NULL
                 );
                 PRAGMA user_version = 1;
                 COMMIT;",
            )
            .map_err(fail)?;
        }
        if version < 2 {
            db.execute_batch(
                "BEGIN;
                 CREATE TABLE keys (
                     kind TEXT PRIMARY KEY,
                     hash TEXT NOT NULL,
                     created_at TEXT NOT NULL,
                     expires_at TEXT,
                     uses_left INTEGER
                 );
                 CREATE TABLE jobs (
                     uid TEXT PRIMARY KEY,
                     type_id TEXT NOT NULL,
                     name TEXT NOT NULL,
                     description TEXT NOT NULL,
                     status TEXT NOT NULL,
                     status_text TEXT,
                     progress INTEGER,
                     created_at TEXT NOT NULL,
                     updated_at TEXT NOT NULL,
                     finished_at TEXT,
                     error TEXT,
                     result TEXT
                 );
                 PRAGMA user_version = 2;
                 COMMIT;",
            )
            .map_err(fail)?;
        }
        // Jobs that ran when the agent last stopped will never finish.
        db.execute(
            "UPDATE jobs SET status = 'ERROR', error = 'The agent stopped while this job ran.', \
             finished_at = ?1, updated_at = ?1 WHERE status IN ('CREATED', 'RUNNING')",
            [local_now()],
        )
        .map_err(fail)?;
        Ok(Store {
            path,
            db: Mutex::new(db),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> AgentError + '_ {
        |e| AgentError::Store {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// A new token for a new device named after `name` (made unique); returns the
    /// device's name and the token, which is stored only as its hash.
    pub fn create_token(&self, name: &str) -> Result<(String, String), AgentError> {
        let db = self.db.lock().expect("database");
        let base = device_name(name);
        let mut device = base.clone();
        while db
            .query_row("SELECT 1 FROM tokens WHERE device = ?1", [&device], |_| {
                Ok(())
            })
            .optional()
            .map_err(self.err())?
            .is_some()
        {
            device = format!("{base}{}", rand::random_range(0..10u8));
        }
        let token = new_token();
        db.execute(
            "INSERT INTO tokens (device, hash, created_at) VALUES (?1, ?2, ?3)",
            params![device, hash(&token), naive_utc_now()],
        )
        .map_err(self.err())?;
        Ok((device, token))
    }

    /// The device a token belongs to.
    pub fn device_of(&self, token: &str) -> Result<Option<String>, AgentError> {
        let db = self.db.lock().expect("database");
        db.query_row(
            "SELECT device FROM tokens WHERE hash = ?1",
            [hash(token)],
            |r| r.get(0),
        )
        .optional()
        .map_err(self.err())
    }

    /// Registers a token made elsewhere (the `agent/token` var) for `device`; its
    /// hash replaces the device's old one. Nothing changes when it is already known.
    pub fn register_token(&self, device: &str, token: &str) -> Result<(), AgentError> {
        let db = self.db.lock().expect("database");
        db.execute(
            "INSERT INTO tokens (device, hash, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT(device) DO UPDATE SET hash = excluded.hash \
             WHERE tokens.hash != excluded.hash",
            params![device, hash(token), naive_utc_now()],
        )
        .map_err(self.err())?;
        Ok(())
    }

    /// A new token for `device`, which keeps its name and creation time.
    pub fn refresh_token(&self, device: &str) -> Result<Option<String>, AgentError> {
        let token = new_token();
        let db = self.db.lock().expect("database");
        let n = db
            .execute(
                "UPDATE tokens SET hash = ?1 WHERE device = ?2",
                params![hash(&token), device],
            )
            .map_err(self.err())?;
        Ok((n == 1).then_some(token))
    }

    /// Removes a device; false when there is none of that name.
    pub fn delete_device(&self, device: &str) -> Result<bool, AgentError> {
        let db = self.db.lock().expect("database");
        let n = db
            .execute("DELETE FROM tokens WHERE device = ?1", [device])
            .map_err(self.err())?;
        Ok(n == 1)
    }

    /// Stores a key (replacing the previous one of its kind) by its entropy's hash.
    pub fn set_key(
        &self,
        kind: KeyKind,
        entropy: &[u8],
        status: &KeyStatus,
    ) -> Result<(), AgentError> {
        let db = self.db.lock().expect("database");
        db.execute(
            "INSERT OR REPLACE INTO keys (kind, hash, created_at, expires_at, uses_left) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                kind.as_str(),
                hash_bytes(entropy),
                status.created_at.to_string(),
                status.expires_at.map(|t| t.to_string()),
                status.uses_left
            ],
        )
        .map_err(self.err())?;
        Ok(())
    }

    pub fn key(&self, kind: KeyKind) -> Result<Option<KeyStatus>, AgentError> {
        let db = self.db.lock().expect("database");
        let row: Option<(String, Option<String>, Option<i64>)> = db
            .query_row(
                "SELECT created_at, expires_at, uses_left FROM keys WHERE kind = ?1",
                [kind.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.err())?;
        let time = |t: &str| {
            t.parse::<jiff::Timestamp>().map_err(|e| AgentError::Store {
                path: self.path.display().to_string(),
                message: format!("a key's time {t:?}: {e}"),
            })
        };
        row.map(|(created, expires, uses_left)| {
            Ok(KeyStatus {
                created_at: time(&created)?,
                expires_at: expires.as_deref().map(time).transpose()?,
                uses_left,
            })
        })
        .transpose()
    }

    pub fn delete_key(&self, kind: KeyKind) -> Result<(), AgentError> {
        let db = self.db.lock().expect("database");
        db.execute("DELETE FROM keys WHERE kind = ?1", [kind.as_str()])
            .map_err(self.err())?;
        Ok(())
    }

    /// Uses a key: when `entropy` is the stored key's and it is still valid, a new
    /// device gets a token (a new-device key is consumed, a recovery key loses a use).
    pub fn use_key(
        &self,
        kind: KeyKind,
        entropy: &[u8],
        device: &str,
        now: jiff::Timestamp,
    ) -> Result<Option<(String, String)>, AgentError> {
        let Some(status) = self.key(kind)? else {
            return Ok(None);
        };
        {
            let db = self.db.lock().expect("database");
            let stored: String = db
                .query_row(
                    "SELECT hash FROM keys WHERE kind = ?1",
                    [kind.as_str()],
                    |r| r.get(0),
                )
                .map_err(self.err())?;
            if stored != hash_bytes(entropy) || !status.valid(now) {
                return Ok(None);
            }
            match kind {
                KeyKind::NewDevice => db.execute("DELETE FROM keys WHERE kind = ?1", [kind.as_str()]),
                KeyKind::Recovery => db.execute(
                    "UPDATE keys SET uses_left = uses_left - 1 WHERE kind = ?1 AND uses_left IS NOT NULL",
                    [kind.as_str()],
                ),
            }
            .map_err(self.err())?;
        }
        self.create_token(device).map(Some)
    }

    /// A new job, CREATED.
    pub fn add_job(&self, type_id: &str, name: &str, description: &str) -> Result<Job, AgentError> {
        let now = local_now();
        let job = Job {
            uid: uuid::Uuid::new_v4().to_string(),
            type_id: type_id.into(),
            name: name.into(),
            description: description.into(),
            status: "CREATED".into(),
            status_text: Some(String::new()),
            progress: Some(0),
            created_at: now.clone(),
            updated_at: now,
            finished_at: None,
            error: None,
            result: None,
        };
        let db = self.db.lock().expect("database");
        db.execute(
            "INSERT INTO jobs (uid, type_id, name, description, status, status_text, progress, \
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                job.uid,
                job.type_id,
                job.name,
                job.description,
                job.status,
                job.status_text,
                job.progress,
                job.created_at,
                job.updated_at
            ],
        )
        .map_err(self.err())?;
        Ok(job)
    }

    /// Writes a job's new state; false when it was removed meanwhile (it is not
    /// made again).
    pub fn update_job(&self, job: &Job) -> Result<bool, AgentError> {
        let db = self.db.lock().expect("database");
        let n = db
            .execute(
                "UPDATE jobs SET status = ?2, status_text = ?3, progress = ?4, updated_at = ?5, \
                 finished_at = ?6, error = ?7, result = ?8 WHERE uid = ?1",
                params![
                    job.uid,
                    job.status,
                    job.status_text,
                    job.progress,
                    job.updated_at,
                    job.finished_at,
                    job.error,
                    job.result
                ],
            )
            .map_err(self.err())?;
        Ok(n == 1)
    }

    /// All jobs, oldest first; finished jobs older than ten days are dropped.
    pub fn jobs(&self) -> Result<Vec<Job>, AgentError> {
        let db = self.db.lock().expect("database");
        let cutoff = jiff::Zoned::now()
            .checked_sub(jiff::SignedDuration::from_hours(24 * JOB_DAYS))
            .map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string())
            .unwrap_or_default();
        db.execute(
            "DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1",
            [cutoff],
        )
        .map_err(self.err())?;
        let mut q = db
            .prepare(
                "SELECT uid, type_id, name, description, status, status_text, progress, \
                 created_at, updated_at, finished_at, error, result FROM jobs \
                 ORDER BY created_at, uid",
            )
            .map_err(self.err())?;
        let rows = q
            .query_map([], |r| {
                Ok(Job {
                    uid: r.get(0)?,
                    type_id: r.get(1)?,
                    name: r.get(2)?,
                    description: r.get(3)?,
                    status: r.get(4)?,
                    status_text: r.get(5)?,
                    progress: r.get(6)?,
                    created_at: r.get(7)?,
                    updated_at: r.get(8)?,
                    finished_at: r.get(9)?,
                    error: r.get(10)?,
                    result: r.get(11)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    pub fn remove_job(&self, uid: &str) -> Result<bool, AgentError> {
        let db = self.db.lock().expect("database");
        let n = db
            .execute("DELETE FROM jobs WHERE uid = ?1", [uid])
            .map_err(self.err())?;
        Ok(n == 1)
    }

    pub fn devices(&self) -> Result<Vec<Device>, AgentError> {
        let db = self.db.lock().expect("database");
        let mut q = db
            .prepare("SELECT device, created_at FROM tokens ORDER BY created_at, device")
            .map_err(self.err())?;
        let rows = q
            .query_map([], |r| {
                Ok(Device {
                    name: r.get(0)?,
                    created_at: r.get(1)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_url_safe_and_stored_only_as_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (device, token) = store.create_token("my phone!").unwrap();
        assert_eq!(device, "my_phone_");
        assert_eq!(token.len(), 43);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(
            store.device_of(&token).unwrap().as_deref(),
            Some("my_phone_")
        );
        assert_eq!(store.device_of("not a token").unwrap(), None);
        let (again, other) = store.create_token("my phone!").unwrap();
        assert_ne!(again, device, "names are made unique");
        assert_ne!(other, token);
        drop(store);
        let bytes = std::fs::read(dir.path().join("agent.sqlite")).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&token) && !text.contains(&other),
            "no token in the clear"
        );
        // Reopened: the devices are still there.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.devices().unwrap().len(), 2);
    }

    #[test]
    fn the_database_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("agent");
        Store::open(&data).unwrap().create_token("phone").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("agent.sqlite")), 0o600);
    }

    #[test]
    fn a_file_that_is_not_the_agents_database_is_an_error_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sqlite");
        std::fs::write(&path, b"this is not a database, but someone's data").unwrap();
        let e = Store::open(dir.path()).err().unwrap().to_string();
        assert!(
            e.contains("agent.sqlite") && e.contains("kept as it is"),
            "{e}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"this is not a database, but someone's data"
        );
    }

    #[test]
    fn jobs_change_in_place_and_those_a_stopped_agent_ran_end_in_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut job = store
            .add_job("services.a.backup", "Backup A", "Backing up A")
            .unwrap();
        assert_eq!((job.status.as_str(), job.progress), ("CREATED", Some(0)));
        job.status = "RUNNING".into();
        job.progress = Some(40);
        assert!(store.update_job(&job).unwrap());
        assert_eq!(store.jobs().unwrap(), [job.clone()]);
        let done = store.add_job("services.b.backup", "Backup B", "").unwrap();
        assert!(store.remove_job(&done.uid).unwrap());
        assert!(
            !store.update_job(&done).unwrap(),
            "a removed job is not made again"
        );
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let jobs = store.jobs().unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].status, "ERROR");
        assert!(jobs[0].finished_at.is_some());
        assert!(jobs[0].error.as_deref().unwrap().contains("agent stopped"));
    }

    #[test]
    fn keys_are_stored_as_hashes_and_used_within_their_limits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = jiff::Timestamp::now();
        let entropy = [7u8; 24];
        let status = KeyStatus {
            created_at: now,
            expires_at: None,
            uses_left: Some(2),
        };
        store.set_key(KeyKind::Recovery, &entropy, &status).unwrap();
        assert!(
            store
                .use_key(KeyKind::Recovery, &[8u8; 24], "x", now)
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .use_key(KeyKind::Recovery, &entropy, "a", now)
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .use_key(KeyKind::Recovery, &entropy, "b", now)
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .use_key(KeyKind::Recovery, &entropy, "c", now)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.key(KeyKind::Recovery).unwrap().unwrap().uses_left,
            Some(0)
        );
        // An expired new-device key gives nothing.
        let expired = KeyStatus {
            created_at: now,
            expires_at: Some(now - jiff::SignedDuration::from_secs(1)),
            uses_left: None,
        };
        store
            .set_key(KeyKind::NewDevice, &[1u8; 16], &expired)
            .unwrap();
        assert!(
            store
                .use_key(KeyKind::NewDevice, &[1u8; 16], "d", now)
                .unwrap()
                .is_none()
        );
        drop(store);
        let bytes = std::fs::read(dir.path().join("agent.sqlite")).unwrap();
        assert!(
            !bytes.windows(24).any(|w| w == entropy),
            "no key in the clear"
        );
    }
}
