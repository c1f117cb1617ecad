//! `clan backups forget MACHINE PROVIDER NAME`: removes one backup.

use clap::Args;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    #[command(flatten)]
    pub on: super::OnMachine,
    /// The provider the backup is in
    pub provider: String,
    /// The backup's name (from `clan backups list`)
    pub name: String,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let m = super::backups_on(g, &o.on)?;
    m.forget(&o.provider, &o.name, super::reporter().as_ref())?;
    println!("{}: removed {}", o.provider, o.name);
    Ok(())
}
