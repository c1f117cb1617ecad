//! `clan backups create MACHINE [--provider P] [--state S]`

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
    /// Only this state (clan.core.state.<name>); default: all
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,
    /// Print the new backups as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let mut m = super::backups_on(g, &o.on)?;
    if let Some(state) = &o.state {
        m.machine = m.machine.only_state(state)?;
    }
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
