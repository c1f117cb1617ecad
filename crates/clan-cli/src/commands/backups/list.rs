//! `clan backups list MACHINE [--provider P] [--json]`

use clap::Args;

use crate::cli::Global;
use crate::error::Result;
use crate::output;

#[derive(Debug, Args)]
pub struct Opts {
    #[command(flatten)]
    pub on: super::OnMachine,
    #[command(flatten)]
    pub only: super::OnlyProvider,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let m = super::backups_on(g, &o.on)?;
    let results = m.list(o.only.provider.as_deref(), super::reporter().as_ref())?;
    let mut all: Vec<_> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    all.sort_by(|a, b| a.backup.time.cmp(&b.backup.time));
    if o.json {
        output::json(&all);
    } else {
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|b| {
                vec![
                    b.backup.name.clone(),
                    b.provider.clone(),
                    b.backup.time.clone(),
                    b.backup.states.join(","),
                    b.backup.size.map(human_size).unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        output::table(
            &["NAME", "PROVIDER", "TIME (UTC)", "STATES", "ADDED"],
            &rows,
        );
        for b in all.iter().filter(|b| !b.backup.missing.is_empty()) {
            println!(
                "{} was made while these folders did not exist: {}",
                b.backup.name,
                b.backup.missing.join(", ")
            );
        }
    }
    super::finish(&o.on.machine, &results)
}

pub fn human_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}
