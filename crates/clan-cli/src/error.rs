//! The CLI's error: clan-core's, plus usage errors; each may carry a hint.

use clan_core::Error as Core;
use clan_core::nix::NixError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Core(#[from] Core),
    #[error("{0}")]
    Usage(String),
}

impl From<clan_core::clan_dir::ClanDirError> for CliError {
    fn from(e: clan_core::clan_dir::ClanDirError) -> Self {
        Self::Core(e.into())
    }
}

impl From<NixError> for CliError {
    fn from(e: NixError) -> Self {
        Self::Core(e.into())
    }
}

impl CliError {
    /// What to try next, where the error itself does not already say it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Core(Core::Nix(NixError::Evaluation { .. })) => Some(
                "the file and line above are Nix's own; fix the expression there and run the command again",
            ),
            Self::Core(Core::Inventory(_)) => Some(
                "inventory.json is edited by `clan machines create/delete`; fix the place named above",
            ),
            _ => None,
        }
    }
}

pub type Result<T = ()> = std::result::Result<T, CliError>;
