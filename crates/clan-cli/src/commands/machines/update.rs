//! `clan machines update [MACHINE...] [--tags TAG...] [--jobs N] [--dry-run]
//! [--no-rollback] [--build-host HOST] [--target-host HOST]` (the operation is clan-ops'
//! `machines::update`; NixOS machines: `machines::nixos`).

use std::path::PathBuf;

use clap::Args;

use clan_ops::machines::nixos::NixosOptions;
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
    /// NixOS machines: build their systems only
    #[arg(long)]
    pub dry_run: bool,
    /// NixOS machines: keep the new system even if no confirmation comes over a
    /// new connection after the activation
    #[arg(long)]
    pub no_rollback: bool,
    /// NixOS machines: build on this host over SSH ([user@]host[:port]; localhost:
    /// here) instead of each machine's deploy.buildHost
    #[arg(long, value_name = "HOST")]
    pub build_host: Option<String>,
    /// Reach the one machine named at this address instead ([user@]host[:port])
    #[arg(long, value_name = "HOST")]
    pub target_host: Option<String>,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let mut fleet = crate::commands::vars::fleet(g, &[])?;
    if let Some(host) = o.target_host {
        let [name] = &o.machines[..] else {
            return Err(CliError::Usage(
                "--target-host needs exactly one machine name".into(),
            ));
        };
        host.parse::<clan_core::host::Target>()
            .map_err(|e| CliError::Usage(format!("--target-host {host}: {e}")))?;
        fleet.machine(name)?;
        if let Some(m) = fleet.all.get_mut(name) {
            m.deploy.target_host = Some(host);
        }
    }
    let answered = o.prompts.iter().map(|(id, _)| id.clone()).collect();
    let report = update(
        &fleet,
        &UpdateOptions {
            machines: o.machines,
            tags: o.tags,
            jobs: o.jobs,
            answered,
            nixos: NixosOptions {
                dry_run: o.dry_run,
                no_rollback: o.no_rollback,
                build_host: o.build_host,
            },
        },
        &generate::answers(o.prompts),
        crate::render::reporter().as_ref(),
    )?;
    generate::print_generated(&report.generated);
    for (name, outcome) in &report.machines {
        match outcome {
            Outcome::Updated { installed, changes } => {
                println!(
                    "{name}: updated ({} change{}{})",
                    changes.len(),
                    if changes.len() == 1 { "" } else { "s" },
                    if *installed {
                        ", runtime installed"
                    } else {
                        ""
                    }
                );
                for change in changes {
                    println!("  {change}");
                }
            }
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
