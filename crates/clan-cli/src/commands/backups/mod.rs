//! `clan backups ...`: runs on the machine where the data is. Today that is this
//! machine (a target host of localhost, or `--local`); remote machines arrive with
//! the machine runtime over SSH.

pub mod check;
pub mod create;
pub mod list;
pub mod prune;
pub mod restore;

use clap::Args;

use clan_backup::{Event, Machine, Reporter};

use crate::cli::Global;
use crate::error::{CliError, Result};

/// Options every `clan backups` command takes.
#[derive(Debug, Args)]
pub struct Target {
    /// The machine
    pub machine: String,
    /// Run here even though the machine's target host is another host
    #[arg(long)]
    pub local: bool,
}

/// `--provider P`, for the commands that act on every provider by default.
#[derive(Debug, Args)]
pub struct OnlyProvider {
    /// Only this provider
    #[arg(long)]
    pub provider: Option<String>,
}

fn is_local(target: Option<&str>) -> bool {
    let Some(t) = target else { return false };
    let host = t.rsplit('@').next().unwrap_or(t);
    let host = host.split(':').next().unwrap_or(host);
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]")
}

/// Resolves the machine and checks that its backups can run here.
pub fn machine(g: &Global, t: &Target) -> Result<Machine> {
    let clan = super::open_clan(g)?;
    let m = clan.machine(&t.machine)?;
    if !t.local && !is_local(m.deploy.target_host.as_deref()) {
        let target = m.deploy.target_host.clone().unwrap_or_else(|| {
            clan_core::host::Target::default_for(&t.machine, &clan.inventory.meta.domain)
                .to_string()
        });
        return Err(CliError::Usage(format!(
            "machine '{}' is reached at {target}; running backups over SSH is not supported yet.\n\
             Run clan on that machine, or pass --local if this is that machine",
            t.machine
        )));
    }
    let resolution = clan.resolve(std::slice::from_ref(&t.machine))?;
    resolution
        .warnings
        .iter()
        .for_each(|w| crate::output::warning(w));
    Ok(Machine::from_resolved(&resolution.machines[&t.machine]))
}

/// Renders progress: bars and a spinner on a terminal, plain lines otherwise.
pub fn reporter() -> Box<dyn Reporter> {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        Box::new(Bars::default())
    } else {
        Box::new(Lines)
    }
}

/// Plain lines on stderr (progress counts are left out).
pub struct Lines;

impl Reporter for Lines {
    fn report(&self, event: Event) {
        match event {
            Event::Step {
                provider: Some(p),
                step,
            } => eprintln!("==> [{p}] {step}"),
            Event::Step {
                provider: None,
                step,
            } => eprintln!("==> {step}"),
            Event::Output { line, .. } => eprintln!("    {line}"),
            Event::Progress { .. } => {}
            Event::Warning { message } => crate::output::warning(&message),
        }
    }
}

/// One line per step; a bar while the engine reports how far it is.
#[derive(Default)]
pub struct Bars {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl Bars {
    fn finish_current(slot: &mut Option<indicatif::ProgressBar>) {
        if let Some(b) = slot.take() {
            b.finish_and_clear();
        }
    }
}

impl Reporter for Bars {
    fn report(&self, event: Event) {
        use indicatif::{ProgressBar, ProgressStyle};
        let mut slot = self.bar.lock().expect("progress bar");
        match event {
            Event::Step { provider, step } => {
                Self::finish_current(&mut slot);
                let prefix = provider.map(|p| format!("[{p}] ")).unwrap_or_default();
                eprintln!("==> {prefix}{step}");
            }
            Event::Progress {
                step,
                done,
                total,
                bytes,
            } => {
                let bar = slot.get_or_insert_with(|| ProgressBar::new(0));
                let template = match (total, bytes) {
                    (Some(_), true) => "    {msg:24} [{bar:30}] {bytes}/{total_bytes} ({eta})",
                    (Some(_), false) => "    {msg:24} [{bar:30}] {pos}/{len}",
                    (None, true) => "    {spinner} {msg:24} {bytes}",
                    (None, false) => "    {spinner} {msg:24} {pos}",
                };
                bar.set_style(
                    ProgressStyle::with_template(template)
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                bar.set_message(step);
                if let Some(t) = total {
                    bar.set_length(t);
                }
                bar.set_position(done);
            }
            Event::Output { line, .. } => match slot.as_ref() {
                Some(b) => b.println(format!("    {line}")),
                None => eprintln!("    {line}"),
            },
            Event::Warning { message } => match slot.as_ref() {
                Some(b) => b.println(format!("warning: {message}")),
                None => crate::output::warning(&message),
            },
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        Self::finish_current(&mut self.bar.lock().expect("progress bar"));
    }
}

/// Prints each failed provider's error; fails if any failed.
pub fn finish<T>(results: &[(String, clan_backup::Result<T>)]) -> Result {
    let failed: Vec<&String> = results
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| (name, e)))
        .map(|(name, e)| {
            eprintln!("error: provider '{name}': {e}");
            name
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Partial(format!(
            "{} of {} providers failed: {}",
            failed.len(),
            results.len(),
            failed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}
