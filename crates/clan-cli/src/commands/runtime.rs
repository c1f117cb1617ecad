//! `clan __runtime [--timer PROVIDER]` (hidden): the machine runtime. Without
//! options it serves one request from the admin's clan (JSON on stdin, JSON lines
//! on stdout); `--timer` is what a backup timer runs.

use clap::Args;

use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// Back up to this provider and prune it, as configured in /etc/clan/machine.json
    #[arg(long, value_name = "PROVIDER")]
    pub timer: Option<String>,
}

pub fn run(o: Opts) -> Result {
    match o.timer {
        Some(provider) => {
            clan_runtime::serve::timer(&provider, &crate::render::Lines).map_err(CliError::Usage)
        }
        None => {
            clan_runtime::serve::serve(&mut std::io::stdin().lock(), &mut std::io::stdout());
            Ok(())
        }
    }
}
