//! Errors of the backup layer. Each names the machine's provider, the step, and what
//! to do.

use std::path::PathBuf;

use clan_core::process::CommandError;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("provider '{provider}': {message}")]
    Provider { provider: String, message: String },
    #[error("provider '{provider}': {source}")]
    Command {
        provider: String,
        source: CommandError,
    },
    #[error("{step} failed: {message}")]
    Step { step: String, message: String },
    #[error(
        "restore failed at step '{step}': {message}\nThe services were started again. \
         To return to the state before this restore: clan backups restore {machine} {provider} {safety}"
    )]
    RestoreFailed {
        step: String,
        message: String,
        machine: String,
        provider: String,
        safety: String,
    },
    #[error(
        "restore failed at step '{step}': {message}\nThe services were started again. No safety backup was made (--no-safety-backup)."
    )]
    RestoreFailedNoSafety { step: String, message: String },
    #[error("unknown provider '{name}'. Providers of this machine: {}", if .available.is_empty() { "(none)".to_string() } else { .available.join(", ") })]
    UnknownProvider {
        name: String,
        available: Vec<String>,
    },
    #[error("unknown state '{name}'. States of this machine: {}", if .available.is_empty() { "(none)".to_string() } else { .available.join(", ") })]
    UnknownState {
        name: String,
        available: Vec<String>,
    },
    #[error(
        "machine '{machine}' has no backup named '{name}' in provider '{provider}'; see `clan backups list {machine}`. \
         A backup that another machine made is restored with --from-machine MACHINE"
    )]
    NoSuchBackup {
        provider: String,
        name: String,
        machine: String,
    },
    #[error("{0}")]
    Config(String),
    #[error(
        "state{} {} stop{} systemd units on restore ({}), but systemd is not running here; nothing was changed",
        if .states.len() > 1 { "s" } else { "" }, .states.join(", "), if .states.len() > 1 { "" } else { "s" }, .units.join(", ")
    )]
    NoSystemd {
        states: Vec<String>,
        units: Vec<String>,
    },
    #[error("another backup or restore of this machine is running (lock {}); try again when it has finished", .0.display())]
    Busy(PathBuf),
    #[error(
        "machine '{0}' has nothing to back up: it declares no state (clan.core.state), or none of \
         its folders exists"
    )]
    NothingToBackUp(String),
    #[error("interrupted by a signal (Ctrl-C or SIGTERM)")]
    Interrupted,
    #[error(transparent)]
    Fs(#[from] crate::safe_fs::SafeFsError),
    /// A folder that the backup does not hold (it was missing when the backup was made).
    #[error("backup '{name}' does not hold {}", .path.display())]
    NotInBackup { name: String, path: PathBuf },
    /// An error the machine runtime reported: its kind and message as they were there.
    #[error("{message}")]
    OnMachine {
        kind: BackupErrorKind,
        message: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// What kind of failure, in stable names: for programs (the agent, the UI) and
/// across the wire from a machine's runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupErrorKind {
    Provider,
    Step,
    RestoreFailed,
    UnknownProvider,
    UnknownState,
    NoSuchBackup,
    Config,
    NoSystemd,
    Busy,
    NothingToBackUp,
    Interrupted,
    Filesystem,
    NotInBackup,
    Io,
    /// Reaching the machine or its runtime failed.
    Runtime,
}

impl BackupError {
    pub fn kind(&self) -> BackupErrorKind {
        use BackupErrorKind as K;
        match self {
            Self::Provider { .. } | Self::Command { .. } => K::Provider,
            Self::Step { .. } => K::Step,
            Self::RestoreFailed { .. } | Self::RestoreFailedNoSafety { .. } => K::RestoreFailed,
            Self::UnknownProvider { .. } => K::UnknownProvider,
            Self::UnknownState { .. } => K::UnknownState,
            Self::NoSuchBackup { .. } => K::NoSuchBackup,
            Self::Config(_) => K::Config,
            Self::NoSystemd { .. } => K::NoSystemd,
            Self::Busy(_) => K::Busy,
            Self::NothingToBackUp(_) => K::NothingToBackUp,
            Self::Interrupted => K::Interrupted,
            Self::Fs(_) => K::Filesystem,
            Self::NotInBackup { .. } => K::NotInBackup,
            Self::OnMachine { kind, .. } => *kind,
            Self::Io { .. } => K::Io,
        }
    }
}

pub type Result<T, E = BackupError> = std::result::Result<T, E>;

/// `map_err` helper for I/O with a description of what was being done.
pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}
