//! What a machine needs of its vars, materialised into a directory laid out as
//! `/var/lib/clan/secrets` on the machine:
//!
//! ```text
//! key.txt                the machine's age identity (0400)
//! vars/<gen>/<file>      its deployable secrets, decrypted, with their mode
//! manifest.json          every file with owner, group, mode and neededFor
//! ```
//!
//! Secrets are decrypted with the machine's own key, so a secret the machine could
//! not read on its own (stale recipients) is an error, not a silent success. Owners
//! and groups are applied where this system knows them and we are root; the manifest
//! carries them to the machine either way.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use age::x25519::Identity;
use serde::{Deserialize, Serialize};

use crate::error::{Result, VarsError, io};
use crate::generate::{MachineVars, outputs, scope};
use crate::keys;
use crate::store::Store;

pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Relative to the upload directory.
    pub path: String,
    pub owner: String,
    pub group: String,
    pub mode: String,
    pub needed_for: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub machine: String,
    pub files: Vec<Entry>,
}

#[derive(Debug)]
pub struct Uploaded {
    pub manifest: Manifest,
    /// Entries whose owner or group this system does not know (or we are not root):
    /// their ownership is applied on the machine.
    pub ownership_deferred: Vec<String>,
}

/// A machine's key and deployable secrets, decrypted, in memory: what `write` puts
/// into a directory, here or (sent on stdin) on the machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bundle {
    pub manifest: Manifest,
    /// File contents by manifest path.
    pub contents: BTreeMap<String, Vec<u8>>,
}

/// Writes the machine's key and deployable secrets into `dir`. `dir` must be absent,
/// empty, or a previous upload (it is replaced as a whole, never half-written).
pub fn upload(
    store: &Store,
    machine: &MachineVars<'_>,
    admin: &Identity,
    dir: &Path,
) -> Result<Uploaded> {
    check_target(dir)?;
    write(&bundle(store, machine, admin)?, dir)
}

/// Decrypts what `machine` needs; secrets with the machine's own key.
pub fn bundle(store: &Store, machine: &MachineVars<'_>, admin: &Identity) -> Result<Bundle> {
    // A machine without secrets has no key yet (one is made with its first
    // secret): it gets an empty bundle.
    let deploys_secrets = machine
        .generators
        .values()
        .any(|g| outputs(g).iter().any(|o| o.secret && o.deploy));
    if !deploys_secrets && store.machine_public(machine.name).is_none() {
        return Ok(Bundle {
            manifest: Manifest {
                machine: machine.name.to_string(),
                files: Vec::new(),
            },
            contents: BTreeMap::new(),
        });
    }
    let identity = store.machine_identity(machine.name, admin)?;
    let key = format!("{}\n", identity.to_string().expose_secret());
    let mut contents = BTreeMap::from([("key.txt".to_string(), key.into_bytes())]);
    let mut files = vec![Entry {
        path: "key.txt".into(),
        owner: "root".into(),
        group: "root".into(),
        mode: "0400".into(),
        needed_for: "activation".into(),
    }];
    for (name, g) in machine.generators {
        let s = scope(machine.name, g);
        for o in outputs(g).into_iter().filter(|o| o.secret && o.deploy) {
            let file = &o.name;
            let (owner, group, mode, needed_for) = match g.files.get(file) {
                Some(d) => (
                    d.owner.as_str(),
                    d.group.as_str(),
                    d.mode.as_str(),
                    d.needed_for.as_str(),
                ),
                None => ("root", "root", "0400", "services"),
            };
            let value = store
                .read_secret(&s, name, file, &identity)
                .map_err(|e| match e {
                    VarsError::Decrypt(what, _) => VarsError::Decrypt(
                        what,
                        format!(
                            "machine '{}' is not one of its recipients; run `clan vars fix {}`",
                            machine.name, machine.name
                        ),
                    ),
                    other => other,
                })?;
            let mode = parse_mode(mode).ok_or_else(|| VarsError::Generator {
                machine: machine.name.to_string(),
                generator: name.clone(),
                message: format!(
                    "files.{file}.mode = \"{}\" is not an octal mode such as \"0400\"",
                    mode
                ),
            })?;
            let rel = format!("vars/{name}/{file}");
            contents.insert(rel.clone(), value);
            files.push(Entry {
                path: rel,
                owner: owner.to_string(),
                group: group.to_string(),
                mode: format!("{mode:04o}"),
                needed_for: needed_for.to_string(),
            });
        }
    }
    Ok(Bundle {
        manifest: Manifest {
            machine: machine.name.to_string(),
            files,
        },
        contents,
    })
}

/// Writes `bundle` into a new directory beside `dir` and swaps it in: until the
/// swap, `dir` keeps the previous secrets, so a failure leaves them in place.
pub fn write(bundle: &Bundle, dir: &Path) -> Result<Uploaded> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(".clan-upload-")
        .tempdir_in(parent)
        .map_err(io(format!("writing into {}", parent.display())))?;
    std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o751))
        .map_err(io("securing the upload directory"))?;
    for e in &bundle.manifest.files {
        let mode = parse_mode(&e.mode).unwrap_or(0o400);
        let value = bundle.contents.get(&e.path).map_or(&[][..], |v| v);
        keys::write_private(&staging.path().join(&e.path), value, mode)?;
    }
    let ownership_deferred = apply_ownership(staging.path(), &bundle.manifest.files)?;
    let json = serde_json::to_vec_pretty(&bundle.manifest).expect("serialisable");
    // Root's alone: it names every secret and its owner (no values), which nothing
    // but clan needs.
    keys::write_private(&staging.path().join(MANIFEST), &json, 0o600)?;
    replace_dir(staging.keep(), dir)?;
    Ok(Uploaded {
        manifest: bundle.manifest.clone(),
        ownership_deferred,
    })
}

/// Applies the owners recorded in `dir`'s manifest (after the users were created).
pub fn reapply_ownership(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| VarsError::Io {
        context: format!("reading {}", path.display()),
        source: std::io::Error::other(e),
    })?;
    apply_ownership(dir, &manifest.files)
}

fn check_target(dir: &Path) -> Result<()> {
    let Ok(mut entries) = std::fs::read_dir(dir) else {
        return if dir.exists() {
            Err(VarsError::Io {
                context: format!("uploading into {}", dir.display()),
                source: std::io::Error::other("not a directory"),
            })
        } else {
            Ok(())
        };
    };
    if entries.next().is_none() || dir.join(MANIFEST).is_file() {
        return Ok(());
    }
    Err(VarsError::Io {
        context: format!("uploading into {}", dir.display()),
        source: std::io::Error::other(
            "the directory has other files; give an empty or new directory (a previous upload is replaced)",
        ),
    })
}

/// Moves `new` into place at `dir`, replacing what was there in one rename.
fn replace_dir(new: PathBuf, dir: &Path) -> Result<()> {
    let fail = io(format!("moving the upload into {}", dir.display()));
    if dir.exists() {
        let old = new.with_extension("old");
        std::fs::rename(dir, &old).map_err(fail)?;
        std::fs::rename(&new, dir).map_err(io(format!("moving into {}", dir.display())))?;
        std::fs::remove_dir_all(&old).map_err(io(format!("removing {}", old.display())))?;
    } else {
        std::fs::rename(&new, dir).map_err(fail)?;
    }
    Ok(())
}

fn parse_mode(mode: &str) -> Option<u32> {
    u32::from_str_radix(mode, 8).ok().filter(|m| *m <= 0o7777)
}

/// chowns what it can; returns the paths whose ownership is left to the machine.
fn apply_ownership(root: &Path, files: &[Entry]) -> Result<Vec<String>> {
    let root_user = is_root(root);
    let mut deferred = Vec::new();
    for e in files {
        let ids = root_user
            .then(|| {
                Some((
                    lookup("/etc/passwd", &e.owner)?,
                    lookup("/etc/group", &e.group)?,
                ))
            })
            .flatten();
        match ids {
            Some((uid, gid)) => {
                let path = root.join(&e.path);
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                    .map_err(io(format!("chown {}", path.display())))?;
            }
            None => deferred.push(e.path.clone()),
        }
    }
    Ok(deferred)
}

/// Whether we are root: files we create are owned by uid 0.
fn is_root(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).is_ok_and(|m| m.uid() == 0)
}

/// A user or group id from a numeric name or an /etc/passwd-style file.
fn lookup(file: &str, name: &str) -> Option<u32> {
    if let Ok(id) = name.parse() {
        return Some(id);
    }
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then(|| f.nth(1)?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0400"), Some(0o400));
        assert_eq!(parse_mode("640"), Some(0o640));
        assert_eq!(parse_mode("rw"), None);
        assert_eq!(parse_mode("99"), None);
    }

    #[test]
    fn ids_come_from_passwd_and_group() {
        assert_eq!(lookup("/etc/passwd", "root"), Some(0));
        assert_eq!(lookup("/etc/group", "root"), Some(0));
        assert_eq!(lookup("/etc/passwd", "1234"), Some(1234));
        assert_eq!(lookup("/etc/passwd", "no-such-user-here"), None);
    }
}
