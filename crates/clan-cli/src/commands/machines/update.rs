//! `clan machines update [MACHINE...] [--tags TAG...] [--jobs N]` (the operation is
//! clan-ops' `machines::update`).

use std::path::PathBuf;

use clap::Args;

use clan_ops::machines::update::{Outcome, UpdateOptions, update};

use crate::cli::Global;
use crate::commands::vars::generate;
use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// Machines to update. Default: every machine (those with
    /// requireExplicitUpdate only when named)
    pub machines: Vec<String>,
    /// Only machines with all these tags
    #[arg(long, num_args = 1..)]
    pub tags: Vec<String>,
    /// At most this many machines at once
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Answer a prompt of a missing var from a file
    #[arg(long = "prompt", value_name = "GEN/PROMPT=FILE", value_parser = generate::parse_prompt)]
    pub prompts: Vec<(String, PathBuf)>,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = crate::commands::vars::fleet(g, &[])?;
    let answered = o.prompts.iter().map(|(id, _)| id.clone()).collect();
    let report = update(
        &fleet,
        &UpdateOptions {
            machines: o.machines,
            tags: o.tags,
            jobs: o.jobs,
            answered,
        },
        &generate::answers(o.prompts),
        crate::render::reporter().as_ref(),
    )?;
    generate::print_generated(&report.generated);
    for (name, outcome) in &report.machines {
        match outcome {
            Outcome::Updated { installed, changes } => println!(
                "{name}: updated ({} change{}{})",
                changes.len(),
                if changes.len() == 1 { "" } else { "s" },
                if *installed {
                    ", runtime installed"
                } else {
                    ""
                }
            ),
            Outcome::Failed { error } => println!("{name}: FAILED: {error}"),
        }
    }
    let failed = report.failed();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Partial(format!(
            "{} of {} machines failed: {}",
            failed.len(),
            report.machines.len(),
            failed.join(", ")
        )))
    }
}
