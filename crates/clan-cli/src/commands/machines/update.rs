//! `clan machines update [MACHINE...] [--tags TAG...] [--jobs N]`: bring Linux
//! machines to their configuration over SSH — the runtime binary, the resolved
//! configuration, the secrets, users, borg repositories and backup timers.

use std::path::PathBuf;
use std::sync::Mutex;

use clap::Args;
use serde_json::Value;

use clan_backup::Event;
use clan_core::ResolvedMachine;
use clan_core::inventory::MachineClass;
use clan_runtime::Request;
use clan_vars::generate::scope;
use clan_vars::keys::{self, Identity};

use crate::cli::Global;
use crate::commands::vars::{Fleet, generate};
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

/// How one machine's update ended.
enum Outcome {
    Updated { installed: bool, changes: usize },
    Failed(String),
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = Fleet::load(g, &o.machines)?;
    let named = !o.machines.is_empty();
    let selected: Vec<String> = fleet
        .selected
        .iter()
        .filter(|n| {
            let m = &fleet.all[*n];
            o.tags.iter().all(|t| m.tags.contains(t))
                && (named || !m.clan_core.deployment.require_explicit_update)
        })
        .cloned()
        .collect();
    if selected.is_empty() {
        return Err(CliError::Usage(
            "no machine to update (none matches, or they all set requireExplicitUpdate: name them)"
                .into(),
        ));
    }
    // Missing vars first, here (prompts need this terminal): the machines' own and
    // those of the machines whose public vars they use (a borg server's clients).
    let mut need_vars = selected.clone();
    for name in &selected {
        let clients = &fleet.all[name].clan_core.borgbackup["server"]["clients"];
        need_vars.extend(
            clients
                .as_object()
                .into_iter()
                .flatten()
                .map(|(c, _)| c.clone()),
        );
    }
    need_vars.sort();
    need_vars.dedup();
    generate::run(
        g,
        generate::Opts {
            machines: need_vars,
            generators: Vec::new(),
            regenerate: false,
            prompts: o.prompts,
        },
    )?;
    let fleet = Fleet::load(g, &selected)?;
    let admin = keys::read_identity(&keys::admin_key_file())?;
    let progress = Progress::new();
    let queue = Mutex::new(selected.iter().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..o.jobs.min(selected.len() as u16) {
            s.spawn(|| {
                while let Some(name) = queue.lock().expect("queue").pop() {
                    let line = progress.line(name);
                    let outcome = update_one(&fleet, &fleet.all[name], &admin, &line);
                    line.finish(&outcome);
                    results
                        .lock()
                        .expect("results")
                        .push((name.clone(), outcome));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut failed = Vec::new();
    for (name, outcome) in &results {
        match outcome {
            Outcome::Updated { installed, changes } => println!(
                "{name}: updated ({changes} change{}{})",
                if *changes == 1 { "" } else { "s" },
                if *installed {
                    ", runtime installed"
                } else {
                    ""
                }
            ),
            Outcome::Failed(message) => {
                println!("{name}: FAILED: {message}");
                failed.push(name.as_str());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Partial(format!(
            "{} of {} machines failed: {}",
            failed.len(),
            results.len(),
            failed.join(", ")
        )))
    }
}

fn update_one(fleet: &Fleet, m: &ResolvedMachine, admin: &Identity, line: &Line) -> Outcome {
    match m.machine_class {
        MachineClass::Linux => {}
        MachineClass::Nixos => {
            return Outcome::Failed(
                "NixOS machines are not supported yet by `clan machines update` (only \
                 machineClass = \"linux\"); a later version builds and activates NixOS systems"
                    .into(),
            );
        }
        MachineClass::Darwin => {
            return Outcome::Failed(
                "darwin machines are not supported by `clan machines update`".into(),
            );
        }
    }
    let result = (|| -> std::result::Result<(bool, usize), String> {
        let runtime = crate::remote::runtime(&fleet.clan, m).map_err(|e| e.to_string())?;
        let report = |e: Event| {
            if let Event::Step { step, .. } = e {
                line.step(&step);
            }
        };
        line.step("connecting");
        let installed = runtime.install(&report).map_err(|e| e.to_string())?;
        line.step("uploading secrets");
        let vars = fleet
            .selected_vars()
            .into_iter()
            .find(|v| v.name == m.name)
            .expect("selected");
        let bundle =
            clan_vars::upload::bundle(&fleet.store(), &vars, admin).map_err(|e| e.to_string())?;
        runtime
            .call::<Vec<String>>(&Request::Secrets { bundle }, &report)
            .map_err(|e| e.to_string())?;
        let machine = Box::new(with_public_values(fleet, m)?);
        let changes = runtime
            .call::<Vec<String>>(&Request::Apply { machine }, &report)
            .map_err(|e| e.to_string())?;
        Ok((installed, changes.len()))
    })();
    match result {
        Ok((installed, changes)) => Outcome::Updated { installed, changes },
        Err(message) => Outcome::Failed(message),
    }
}

/// The machine's configuration with references to other machines' public vars
/// (a borg client's key on its server) replaced by their values.
fn with_public_values(
    fleet: &Fleet,
    m: &ResolvedMachine,
) -> std::result::Result<ResolvedMachine, String> {
    let mut m = m.clone();
    let store = fleet.store();
    // `get_mut`, not `[]`: indexing a value mutably inserts what is missing, which
    // gave every client an empty borg server.
    if let Some(clients) = m
        .clan_core
        .borgbackup
        .get_mut("server")
        .and_then(|s| s.get_mut("clients"))
        .and_then(|c| c.as_object_mut())
    {
        for (client, c) in clients.iter_mut() {
            // The client's own key, and the key its admin prunes with.
            for field in ["authorizedKey", "adminKey"] {
                let r = &c[field];
                let (Some(owner), Some(generator), Some(file)) = (
                    r["machine"].as_str(),
                    r["generator"].as_str(),
                    r["file"].as_str(),
                ) else {
                    continue;
                };
                let decl = fleet
                    .all
                    .get(owner)
                    .and_then(|o| o.clan_core.vars.generators.get(generator))
                    .ok_or_else(|| format!("client {client} declares no generator {generator}"))?;
                let path = store.public_path(&scope(owner, decl), generator, file);
                let key = std::fs::read_to_string(&path).map_err(|e| {
                    format!(
                        "client {client}: {} ({e}); run `clan vars generate {client}`",
                        path.display()
                    )
                })?;
                c[field] = Value::String(key.trim().to_string());
            }
        }
    }
    pin_borg_servers(fleet, &mut m)?;
    Ok(m)
}

/// Each borg destination served by a clan machine gets that server's SSH host key:
/// the one in the clan's vars (module `sshd`, which `machines update` installs on
/// the server), else the one read over the admin's own (verified) connection to it.
/// The client's borg then accepts that key only, from its first backup on.
fn pin_borg_servers(fleet: &Fleet, m: &mut ResolvedMachine) -> std::result::Result<(), String> {
    for provider in m.clan_core.backups.providers.values_mut() {
        if provider["type"] != "borg" {
            continue;
        }
        let Some(destinations) = provider
            .get_mut("destinations")
            .and_then(|d| d.as_object_mut())
        else {
            continue;
        };
        for d in destinations.values_mut() {
            let Some(server) = d.get("server").and_then(Value::as_str) else {
                continue;
            };
            let s = fleet
                .all
                .get(server)
                .ok_or_else(|| format!("borg server {server} is not a machine of the clan"))?;
            let from_vars = crate::remote::host_keys(&fleet.clan, s)
                .into_iter()
                .find(|k| k.starts_with("ssh-ed25519 "));
            if let Some(key) = from_vars {
                d["hostKey"] = Value::String(key);
                continue;
            }
            use clan_core::host::Host;
            let ssh = crate::remote::ssh(&fleet.clan, s).map_err(|e| e.to_string())?;
            let out = ssh
                .run(&clan_core::process::Cmd::new("cat").arg("/etc/ssh/ssh_host_ed25519_key.pub"))
                .map_err(|e| format!("reading the SSH host key of borg server {server}: {e}"))?;
            let text = out.stdout_string();
            let mut words = text.split_whitespace();
            let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
                return Err(format!("borg server {server} has no ed25519 SSH host key"));
            };
            d["hostKey"] = Value::String(format!("{kind} {blob}"));
        }
    }
    Ok(())
}

/// One line per machine: a spinner with the current step on a terminal, plain
/// lines otherwise.
struct Progress {
    bars: Option<indicatif::MultiProgress>,
}

struct Line {
    name: String,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new() -> Self {
        use std::io::IsTerminal;
        Self {
            bars: std::io::stderr()
                .is_terminal()
                .then(indicatif::MultiProgress::new),
        }
    }

    fn line(&self, name: &str) -> Line {
        let bar = self.bars.as_ref().map(|bars| {
            let bar = bars.add(indicatif::ProgressBar::new_spinner());
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {prefix:20} {msg}")
                    .expect("valid template"),
            );
            bar.set_prefix(name.to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Line {
            name: name.to_string(),
            bar,
        }
    }
}

impl Line {
    fn step(&self, step: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(step.to_string()),
            None => eprintln!("==> {}: {step}", self.name),
        }
    }

    fn finish(&self, outcome: &Outcome) {
        let text = match outcome {
            Outcome::Updated { .. } => "done".to_string(),
            Outcome::Failed(_) => "failed".to_string(),
        };
        match &self.bar {
            Some(bar) => bar.finish_with_message(text),
            None => eprintln!("==> {}: {text}", self.name),
        }
    }
}
