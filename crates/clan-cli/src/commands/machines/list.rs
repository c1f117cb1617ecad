//! `clan machines list [--tags T...] [--json]`

use clap::Args;

use crate::cli::Global;
use crate::error::Result;
use crate::output;

#[derive(Debug, Args)]
pub struct Opts {
    /// Only machines that carry all of these tags
    #[arg(long, num_args = 1..)]
    pub tags: Vec<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let clan = super::super::open_clan(g)?;
    let machines: Vec<_> = clan.inventory.machines_with_tags(&o.tags).collect();
    if o.json {
        output::json(&machines);
    } else {
        let rows: Vec<Vec<String>> = machines
            .iter()
            .map(|m| {
                vec![
                    m.name.to_string(),
                    m.machine_class.to_string(),
                    m.deploy.target_host.clone().unwrap_or_else(|| "-".into()),
                    m.tags.join(","),
                    m.description.clone().unwrap_or_default(),
                ]
            })
            .collect();
        output::table(&["NAME", "CLASS", "TARGET", "TAGS", "DESCRIPTION"], &rows);
    }
    Ok(())
}
