//! Renders the operations' events: bars and one spinner line per machine on a
//! terminal, plain lines otherwise.

use std::collections::BTreeMap;
use std::sync::Mutex;

use clan_ops::{Event, Reporter};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// The reporter for this terminal (or pipe).
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
            Event::Machine { machine, of } => match *of {
                Event::Step { step, .. } => eprintln!("==> {machine}: {step}"),
                Event::Warning { message } => {
                    crate::output::warning(&format!("{machine}: {message}"))
                }
                Event::Output { line, .. } => eprintln!("    {machine}: {line}"),
                _ => {}
            },
            Event::MachineDone {
                machine, summary, ..
            } => eprintln!("==> {machine}: {summary}"),
        }
    }
}

/// One line per step with a bar while work reports how far it is; one spinner line
/// per machine for operations on several.
#[derive(Default)]
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
    multi: MultiProgress,
    machines: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Bars {
    fn finish_current(slot: &mut Option<ProgressBar>) {
        if let Some(b) = slot.take() {
            b.finish_and_clear();
        }
    }

    fn println(&self, slot: &Option<ProgressBar>, line: String) {
        match slot {
            Some(b) => b.println(line),
            None if !self.machines.lock().expect("machines").is_empty() => {
                let _ = self.multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    fn machine_line(&self, machine: &str) -> ProgressBar {
        self.machines
            .lock()
            .expect("machines")
            .entry(machine.to_string())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:20} {msg}")
                        .expect("valid template"),
                );
                bar.set_prefix(machine.to_string());
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar
            })
            .clone()
    }
}

impl Reporter for Bars {
    fn report(&self, event: Event) {
        let mut slot = self.bar.lock().expect("progress bar");
        match event {
            Event::Step { provider, step } => {
                Self::finish_current(&mut slot);
                let prefix = provider.map(|p| format!("[{p}] ")).unwrap_or_default();
                self.println(&slot, format!("==> {prefix}{step}"));
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
            Event::Output { line, .. } => self.println(&slot, format!("    {line}")),
            Event::Warning { message } => self.println(&slot, format!("warning: {message}")),
            Event::Machine { machine, of } => match *of {
                Event::Step { step, .. } => self.machine_line(&machine).set_message(step),
                Event::Warning { message } => {
                    self.println(&slot, format!("warning: {machine}: {message}"))
                }
                _ => {}
            },
            Event::MachineDone {
                machine, summary, ..
            } => self.machine_line(&machine).finish_with_message(summary),
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        Self::finish_current(&mut self.bar.lock().expect("progress bar"));
    }
}
