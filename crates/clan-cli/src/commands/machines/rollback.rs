//! `clan machines rollback MACHINE [--no-rollback]`: a NixOS machine back to the
//! generation before its current one, activated and confirmed over a new
//! connection like an update.

use clap::Args;

use clan_ops::machines::{nixos, update};

use crate::cli::Global;
use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// The NixOS machine
    pub machine: String,
    /// Keep the older system even if no confirmation comes
    #[arg(long)]
    pub no_rollback: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = crate::commands::vars::fleet(g, &[])?;
    let m = nixos::machine(&fleet, &o.machine)?;
    let options = nixos::NixosOptions {
        dry_run: false,
        no_rollback: o.no_rollback,
        build_host: None,
    };
    let reporter = crate::render::reporter();
    let on = |e: clan_core::event::Event| reporter.report(e.on(&o.machine));
    match nixos::rollback(&fleet, m, &update::ssh, &options, &on) {
        Ok(changes) => {
            println!("{}: rolled back", o.machine);
            for change in changes {
                println!("  {change}");
            }
            Ok(())
        }
        Err(e) => Err(CliError::Partial(format!("{}: {e}", o.machine))),
    }
}
