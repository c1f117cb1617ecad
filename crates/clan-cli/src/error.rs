//! The CLI's error: clan-core's, plus usage errors; each may carry a hint.

use clan_core::Error as Core;
use clan_core::nix::NixError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Boxed: clan-core's error is large and errors are the rare path.
    #[error(transparent)]
    Core(Box<Core>),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Backup(Box<clan_backup::BackupError>),
    #[error(transparent)]
    Vars(Box<clan_vars::VarsError>),
    /// Some providers failed; their errors were printed.
    #[error("{0}")]
    Partial(String),
}

impl From<clan_vars::VarsError> for CliError {
    fn from(e: clan_vars::VarsError) -> Self {
        Self::Vars(Box::new(e))
    }
}

impl From<clan_backup::BackupError> for CliError {
    fn from(e: clan_backup::BackupError) -> Self {
        Self::Backup(Box::new(e))
    }
}

macro_rules! from_core {
    ($($t:ty),*) => {$(
        impl From<$t> for CliError {
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

impl CliError {
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
}

pub type Result<T = ()> = std::result::Result<T, CliError>;
