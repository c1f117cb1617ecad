//! `clan machines delete NAME` (clan-ops' `machines::delete`).

use clap::Args;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    /// The machine to delete
    pub name: String,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = clan_ops::Fleet::unresolved(super::super::clan_dir(g)?)?;
    let deleted = clan_ops::machines::delete::delete(&fleet, &o.name)?;
    println!(
        "Deleted machine '{}'{}",
        o.name,
        if deleted.committed {
            " (committed)"
        } else {
            ""
        }
    );
    if !deleted.removed_from.is_empty() {
        println!("It was removed from: {}", deleted.removed_from.join(", "));
    }
    Ok(())
}
