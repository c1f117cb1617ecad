//! `clan vars fix [MACHINE...]`: re-encrypt secrets and machine keys to their
//! current readers (after adding an admin, or a machine to a shared generator).

use clap::Args;

use clan_vars::keys;
use clan_vars::recipients::fix;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    /// Machines; default: all
    pub machines: Vec<String>,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = super::fleet(g, &o.machines)?;
    let admin = keys::read_identity(&keys::admin_key_file())?;
    let fixed = fix(
        &fleet.store(),
        &fleet.readers()?,
        &fleet.selected_vars(),
        &admin,
    )?;
    if fixed.is_empty() {
        println!("Every secret is encrypted to its current readers.");
    } else {
        for line in fixed.describe() {
            println!("re-encrypted: {line}");
        }
        println!("Re-encrypted {} (committed).", fixed.len());
    }
    Ok(())
}
