//! What `clan.core.backups.providers.<name>` says, by provider kind: typed and
//! checked when a machine is resolved (a schedule must be a systemd calendar
//! expression), then used as is by the backup layer and the machine runtime.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Retention: how many of each to keep (0 = no rule of that kind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Keep {
    pub last: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

impl Keep {
    pub fn is_empty(&self) -> bool {
        *self == Keep::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ProviderConfig {
    /// The embedded engine (restic repository format).
    Restic(ResticConfig),
    /// BorgBackup, through the `borg` program; one repository per destination.
    Borg(BorgConfig),
    /// Hard-linked snapshot directories on attached storage.
    Local(LocalConfig),
    /// User-given shell commands (Clan's provider interface).
    Command(CommandConfig),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResticConfig {
    /// A local path, `sftp:user@host:/path` (or `sftp://user@host:port/path`),
    /// `rest:http(s)://host:port/path` (a restic REST server), or `rclone:remote:path`.
    pub repository: String,
    /// SSH key for `sftp:` repositories.
    #[serde(default)]
    pub ssh_key_file: Option<PathBuf>,
    /// known_hosts for `sftp:` repositories; the server's key must be in it.
    /// Default: /root/.ssh/known_hosts.
    #[serde(default)]
    pub ssh_known_hosts_file: Option<PathBuf>,
    /// File holding the repository password.
    pub password_file: PathBuf,
    #[serde(default)]
    pub keep: Keep,
    #[serde(default)]
    pub start_at: Option<String>,
    /// When a timer drills this provider's newest backups (a systemd calendar
    /// expression, or "never"); default: weekly when `startAt` is set.
    #[serde(default)]
    pub drill_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BorgDestination {
    /// A local path, or ssh://user@host/path, or user@host:path.
    pub repo: String,
    /// The ssh command borg uses (BORG_RSH).
    #[serde(default)]
    pub rsh: Option<String>,
    /// The clan machine serving this repository (borgbackup's server role).
    #[serde(default)]
    pub server: Option<String>,
    /// The server's SSH host key (`TYPE BASE64`), as `machines update` read it over
    /// the admin's verified connection: the only key borg then accepts.
    #[serde(default)]
    pub host_key: Option<String>,
    /// The server takes only new archives from this machine's key (`borg serve
    /// --append-only`): a deletion with it can be rolled back and frees nothing, so
    /// the machine does not prune here; the admin's clan does, with a key only it
    /// holds (`clan backups prune`).
    #[serde(default)]
    pub append_only: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BorgConfig {
    pub destinations: BTreeMap<String, BorgDestination>,
    /// File holding the repokey passphrase.
    pub passphrase_file: PathBuf,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub keep: Keep,
    #[serde(default)]
    pub start_at: Option<String>,
    /// When a timer drills this provider's newest backups (a systemd calendar
    /// expression, or "never"); default: weekly when `startAt` is set.
    #[serde(default)]
    pub drill_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalConfig {
    /// Where the snapshot directories live.
    pub directory: PathBuf,
    /// Run before using `directory` (e.g. to mount a disk) and after.
    #[serde(default)]
    pub mount_command: Option<String>,
    #[serde(default)]
    pub unmount_command: Option<String>,
    /// When a timer drills the newest snapshots (a systemd calendar expression, or
    /// "never"); default: never (local backups have no timer of their own).
    #[serde(default)]
    pub drill_at: Option<String>,
    /// How many snapshots to keep; older ones are removed after each backup.
    #[serde(default = "default_snapshots")]
    pub snapshots: u32,
}

fn default_snapshots() -> u32 {
    20
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandConfig {
    /// Prints a JSON array of {name, job_name?} (or one name per line).
    pub list: String,
    pub create: String,
    /// Gets NAME, FOLDERS (':'-separated) and FOLDERS_FILE (one per line) in its environment.
    pub restore: String,
}

impl ProviderConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Restic(_) => "restic",
            Self::Borg(_) => "borg",
            Self::Local(_) => "local",
            Self::Command(_) => "command",
        }
    }

    /// When a timer backs up with this provider (a systemd calendar expression).
    pub fn start_at(&self) -> Option<&str> {
        match self {
            Self::Restic(c) => c.start_at.as_deref(),
            Self::Borg(c) => c.start_at.as_deref(),
            Self::Local(_) | Self::Command(_) => None,
        }
    }

    /// When a timer drills this provider's backups: `drillAt`, by default weekly
    /// for providers backed up by a timer; `None` for "never".
    pub fn drill_at(&self) -> Option<&str> {
        let (set, timed) = match self {
            Self::Restic(c) => (c.drill_at.as_deref(), c.start_at.is_some()),
            Self::Borg(c) => (c.drill_at.as_deref(), c.start_at.is_some()),
            Self::Local(c) => (c.drill_at.as_deref(), false),
            Self::Command(_) => return None,
        };
        match set {
            Some("never") => None,
            Some(at) => Some(at),
            None => timed.then_some("weekly"),
        }
    }

    /// The provider's own retention, used by `prune` when no --keep-* is given.
    pub fn keep(&self) -> Keep {
        match self {
            Self::Restic(c) => c.keep,
            Self::Borg(c) => c.keep,
            Self::Local(c) => Keep {
                last: c.snapshots,
                ..Keep::default()
            },
            Self::Command(_) => Keep::default(),
        }
    }
}
