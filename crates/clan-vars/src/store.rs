//! Where vars live in the clan:
//!
//! ```text
//! vars/per-machine/<m>/<gen>/<file>/value        public values
//! vars/shared/<gen>/<file>/value
//! vars/{per-machine/<m>,shared}/<gen>/.validation  the generator's validation (JSON)
//! secrets/per-machine/<m>/<gen>/<file>.age       secrets, age-encrypted
//! secrets/shared/<gen>/<file>.age
//! <secret>.age.recipients                         who it is encrypted to (age1..., sorted)
//! secrets/admins/<name>.pub                      the admins' public keys
//! secrets/machines/<m>/key.pub, key.age          a machine's key (private part encrypted to the admins,
//!                                                 with a key.age.recipients sidecar)
//! ```

use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use age::x25519::{Identity, Recipient};

use crate::error::{Result, VarsError, io};
use crate::keys;

/// Whose a value is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Machine(String),
    Shared,
}

impl Scope {
    fn rel(&self) -> PathBuf {
        match self {
            Self::Machine(m) => Path::new("per-machine").join(m),
            Self::Shared => PathBuf::from("shared"),
        }
    }
}

pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(clan_root: &Path) -> Self {
        Self {
            root: clan_root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn public_path(&self, scope: &Scope, generator: &str, file: &str) -> PathBuf {
        self.root
            .join("vars")
            .join(scope.rel())
            .join(generator)
            .join(file)
            .join("value")
    }

    pub fn secret_path(&self, scope: &Scope, generator: &str, file: &str) -> PathBuf {
        self.root
            .join("secrets")
            .join(scope.rel())
            .join(generator)
            .join(format!("{file}.age"))
    }

    pub fn validation_path(&self, scope: &Scope, generator: &str) -> PathBuf {
        self.root
            .join("vars")
            .join(scope.rel())
            .join(generator)
            .join(".validation")
    }

    pub fn generator_dirs(&self, scope: &Scope, generator: &str) -> [PathBuf; 2] {
        [
            self.root.join("vars").join(scope.rel()).join(generator),
            self.root.join("secrets").join(scope.rel()).join(generator),
        ]
    }

    fn recipients_path(secret: &Path) -> PathBuf {
        let mut p = secret.as_os_str().to_owned();
        p.push(".recipients");
        PathBuf::from(p)
    }

    /// The admins' public keys, by name.
    pub fn admins(&self) -> Result<Vec<(String, Recipient)>> {
        let dir = self.root.join("secrets/admins");
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(out);
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".pub") else {
                continue;
            };
            let text = std::fs::read_to_string(e.path())
                .map_err(io(format!("reading {}", e.path().display())))?;
            let r = keys::recipient(&text).ok_or_else(|| VarsError::Io {
                context: format!("reading {}", e.path().display()),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not an age public key (age1...)",
                ),
            })?;
            out.push((stem.to_string(), r));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Registers an admin's public key; returns the file written.
    pub fn add_admin(&self, name: &str, key: &Recipient) -> Result<PathBuf> {
        let path = self.root.join("secrets/admins").join(format!("{name}.pub"));
        std::fs::create_dir_all(path.parent().expect("has a parent"))
            .map_err(io("creating secrets/admins"))?;
        std::fs::write(&path, format!("{key}\n"))
            .map_err(io(format!("writing {}", path.display())))?;
        Ok(path)
    }

    /// Every directory that holds only `machine`'s vars, secrets and key.
    pub fn machine_dirs(&self, machine: &str) -> Vec<PathBuf> {
        vec![
            self.root
                .join("vars")
                .join(Scope::Machine(machine.into()).rel()),
            self.root
                .join("secrets")
                .join(Scope::Machine(machine.into()).rel()),
            self.machine_key_dir(machine),
        ]
    }

    pub fn machine_key_dir(&self, machine: &str) -> PathBuf {
        self.root.join("secrets/machines").join(machine)
    }

    /// The machine's public key, if it has a key yet.
    pub fn machine_public(&self, machine: &str) -> Option<Recipient> {
        std::fs::read_to_string(self.machine_key_dir(machine).join("key.pub"))
            .ok()
            .and_then(|t| keys::recipient(&t))
    }

    /// The machine's public key, creating the machine's key on first use (its
    /// private part stored encrypted to the admins).
    pub fn machine_recipient(&self, machine: &str) -> Result<Recipient> {
        if let Some(r) = self.machine_public(machine) {
            return Ok(r);
        }
        let admins: Vec<Recipient> = self.admins()?.into_iter().map(|(_, r)| r).collect();
        if admins.is_empty() {
            return Err(VarsError::NoAdmins);
        }
        let id = Identity::generate();
        self.write_machine_key(machine, &id, &admins)?;
        Ok(id.to_public())
    }

    /// Stores the machine's key: the public part in the clear, the private part
    /// encrypted to `admins`.
    pub fn write_machine_key(
        &self,
        machine: &str,
        id: &Identity,
        admins: &[Recipient],
    ) -> Result<()> {
        let dir = self.machine_key_dir(machine);
        let secret = format!("{}\n", id.to_string().expose_secret());
        let key = dir.join("key.age");
        keys::write_private(&key, &keys::encrypt(secret.as_bytes(), admins)?, 0o644)?;
        std::fs::write(Self::recipients_path(&key), recipients_text(admins))
            .map_err(io("writing recipients"))?;
        std::fs::write(dir.join("key.pub"), format!("{}\n", id.to_public()))
            .map_err(io("writing a machine key"))?;
        Ok(())
    }

    pub fn machine_key_recipients_match(&self, machine: &str, admins: &[Recipient]) -> bool {
        let path = Self::recipients_path(&self.machine_key_dir(machine).join("key.age"));
        std::fs::read_to_string(path).is_ok_and(|t| t == recipients_text(admins))
    }

    /// The machine's private key (needs an admin identity).
    pub fn machine_identity(&self, machine: &str, admin: &Identity) -> Result<Identity> {
        let path = self.machine_key_dir(machine).join("key.age");
        let ct = std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
        let text = keys::decrypt(&ct, admin, &path.display().to_string())?;
        let text = String::from_utf8_lossy(&text);
        text.trim().parse().map_err(|_| {
            VarsError::Decrypt(path.display().to_string(), "not an age identity".into())
        })
    }

    pub fn write_public(
        &self,
        scope: &Scope,
        generator: &str,
        file: &str,
        value: &[u8],
    ) -> Result<PathBuf> {
        let path = self.public_path(scope, generator, file);
        std::fs::create_dir_all(path.parent().expect("has a parent"))
            .map_err(io(format!("creating {}", path.display())))?;
        std::fs::write(&path, value).map_err(io(format!("writing {}", path.display())))?;
        Ok(path)
    }

    pub fn write_secret(
        &self,
        scope: &Scope,
        generator: &str,
        file: &str,
        value: &[u8],
        recipients: &[Recipient],
    ) -> Result<PathBuf> {
        let path = self.secret_path(scope, generator, file);
        keys::write_private(&path, &keys::encrypt(value, recipients)?, 0o644)?;
        std::fs::write(Self::recipients_path(&path), recipients_text(recipients))
            .map_err(io("writing recipients"))?;
        Ok(path)
    }

    pub fn read_secret(
        &self,
        scope: &Scope,
        generator: &str,
        file: &str,
        identity: &Identity,
    ) -> Result<Vec<u8>> {
        let path = self.secret_path(scope, generator, file);
        let ct = std::fs::read(&path)
            .map_err(|_| VarsError::NotGenerated(format!("{generator}/{file}")))?;
        keys::decrypt(&ct, identity, &path.display().to_string())
    }

    /// Whether the secret is encrypted to exactly `recipients`.
    pub fn secret_recipients_match(
        &self,
        scope: &Scope,
        generator: &str,
        file: &str,
        recipients: &[Recipient],
    ) -> bool {
        let path = Self::recipients_path(&self.secret_path(scope, generator, file));
        std::fs::read_to_string(path).is_ok_and(|t| t == recipients_text(recipients))
    }
}

fn recipients_text(recipients: &[Recipient]) -> String {
    let mut keys: Vec<String> = recipients.iter().map(ToString::to_string).collect();
    keys.sort();
    keys.dedup();
    keys.iter().map(|k| format!("{k}\n")).collect()
}
