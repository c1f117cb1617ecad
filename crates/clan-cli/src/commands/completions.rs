//! `clan completions SHELL`

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    /// bash, zsh, fish, elvish or powershell
    pub shell: Shell,
}

pub fn run(o: Opts) -> Result {
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(o.shell, &mut cmd, "clan", &mut std::io::stdout());
    Ok(())
}
