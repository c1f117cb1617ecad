//! `clan backups prune MACHINE [--keep-last N ...]` (clan-ops' `backups::prune`).

use clap::Args;

use clan_backup::engine::Keep;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    #[command(flatten)]
    pub on: super::OnMachine,
    #[command(flatten)]
    pub only: super::OnlyProvider,
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let given = [
        o.keep_last,
        o.keep_daily,
        o.keep_weekly,
        o.keep_monthly,
        o.keep_yearly,
    ];
    let keep = given.iter().any(Option::is_some).then(|| Keep {
        last: o.keep_last.unwrap_or(0),
        daily: o.keep_daily.unwrap_or(0),
        weekly: o.keep_weekly.unwrap_or(0),
        monthly: o.keep_monthly.unwrap_or(0),
        yearly: o.keep_yearly.unwrap_or(0),
    });
    let results = clan_ops::backups::prune(
        &super::fleet(g, &o.on)?,
        &o.on.machine,
        o.on.local,
        o.only.provider.as_deref(),
        keep,
        super::reporter().as_ref(),
    )?;
    for (name, r) in &results {
        if let Ok(gone) = r {
            println!("{name}: removed {}", gone.len());
            gone.iter().for_each(|n| println!("  {n}"));
        }
    }
    super::finish(&o.on.machine, &results)
}
