//! Who may read a secret: the clan's admins always; a deployable secret also its
//! machine, or, for a shared generator, every machine that declares it. When
//! admins or sharing machines change, secrets whose recorded recipients differ
//! are "stale" and `fix` re-encrypts them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use age::x25519::{Identity, Recipient};
use clan_core::machine::Generator;

use crate::error::{Result, VarsError};
use crate::generate::{MachineVars, outputs, scope};
use crate::store::{Scope, Store};

/// The readers of every secret of a clan, computed from all of its machines (not
/// only those a command names) so that a shared secret never loses a reader.
pub struct Readers {
    admins: Vec<Recipient>,
    sharers: BTreeMap<String, BTreeSet<String>>,
}

/// One secret file of a machine's generator.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretRef {
    pub scope: Scope,
    pub generator: String,
    pub file: String,
    /// Machines that must be able to decrypt it (empty when not deployed).
    pub machines: Vec<String>,
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.scope {
            Scope::Machine(m) => write!(f, "{m}: {}/{}", self.generator, self.file),
            Scope::Shared => write!(f, "shared: {}/{}", self.generator, self.file),
        }
    }
}

impl Readers {
    pub fn new(store: &Store, all: &[MachineVars<'_>]) -> Result<Self> {
        let admins: Vec<Recipient> = store.admins()?.into_iter().map(|(_, r)| r).collect();
        if admins.is_empty() {
            return Err(VarsError::NoAdmins);
        }
        let mut sharers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for m in all {
            for (n, g) in m.generators {
                if g.share {
                    sharers
                        .entry(n.clone())
                        .or_default()
                        .insert(m.name.to_string());
                }
            }
        }
        Ok(Self { admins, sharers })
    }

    /// Fails unless `admin` is one of the clan's admins.
    pub fn check_admin(&self, admin: &Identity) -> Result<()> {
        let public = admin.to_public().to_string();
        if self.admins.iter().any(|r| r.to_string() == public) {
            Ok(())
        } else {
            Err(VarsError::NotAnAdmin(public))
        }
    }

    /// Every secret file of `machine`'s generator `name`, with its readers.
    pub fn secrets_of(&self, machine: &str, name: &str, g: &Generator) -> Vec<SecretRef> {
        outputs(g)
            .into_iter()
            .filter(|o| o.secret)
            .map(|o| SecretRef {
                scope: scope(machine, g),
                generator: name.to_string(),
                file: o.name,
                machines: match (o.deploy, g.share) {
                    (false, _) => vec![],
                    (true, false) => vec![machine.to_string()],
                    (true, true) => self
                        .sharers
                        .get(name)
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_else(|| vec![machine.to_string()]),
                },
            })
            .collect()
    }

    /// The recipients a secret must be encrypted to, creating machine keys on first
    /// use; also returns the machine-key directories that were touched.
    pub fn recipients(
        &self,
        store: &Store,
        secret: &SecretRef,
    ) -> Result<(Vec<Recipient>, Vec<PathBuf>)> {
        let mut out = self.admins.clone();
        let mut touched = Vec::new();
        for m in &secret.machines {
            out.push(store.machine_recipient(m)?);
            touched.push(store.machine_key_dir(m));
        }
        Ok((out, touched))
    }

    /// Whether a stored secret is encrypted to exactly the readers it must have
    /// (a machine without a key yet counts as missing).
    fn is_current(&self, store: &Store, secret: &SecretRef) -> bool {
        let mut wanted = self.admins.clone();
        for m in &secret.machines {
            match store.machine_public(m) {
                Some(r) => wanted.push(r),
                None => return false,
            }
        }
        store.secret_recipients_match(&secret.scope, &secret.generator, &secret.file, &wanted)
    }
}

/// What `fix` would re-encrypt: the machines' stored secrets whose recipients are not
/// the current ones, and machine keys not encrypted to exactly the current admins.
pub fn stale(store: &Store, readers: &Readers, machines: &[MachineVars<'_>]) -> Stale {
    let mut secrets = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for m in machines {
        for (name, g) in m.generators {
            for s in readers.secrets_of(m.name, name, g) {
                if store.secret_path(&s.scope, name, &s.file).is_file()
                    && !readers.is_current(store, &s)
                {
                    secrets.insert(s);
                }
            }
        }
        if store.machine_public(m.name).is_some()
            && !store.machine_key_recipients_match(m.name, &readers.admins)
        {
            keys.insert(m.name.to_string());
        }
    }
    Stale {
        secrets: secrets.into_iter().collect(),
        machine_keys: keys.into_iter().collect(),
    }
}

/// Stored secrets and machine keys that are not age files at all (empty, truncated,
/// overwritten), with the reason: found without any key, so `vars check` names them.
pub fn damaged(
    store: &Store,
    readers: &Readers,
    machines: &[MachineVars<'_>],
) -> Vec<(std::path::PathBuf, String)> {
    let mut files = BTreeSet::new();
    for m in machines {
        for (name, g) in m.generators {
            for s in readers.secrets_of(m.name, name, g) {
                files.insert(store.secret_path(&s.scope, name, &s.file));
            }
        }
        files.insert(store.machine_key_dir(m.name).join("key.age"));
    }
    files
        .into_iter()
        .filter_map(|path| {
            let bytes = std::fs::read(&path).ok()?;
            crate::keys::damage(&bytes).map(|reason| (path, reason))
        })
        .collect()
}

#[derive(Debug, Default)]
pub struct Stale {
    pub secrets: Vec<SecretRef>,
    pub machine_keys: Vec<String>,
}

impl Stale {
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.machine_keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.secrets.len() + self.machine_keys.len()
    }

    pub fn describe(&self) -> Vec<String> {
        let keys = self
            .machine_keys
            .iter()
            .map(|m| format!("{m}: machine key (secrets/machines/{m}/key.age)"));
        self.secrets
            .iter()
            .map(ToString::to_string)
            .chain(keys)
            .collect()
    }
}

/// Re-encrypts stale secrets and machine keys to their current recipients (needs an
/// admin who can decrypt them) and commits; returns what was re-encrypted.
pub fn fix(
    store: &Store,
    readers: &Readers,
    machines: &[MachineVars<'_>],
    admin: &Identity,
) -> Result<Stale> {
    readers.check_admin(admin)?;
    let found = stale(store, readers, machines);
    if found.is_empty() {
        return Ok(found);
    }
    let mut touched: Vec<PathBuf> = Vec::new();
    for m in &found.machine_keys {
        let identity = store.machine_identity(m, admin)?;
        store.write_machine_key(m, &identity, &readers.admins)?;
        touched.push(store.machine_key_dir(m));
    }
    for s in &found.secrets {
        let value = store.read_secret(&s.scope, &s.generator, &s.file, admin)?;
        let (recipients, keys) = readers.recipients(store, s)?;
        let path = store.write_secret(&s.scope, &s.generator, &s.file, &value, &recipients)?;
        touched.push(path.parent().expect("has a parent").to_path_buf());
        touched.extend(keys);
    }
    touched.sort();
    touched.dedup();
    let refs: Vec<&Path> = touched.iter().map(PathBuf::as_path).collect();
    clan_core::git::commit_paths(
        store.root(),
        &refs,
        &format!(
            "vars: re-encrypt {} secret(s) to their current recipients",
            found.len()
        ),
    )?;
    Ok(found)
}
