//! The operations' error: what failed (the layers' typed errors, kept), a kind that
//! frontends can match on and serialise, and what to do next where the error does
//! not already say it.

use clan_core::Error as Core;
use clan_core::nix::NixError;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Boxed: clan-core's error is large and errors are the rare path.
    #[error(transparent)]
    Core(Box<Core>),
    /// Bad input from the caller (a name that does not exist, options that do not fit).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Backup(Box<clan_backup::BackupError>),
    #[error(transparent)]
    Vars(Box<clan_vars::VarsError>),
    /// Some parts (machines, providers) failed; each was reported with its error.
    #[error("{0}")]
    Partial(String),
}

/// What kind of failure, for programs: stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    Usage,
    ClanDirectory,
    Evaluation,
    Inventory,
    Configuration,
    Backup,
    Vars,
    Partial,
}

/// An error as frontends show or send it.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    pub kind: ErrorKind,
    /// For backup errors, which (the same whether here or on the machine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<clan_backup::BackupErrorKind>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<&'static str>,
}

impl From<clan_vars::VarsError> for Error {
    fn from(e: clan_vars::VarsError) -> Self {
        Self::Vars(Box::new(e))
    }
}

impl From<clan_backup::BackupError> for Error {
    fn from(e: clan_backup::BackupError) -> Self {
        Self::Backup(Box::new(e))
    }
}

macro_rules! from_core {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Self::Core(Box::new(e.into()))
            }
        }
    )*};
}

from_core!(
    Core,
    clan_core::clan_dir::ClanDirError,
    NixError,
    clan_core::inventory::InventoryError
);

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Core(core) => match core.as_ref() {
                Core::Nix(_) => ErrorKind::Evaluation,
                Core::Inventory(_) => ErrorKind::Inventory,
                Core::ClanDir(_) => ErrorKind::ClanDirectory,
                Core::UnknownMachine { .. } => ErrorKind::Usage,
                _ => ErrorKind::Configuration,
            },
            Self::Usage(_) => ErrorKind::Usage,
            Self::Backup(_) => ErrorKind::Backup,
            Self::Vars(_) => ErrorKind::Vars,
            Self::Partial(_) => ErrorKind::Partial,
        }
    }

    /// What to try next, where the error itself does not already say it.
    pub fn hint(&self) -> Option<&'static str> {
        let Self::Core(core) = self else { return None };
        match core.as_ref() {
            Core::Nix(NixError::Evaluation { .. }) => Some(
                "the file and line above are Nix's own; fix the expression there and run the command again",
            ),
            Core::Inventory(_) => Some(
                "fix the value at the place named in parentheses (`set in ...`) and run the command again",
            ),
            _ => None,
        }
    }

    pub fn report(&self) -> ErrorReport {
        ErrorReport {
            kind: self.kind(),
            backup: match self {
                Self::Backup(e) => Some(e.kind()),
                _ => None,
            },
            message: self.to_string(),
            hint: self.hint(),
        }
    }
}

pub type Result<T = (), E = Error> = std::result::Result<T, E>;
