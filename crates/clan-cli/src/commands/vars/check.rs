//! `clan vars check [MACHINE...]`

use clap::Args;

use clan_vars::generate::exists;
use clan_vars::store::Store;

use crate::cli::Global;
use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// Machines; default: all
    pub machines: Vec<String>,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let (clan, machines) = super::machines(g, &o.machines)?;
    let store = Store::new(clan.dir.root());
    let mut missing = Vec::new();
    for m in machines.values() {
        for (name, decl) in &m.clan_core.vars.generators {
            if !exists(&store, &m.name, name, decl) {
                missing.push(format!("{}: {name}", m.name));
            }
        }
    }
    if missing.is_empty() {
        println!("All vars are present and up to date.");
        Ok(())
    } else {
        for line in &missing {
            println!("missing or outdated: {line}");
        }
        Err(CliError::Partial(format!(
            "{} generators need to run: `clan vars generate`",
            missing.len()
        )))
    }
}
