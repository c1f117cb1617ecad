//! `clan backups check MACHINE [--provider P] [--read-data]`

use clap::Args;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    #[command(flatten)]
    pub on: super::OnMachine,
    #[command(flatten)]
    pub only: super::OnlyProvider,
    /// Also read and verify all stored data (slow)
    #[arg(long)]
    pub read_data: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let m = super::backups_on(g, &o.on)?;
    let results = m.check(
        o.only.provider.as_deref(),
        o.read_data,
        super::reporter().as_ref(),
    )?;
    for (name, r) in &results {
        if let Ok(report) = r {
            println!("{name}: ok ({report})");
        }
    }
    super::finish(&o.on.machine, &results)
}
