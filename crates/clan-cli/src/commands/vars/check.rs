//! `clan vars check [MACHINE...]`

use clap::Args;

use clan_vars::generate::exists;
use clan_vars::recipients::stale;

use super::Fleet;
use crate::cli::Global;
use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// Machines; default: all
    pub machines: Vec<String>,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = Fleet::load(g, &o.machines)?;
    let store = fleet.store();
    let selected = fleet.selected_vars();
    let mut missing = Vec::new();
    for m in &selected {
        for (name, decl) in m.generators {
            if !exists(&store, m.name, name, decl) {
                missing.push(format!("{}: {name}", m.name));
            }
        }
    }
    let stale = stale(&store, &fleet.readers()?, &selected);
    for line in &missing {
        println!("missing or outdated: {line}");
    }
    for line in stale.describe() {
        println!("not encrypted to its current readers: {line}");
    }
    let mut todo = Vec::new();
    if !missing.is_empty() {
        todo.push(format!(
            "{} generators need to run: `clan vars generate`",
            missing.len()
        ));
    }
    if !stale.is_empty() {
        todo.push(format!(
            "{} secrets need re-encryption: `clan vars fix`",
            stale.len()
        ));
    }
    if todo.is_empty() {
        println!("All vars are present and up to date.");
        Ok(())
    } else {
        Err(CliError::Partial(todo.join("; ")))
    }
}
