//! `clan backups create MACHINE [--provider P]`

use clap::Args;

use clan_backup::Reason;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    #[command(flatten)]
    pub on: super::OnMachine,
    #[command(flatten)]
    pub only: super::OnlyProvider,
    /// Print the new backups as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let m = super::backups_on(g, &o.on)?;
    let results = m.create(
        o.only.provider.as_deref(),
        Reason::Explicit,
        super::reporter().as_ref(),
    )?;
    let made: Vec<_> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .collect();
    if o.json {
        crate::output::json(&made);
    } else {
        for b in &made {
            println!("{}", b.backup.name);
        }
    }
    super::finish(&o.on.machine, &results)
}
