//! `clan backups ...`: runs on the machine where the data is: here (a target host
//! of localhost, or `--local`), or through the machine's runtime over SSH, with the
//! same results and the same progress.

pub mod check;
pub mod create;
pub mod drill;
pub mod forget;
pub mod list;
pub mod prune;
pub mod restore;
pub mod status;

use clap::Args;

use clan_runtime::backups::Backups;

pub use crate::render::reporter;

use crate::cli::Global;
use crate::error::{CliError, Result};

/// Options every `clan backups` command takes: the machine whose backups, and where
/// the command runs.
#[derive(Debug, Args)]
pub struct OnMachine {
    /// The machine
    pub machine: String,
    /// Run here (this is the machine) instead of on its target host over SSH
    #[arg(long)]
    pub local: bool,
}

/// `--provider P`, for the commands that act on every provider by default.
#[derive(Debug, Args)]
pub struct OnlyProvider {
    /// Only this provider
    #[arg(long)]
    pub provider: Option<String>,
}

/// The clan with the machine resolved.
pub fn fleet(g: &Global, t: &OnMachine) -> Result<clan_ops::Fleet> {
    super::fleet_of(g, std::slice::from_ref(&t.machine))
}

/// The machine's backups, and where they run.
pub fn backups_on(g: &Global, t: &OnMachine) -> Result<Backups> {
    clan_ops::backups::on(&fleet(g, t)?, &t.machine, t.local)
}

/// Prints each failed provider's error; fails if any failed.
pub fn finish<T>(machine: &str, results: &[(String, clan_backup::Result<T>)]) -> Result {
    let failed: Vec<&String> = results
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| (name, e)))
        .map(|(name, e)| {
            // The line names the provider already.
            let text = e.to_string();
            let text = text
                .strip_prefix(&format!("provider '{name}': "))
                .unwrap_or(&text);
            eprintln!("error: machine '{machine}', provider '{name}': {text}");
            name
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Partial(format!(
            "{} of {} providers failed: {}",
            failed.len(),
            results.len(),
            failed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}
