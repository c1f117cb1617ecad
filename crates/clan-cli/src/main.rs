//! The `clan` command. Thin: parses arguments, calls the operations (clan-ops),
//! renders results.

mod cli;
mod commands;
mod error;
mod output;
mod prompt;
mod render;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&e);
            ExitCode::FAILURE
        }
    }
}
