//! `clan vars check [MACHINE...]`

use clap::Args;

use clan_vars::generate::exists;
use clan_vars::recipients::{damaged, stale};

use crate::cli::Global;
use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// Machines; default: all
    pub machines: Vec<String>,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = super::fleet(g, &o.machines)?;
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
    let readers = fleet.readers()?;
    let damaged = damaged(&store, &readers, &selected);
    let stale = stale(&store, &readers, &selected);
    for (path, reason) in &damaged {
        let rel = path.strip_prefix(store.root()).unwrap_or(path);
        println!("damaged: {} ({reason})", rel.display());
    }
    for line in &missing {
        println!("missing or outdated: {line}");
    }
    for line in stale.describe() {
        println!("not encrypted to its current readers: {line}");
    }
    let mut todo = Vec::new();
    if !damaged.is_empty() {
        todo.push(format!(
            "{} files are damaged: regenerate them (`clan vars generate MACHINE -g GENERATOR \
             --regenerate`) or restore them from git history (`git log -- FILE`)",
            damaged.len()
        ));
    }
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
