//! `clan vars set MACHINE GEN/FILE`: a value from stdin, or typed on the terminal
//! (hidden and confirmed for secrets).

use std::io::Read;

use clap::Args;

use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::prompt;

#[derive(Debug, Args)]
pub struct Opts {
    pub machine: String,
    /// GENERATOR/FILE
    pub var: String,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = super::fleet(g, std::slice::from_ref(&o.machine))?;
    // Checks the var and the admin's access before asking for anything.
    let secret = clan_ops::vars::prepare_set(&fleet, &o.machine, &o.var)?;
    let value = if prompt::on_terminal() {
        let label = format!("{} {}", o.machine, o.var);
        if secret {
            prompt::hidden_confirmed(&label)
        } else {
            prompt::line(&label)
        }
    } else {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v).map(|_| v)
    }
    .map_err(|e| CliError::Usage(format!("reading the value of {}: {e}", o.var)))?;
    let committed = clan_ops::vars::set(&fleet, &o.machine, &o.var, &value)?;
    println!(
        "Set {} of {}{}",
        o.var,
        o.machine,
        if committed { " (committed)" } else { "" }
    );
    Ok(())
}
