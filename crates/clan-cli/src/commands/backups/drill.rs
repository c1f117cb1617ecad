//! `clan backups drill MACHINE [--provider P] [--state S] [--json]`

use clap::Args;

use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::output;

#[derive(Debug, Args)]
pub struct Opts {
    #[command(flatten)]
    pub on: super::OnMachine,
    #[command(flatten)]
    pub only: super::OnlyProvider,
    /// Only this state
    #[arg(long)]
    pub state: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let m = super::backups_on(g, &o.on)?;
    let results = m.drill(
        o.only.provider.as_deref(),
        o.state.as_deref(),
        super::reporter().as_ref(),
    )?;
    let drills: Vec<_> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .flatten()
        .collect();
    if o.json {
        output::json(&drills);
    } else {
        for d in &drills {
            let what = format!(
                "{}: state '{}' from {}",
                d.provider,
                d.state,
                d.backup.as_deref().unwrap_or("(no backup)")
            );
            if d.ok {
                println!(
                    "{what}: ok, {} files, {} checked in {:.1} s",
                    d.files,
                    super::list::human_size(d.bytes),
                    d.duration_ms as f64 / 1000.0
                );
            } else {
                println!("{what}: FAILED");
                if let Some(e) = &d.error {
                    println!("  {e}");
                }
                for mismatch in &d.mismatches {
                    println!("  {mismatch}");
                }
            }
        }
    }
    super::finish(&o.on.machine, &results)?;
    let failed = drills.iter().filter(|d| !d.ok).count();
    if failed > 0 {
        return Err(CliError::Partial(format!(
            "{failed} of {} drills failed on machine '{}'",
            drills.len(),
            o.on.machine
        )));
    }
    Ok(())
}
