//! `clan machines generations [MACHINE...]`: the system generations of NixOS
//! machines (generation, date, the current one marked).

use clap::Args;

use clan_ops::machines::{nixos, update};

use crate::cli::Global;
use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// NixOS machines. Default: every NixOS machine
    pub machines: Vec<String>,
    /// One JSON document: machine -> its generations
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = crate::commands::vars::fleet(g, &[])?;
    let names: Vec<String> = if o.machines.is_empty() {
        fleet
            .all
            .iter()
            .filter(|(_, m)| m.machine_class == clan_core::inventory::MachineClass::Nixos)
            .map(|(n, _)| n.clone())
            .collect()
    } else {
        o.machines.clone()
    };
    let mut all = serde_json::Map::new();
    let mut failed = Vec::new();
    for name in &names {
        let m = nixos::machine(&fleet, name)?;
        match nixos::generations(&fleet, m, &update::ssh) {
            Ok(gens) => {
                if !o.json {
                    println!("{name}:");
                    for g in &gens {
                        println!(
                            "  {:>4}  {}{}",
                            g.number,
                            g.date,
                            if g.current { "  (current)" } else { "" }
                        );
                    }
                }
                all.insert(name.clone(), serde_json::to_value(gens).expect("JSON"));
            }
            Err(e) => {
                if !o.json {
                    println!("{name}: FAILED: {e}");
                }
                failed.push(name.clone());
            }
        }
    }
    if o.json {
        println!("{}", serde_json::Value::Object(all));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Partial(format!(
            "could not list the generations of {}",
            failed.join(", ")
        )))
    }
}
