//! `clan vars get MACHINE GEN/FILE`

use std::io::Write;

use clap::Args;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    pub machine: String,
    /// GENERATOR/FILE
    pub var: String,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = super::super::fleet_of(g, std::slice::from_ref(&o.machine))?;
    let value = clan_ops::vars::get(&fleet, &o.machine, &o.var)?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&value);
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) && !value.ends_with(b"\n") {
        let _ = out.write_all(b"\n");
    }
    Ok(())
}
