//! `clan __runtime [--timer PROVIDER | --drill PROVIDER | --activate ID]` (hidden): the machine
//! runtime. Without options it serves one request from the admin's clan (JSON on
//! stdin, JSON lines on stdout); `--timer` is what a backup timer runs, `--drill`
//! what a drill timer runs, `--activate` a NixOS activation (nixos.rs).

use clap::Args;

use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// Back up to this provider and prune it, as configured in /etc/clan/machine.json
    #[arg(long, value_name = "PROVIDER")]
    pub timer: Option<String>,
    /// Drill this provider's newest backups, as configured in /etc/clan/machine.json
    #[arg(long, value_name = "PROVIDER", conflicts_with = "timer")]
    pub drill: Option<String>,
    /// Run NixOS activation ID (started by an admin's `machines update`)
    #[arg(long, value_name = "ID", conflicts_with_all = ["timer", "drill"])]
    pub activate: Option<String>,
}

pub fn run(o: Opts) -> Result {
    if let Some(id) = o.activate {
        return clan_runtime::nixos::activate(&id).map_err(CliError::Usage);
    }
    match (o.timer, o.drill) {
        (Some(provider), _) => {
            clan_runtime::serve::timer(&provider, &crate::render::Lines).map_err(CliError::Usage)
        }
        (None, Some(provider)) => {
            clan_runtime::serve::drill_timer(&provider, &crate::render::Lines)
                .map_err(CliError::Usage)
        }
        (None, None) => {
            clan_runtime::serve::serve(&mut std::io::stdin().lock(), &mut std::io::stdout());
            Ok(())
        }
    }
}
