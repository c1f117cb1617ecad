//! `clan vars check [MACHINE...]` (clan-ops' `vars::check`)

use clap::Args;

use crate::cli::Global;
use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// Machines; default: all
    pub machines: Vec<String>,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let checked = clan_ops::vars::check(&super::fleet(g, &o.machines)?)?;
    for (path, reason) in &checked.damaged {
        println!("damaged: {} ({reason})", path.display());
    }
    for line in &checked.missing {
        println!("missing or outdated: {line}");
    }
    for line in &checked.stale {
        println!("not encrypted to its current readers: {line}");
    }
    let todo = checked.todo();
    if todo.is_empty() {
        println!("All vars are present and up to date.");
        Ok(())
    } else {
        Err(CliError::Partial(todo.join("; ")))
    }
}
