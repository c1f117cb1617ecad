//! `clan vars fix [MACHINE...]`: re-encrypt secrets and machine keys to their
//! current readers (after adding an admin, or a machine to a shared generator).

use clap::Args;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    /// Machines; default: all
    pub machines: Vec<String>,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fixed = clan_ops::vars::fix(&super::fleet(g, &o.machines)?)?;
    if fixed.is_empty() {
        println!("Every secret is encrypted to its current readers.");
    } else {
        for line in &fixed {
            println!("re-encrypted: {line}");
        }
        println!("Re-encrypted {} (committed).", fixed.len());
    }
    Ok(())
}
