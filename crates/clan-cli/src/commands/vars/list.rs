//! `clan vars list MACHINE` (clan-ops' `vars::list`).

use clap::Args;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    pub machine: String,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = super::super::fleet_of(g, std::slice::from_ref(&o.machine))?;
    for v in clan_ops::vars::list(&fleet, &o.machine)? {
        let shown = match (v.set, v.secret, v.value) {
            (false, _, _) => "<not set>".to_string(),
            (true, true, _) => "********".to_string(),
            (true, false, value) => value.unwrap_or_default(),
        };
        println!("{}: {shown}", v.id);
    }
    Ok(())
}
