//! `clan backups ...`: runs on the machine where the data is: here (a target host
//! of localhost, or `--local`), or through the machine's runtime over SSH, with the
//! same results and the same progress.

pub mod check;
pub mod create;
pub mod list;
pub mod prune;
pub mod restore;

use clap::Args;

use clan_backup::{Event, Machine, Reporter};
use clan_runtime::backups::{Backups, Place};

use crate::cli::Global;
use crate::error::{CliError, Result};

/// Options every `clan backups` command takes.
#[derive(Debug, Args)]
pub struct Target {
    /// The machine
    pub machine: String,
    /// Run here (this is the machine) instead of on its target host over SSH
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

/// Resolves the machine and where its backups run.
pub fn machine(g: &Global, t: &Target) -> Result<Backups> {
    let clan = super::open_clan(g)?;
    clan.machine(&t.machine)?;
    let resolution = clan.resolve(std::slice::from_ref(&t.machine))?;
    resolution
        .warnings
        .iter()
        .for_each(|w| crate::output::warning(w));
    let resolved = &resolution.machines[&t.machine];
    let place = if t.local || crate::remote::is_local(resolved.deploy.target_host.as_deref()) {
        Place::Here
    } else {
        Place::Remote(crate::remote::runtime(&clan, resolved)?)
    };
    Ok(Backups {
        machine: Machine::from_resolved(resolved),
        place,
    })
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
pub fn finish<T>(machine: &str, results: &[(String, clan_backup::Result<T>)]) -> Result {
    let failed: Vec<&String> = results
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| (name, e)))
        .map(|(name, e)| {
            // The line names the provider already.
            let text = e.to_string();
            let text = text
                .strip_prefix(&format!("provider '{name}': "))
                .unwrap_or(&text);
            eprintln!("error: machine '{machine}', provider '{name}': {text}");
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
