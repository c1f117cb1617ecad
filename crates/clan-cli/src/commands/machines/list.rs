//! `clan machines list [--tags T...] [--check] [--json]`

use clap::Args;

use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::output;

#[derive(Debug, Args)]
pub struct Opts {
    /// Only machines that carry all of these tags
    #[arg(long, num_args = 1..)]
    pub tags: Vec<String>,
    /// Also ask each machine over SSH whether it answers (exit code 1 when one does not)
    #[arg(long)]
    pub check: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let clan = super::super::open_clan(g)?;
    let machines: Vec<_> = clan.inventory.machines_with_tags(&o.tags).collect();
    let reach = if o.check && !machines.is_empty() {
        let names: Vec<String> = machines.iter().map(|m| m.name.to_string()).collect();
        let fleet = super::super::fleet_of(g, &names)?;
        clan_ops::machines::check::reachability(&fleet, &clan_ops::machines::update::ssh)
    } else {
        Vec::new()
    };
    if o.json {
        if o.check {
            let rows: Vec<_> = machines
                .iter()
                .zip(&reach)
                .map(|(m, r)| {
                    let mut v = serde_json::to_value(m).expect("a machine serializes");
                    v["reachable"] = serde_json::json!(r);
                    v
                })
                .collect();
            output::json(&rows);
        } else {
            output::json(&machines);
        }
    } else {
        let mut header = vec!["NAME", "CLASS", "TARGET", "TAGS", "DESCRIPTION"];
        if o.check {
            header.push("ANSWERS");
        }
        let rows: Vec<Vec<String>> = machines
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut row = vec![
                    m.name.to_string(),
                    m.machine_class.to_string(),
                    m.deploy.target_host.clone().unwrap_or_else(|| "-".into()),
                    m.tags.join(","),
                    m.description.clone().unwrap_or_default(),
                ];
                if let Some(r) = reach.get(i) {
                    row.push(match &r.error {
                        None => format!("yes ({} ms)", r.millis),
                        Some(e) => format!("no: {}", e.lines().next().unwrap_or_default()),
                    });
                }
                row
            })
            .collect();
        output::table(&header, &rows);
    }
    let down: Vec<&str> = reach
        .iter()
        .filter(|r| !r.ok())
        .map(|r| r.machine.as_str())
        .collect();
    if down.is_empty() {
        Ok(())
    } else {
        Err(CliError::Partial(format!(
            "{} of {} machines do not answer: {}",
            down.len(),
            reach.len(),
            down.join(", ")
        )))
    }
}
