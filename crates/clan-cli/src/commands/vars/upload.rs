//! `clan vars upload MACHINE --directory DIR`: the machine's key and decrypted
//! deployable secrets, laid out as /var/lib/clan/secrets on the machine.

use std::path::PathBuf;

use clap::Args;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    pub machine: String,
    /// Where to write (absent, empty, or a previous upload, which is replaced)
    #[arg(long)]
    pub directory: PathBuf,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = super::fleet(g, std::slice::from_ref(&o.machine))?;
    let done = clan_ops::vars::upload(&fleet, &o.machine, &o.directory)?;
    println!(
        "Wrote {} files for {} into {}",
        done.manifest.files.len(),
        o.machine,
        o.directory.display()
    );
    if !done.ownership_deferred.is_empty() {
        println!(
            "Owners not applied here (unknown on this system, or not root), recorded in {}: {}",
            clan_vars::upload::MANIFEST,
            done.ownership_deferred.join(", ")
        );
    }
    Ok(())
}
