//! The agent's own data in SQLite: device tokens (hashed). Created and migrated on
//! open; a file that is not the agent's database is an error, never replaced.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::Digest;

use crate::AgentError;

/// The schema version this build writes.
const VERSION: i64 = 1;

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

fn hash(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 32 random bytes, base64url without padding (43 characters), as SelfPrivacy's.
fn new_token() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
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
    /// Opens (or creates) `dir/agent.sqlite`.
    pub fn open(dir: &Path) -> Result<Store, AgentError> {
        std::fs::create_dir_all(dir).map_err(|source| AgentError::Io {
            context: format!("creating {}", dir.display()),
            source,
        })?;
        let path = dir.join("agent.sqlite");
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
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string();
        db.execute(
            "INSERT INTO tokens (device, hash, created_at) VALUES (?1, ?2, ?3)",
            params![device, hash(&token), now],
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
}
