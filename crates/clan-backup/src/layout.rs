//! What must hold between a machine's states and its backup locations before any
//! backup or restore runs. Each rule closes a way to lose data:
//!
//! - a folder belongs to one state only, and no folder lies inside another: an
//!   exact restore of the outer one would replace the inner state's files;
//! - no repository, snapshot directory, borg repository or staging directory lies
//!   inside a state folder (or holds one): restoring the folder would replace the
//!   repository with an older copy of itself, losing newer backups;
//! - no folder is `/` or inside the kernel's and runtime filesystems;
//! - local repository paths are absolute (a relative one would depend on the
//!   directory clan happens to run in).

use std::path::{Path, PathBuf};

use crate::config::ProviderConfig;
use crate::error::{BackupError, Result};
use crate::ops::Machine;

const SYSTEM: [&str; 4] = ["/proc", "/sys", "/dev", "/run"];

/// Schemes of restic repositories that are not local paths.
const REMOTE_SCHEMES: [&str; 10] = [
    "sftp:", "rest:", "rclone:", "s3:", "b2:", "azure:", "gs:", "swift:", "opendal:", "local:",
];

fn invalid(message: String) -> BackupError {
    BackupError::Config(format!("machine configuration: {message}"))
}

/// Local places where a provider keeps backups, with the option that names each.
fn locations(name: &str, config: &ProviderConfig) -> Result<Vec<(String, PathBuf)>> {
    let at = |field: &str| format!("clan.core.backups.providers.{name}.{field}");
    Ok(match config {
        ProviderConfig::Restic(c) => {
            let r = &c.repository;
            if let Some(path) = r.strip_prefix("local:") {
                vec![(at("repository"), PathBuf::from(path))]
            } else if REMOTE_SCHEMES.iter().any(|s| r.starts_with(s)) {
                vec![]
            } else if r.starts_with('/') {
                vec![(at("repository"), PathBuf::from(r))]
            } else {
                return Err(invalid(format!(
                    "{} = \"{r}\" is a relative path; give an absolute one (e.g. /var/backup/restic)",
                    at("repository")
                )));
            }
        }
        ProviderConfig::Local(c) => vec![(at("directory"), c.directory.clone())],
        ProviderConfig::Borg(c) => c
            .destinations
            .iter()
            .filter(|(_, d)| d.repo.starts_with('/'))
            .map(|(d, dest)| {
                (
                    at(&format!("destinations.{d}.repo")),
                    PathBuf::from(&dest.repo),
                )
            })
            .collect(),
        ProviderConfig::Command(_) => vec![],
    })
}

/// Checks the rules above; the error names both options and paths.
pub fn check(m: &Machine) -> Result<()> {
    let mut folders: Vec<(String, &Path)> = Vec::new();
    for (state, s) in &m.states {
        for f in &s.folders {
            let path = Path::new(f);
            let option = format!("clan.core.state.{state}.folders");
            if path == Path::new("/") || SYSTEM.iter().any(|d| path.starts_with(d)) {
                return Err(invalid(format!(
                    "{option} holds {f}: clan does not back up or restore / or anything in {}",
                    SYSTEM.join(", ")
                )));
            }
            for (other, p) in &folders {
                if p.starts_with(path) || path.starts_with(p) {
                    let how = if p == &path {
                        "the same folder is listed twice"
                    } else {
                        "one folder lies inside the other"
                    };
                    return Err(invalid(format!(
                        "{other} holds {} and {option} holds {f}: {how}, so restoring one would \
                         overwrite the other. Give each folder to one state, and split nested \
                         folders (or use exclude)",
                        p.display()
                    )));
                }
            }
            folders.push((option, path));
        }
    }
    let mut places = vec![(
        "clan.core.backups.stagingDirectory".to_string(),
        m.staging_directory.clone(),
    )];
    for (name, config) in m.providers(None)? {
        places.extend(locations(&name, &config)?);
    }
    for (option, place) in &places {
        for (state_option, folder) in &folders {
            if place.starts_with(folder) || folder.starts_with(place) {
                return Err(invalid(format!(
                    "{option} ({}) and {state_option} ({}) overlap: restoring the folder would \
                     replace the backups with an older copy of themselves. Keep backups outside \
                     every state folder",
                    place.display(),
                    folder.display()
                )));
            }
        }
    }
    Ok(())
}
