//! `clan config --machine M [OPTION [VALUE]]` (clan-ops' `config`): without OPTION
//! the machine's settable options; with OPTION its value and where it is set; with
//! VALUE (JSON when it parses as JSON, else a string) it is checked, written and
//! committed.

use clap::Args;

use crate::cli::Global;
use crate::error::Result;
use crate::output;

#[derive(Debug, Args)]
pub struct Opts {
    /// The machine
    #[arg(long)]
    pub machine: String,
    /// The option, e.g. deploy.targetHost or clan.core.deployment.requireExplicitUpdate
    pub option: Option<String>,
    /// The new value: JSON (true, 3, ["a"]) or else a string
    pub value: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = super::fleet_of(g, std::slice::from_ref(&o.machine))?;
    let (option, value) = match (o.option, o.value) {
        (None, _) => {
            let all = clan_ops::config::list(&fleet, &o.machine)?;
            if o.json {
                output::json(&all);
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|s| {
                        vec![
                            s.option.clone(),
                            s.ty.clone(),
                            s.default
                                .as_ref()
                                .map(|d| d.to_string())
                                .unwrap_or_else(|| "-".into()),
                            s.value.to_string(),
                        ]
                    })
                    .collect();
                output::table(&["OPTION", "TYPE", "DEFAULT", "VALUE"], &rows);
            }
            return Ok(());
        }
        (Some(option), value) => (option, value),
    };
    let Some(value) = value else {
        let s = clan_ops::config::get(&fleet, &o.machine, &option)?;
        if o.json {
            output::json(&s);
        } else {
            println!("{}", s.value);
            match s.set_in.as_slice() {
                [] => eprintln!("{}: the default ({})", s.option, s.ty),
                set_in => eprintln!("{}: set in {} ({})", s.option, set_in.join(", "), s.ty),
            }
            if let Some(why) = &s.fixed_by {
                eprintln!("note: {why}");
            }
        }
        return Ok(());
    };
    let written = clan_ops::config::set(&fleet, &o.machine, &option, &value)?;
    if o.json {
        output::json(&written);
    } else {
        println!(
            "Set {option} of {} in {}{}",
            o.machine,
            written
                .files
                .iter()
                .map(|f| f
                    .strip_prefix(fleet.clan.dir.root())
                    .unwrap_or(f)
                    .display()
                    .to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if written.committed {
                " (committed)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
