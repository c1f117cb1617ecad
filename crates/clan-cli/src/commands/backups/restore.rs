//! `clan backups restore MACHINE PROVIDER NAME [--service STATE] [--target DIR]`

use std::path::PathBuf;

use clap::Args;

use clan_backup::RestoreOptions;

use crate::cli::Global;
use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    #[command(flatten)]
    pub on: super::OnMachine,
    /// The provider the backup is in
    pub provider: String,
    /// The backup's name (from `clan backups list`)
    pub name: String,
    /// Only this state (clan.core.state.<name>)
    #[arg(long, value_name = "STATE")]
    pub service: Option<String>,
    /// Restore into DIR/<folder> instead of in place (no services stopped, no
    /// databases touched)
    #[arg(long = "target", value_name = "DIR")]
    pub into: Option<PathBuf>,
    /// Skip the backup made just before restoring
    #[arg(long)]
    pub no_safety_backup: bool,
    /// Restore a backup that another machine made (to move a service to this one)
    #[arg(long, value_name = "MACHINE")]
    pub from_machine: Option<String>,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let m = super::backups_on(g, &o.on)?;
    let opts = RestoreOptions {
        state: o.service,
        into: o
            .into
            .as_deref()
            .map(std::path::absolute)
            .transpose()
            .map_err(|e| CliError::Usage(format!("--target: {e}")))?,
        no_safety_backup: o.no_safety_backup,
        from_machine: o.from_machine,
    };
    let report = m.restore(&o.provider, &o.name, &opts, super::reporter().as_ref())?;
    match (&o.into, &report.safety_backup) {
        (Some(dir), _) => println!(
            "Restored {} of {} into {}",
            report.states.join(", "),
            o.name,
            dir.display()
        ),
        (None, Some(safety)) => {
            println!("Restored {} from {}", report.states.join(", "), o.name);
            println!("The state before the restore is kept as {safety}");
        }
        (None, None) => println!("Restored {} from {}", report.states.join(", "), o.name),
    }
    Ok(())
}
