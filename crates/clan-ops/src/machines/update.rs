//! `machines update`: bring Linux machines to their configuration over SSH — the
//! runtime binary, the resolved configuration, the secrets, users, borg repositories
//! and backup timers. Missing vars are generated first; machines are updated in
//! parallel, each reporting its events wrapped as [`Event::Machine`].

use std::sync::Mutex;

use serde::Serialize;

use clan_core::ResolvedMachine;
use clan_core::event::{Event, Reporter};
use clan_core::inventory::MachineClass;
use clan_core::machine::KeyRef;
use clan_runtime::Request;
use clan_vars::generate::{Prompter, scope};
use clan_vars::keys::{self, Identity};

use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::vars::{self, GenerateOptions, Generated};

#[derive(Debug, Clone)]
pub struct UpdateOptions {
    /// Machines to update; empty: every machine (those with requireExplicitUpdate
    /// only when named).
    pub machines: Vec<String>,
    /// Only machines with all these tags.
    pub tags: Vec<String>,
    /// At most this many machines at once (at least 1).
    pub jobs: u16,
    /// `GEN/PROMPT` ids the prompter answers without asking.
    pub answered: Vec<String>,
}

/// How one machine's update ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    Updated {
        /// The runtime was installed (it was missing or another build).
        installed: bool,
        /// What the machine changed.
        changes: Vec<String>,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated: Generated,
    /// Each machine's outcome, by name.
    pub machines: Vec<(String, Outcome)>,
}

impl Report {
    pub fn failed(&self) -> Vec<&str> {
        self.machines
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Failed { .. }))
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// The machines an update is about.
pub fn select(fleet: &Fleet, o: &UpdateOptions) -> Result<Vec<String>> {
    for n in &o.machines {
        fleet.machine(n)?;
    }
    let named = !o.machines.is_empty();
    let candidates: Vec<&String> = if named {
        o.machines.iter().collect()
    } else {
        fleet.all.keys().collect()
    };
    let selected: Vec<String> = candidates
        .into_iter()
        .filter(|n| {
            let m = &fleet.all[*n];
            o.tags.iter().all(|t| m.tags.contains(t))
                && (named || !m.clan_core.deployment.require_explicit_update)
        })
        .cloned()
        .collect();
    if selected.is_empty() {
        return Err(Error::Usage(
            "no machine to update (none matches, or they all set requireExplicitUpdate: name them)"
                .into(),
        ));
    }
    Ok(selected)
}

/// `clan machines update`.
pub fn update(
    fleet: &Fleet,
    o: &UpdateOptions,
    prompter: &dyn Prompter,
    reporter: &dyn Reporter,
) -> Result<Report> {
    let selected = select(fleet, o)?;
    // Missing vars first: the machines' own and those of the machines whose public
    // vars they use (a borg server's clients).
    let mut need_vars = selected.clone();
    for name in &selected {
        let server = &fleet.all[name].clan_core.borgbackup.server;
        let clients = server.as_ref().and_then(|s| s.clients.as_ref());
        need_vars.extend(clients.into_iter().flatten().map(|(c, _)| c.clone()));
    }
    need_vars.sort();
    need_vars.dedup();
    let generated = vars::generate(
        fleet,
        &GenerateOptions {
            machines: need_vars,
            answered: o.answered.clone(),
            ..Default::default()
        },
        prompter,
        reporter,
    )?;
    let admin = keys::read_identity(&keys::admin_key_file())?;
    let queue = Mutex::new(selected.iter().rev().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..o.jobs.max(1).min(selected.len() as u16) {
            s.spawn(|| {
                while let Some(name) = queue.lock().expect("queue").pop() {
                    let on = |e: Event| reporter.report(e.on(name));
                    let outcome = update_one(fleet, &fleet.all[name], &admin, &on);
                    reporter.report(Event::MachineDone {
                        machine: name.clone(),
                        ok: matches!(outcome, Outcome::Updated { .. }),
                        summary: match &outcome {
                            Outcome::Updated { .. } => "done".into(),
                            Outcome::Failed { .. } => "failed".into(),
                        },
                    });
                    results
                        .lock()
                        .expect("results")
                        .push((name.clone(), outcome));
                }
            });
        }
    });
    let mut machines = results.into_inner().expect("results");
    machines.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Report {
        generated,
        machines,
    })
}

fn update_one(
    fleet: &Fleet,
    m: &ResolvedMachine,
    admin: &Identity,
    report: &dyn Reporter,
) -> Outcome {
    let result = (|| -> std::result::Result<(bool, Vec<String>), String> {
        match m.machine_class {
            MachineClass::Linux => {}
            MachineClass::Nixos => {
                return Err(
                    "NixOS machines are not supported yet by `clan machines update` (only \
                     machineClass = \"linux\"); a later version builds and activates NixOS systems"
                        .into(),
                );
            }
            MachineClass::Darwin => {
                return Err("darwin machines are not supported by `clan machines update`".into());
            }
        }
        let runtime = crate::remote::runtime(&fleet.clan, m).map_err(|e| e.to_string())?;
        report.report(Event::step("connecting"));
        let installed = runtime.install(report).map_err(|e| e.to_string())?;
        report.report(Event::step("uploading secrets"));
        let vars = fleet
            .all_vars()
            .into_iter()
            .find(|v| v.name == m.name)
            .expect("a machine of the fleet");
        let bundle =
            clan_vars::upload::bundle(&fleet.store(), &vars, admin).map_err(|e| e.to_string())?;
        runtime
            .call::<Vec<String>>(&Request::Secrets { bundle }, report)
            .map_err(|e| e.to_string())?;
        let machine = Box::new(with_public_values(fleet, m)?);
        let changes = runtime
            .call::<Vec<String>>(&Request::Apply { machine }, report)
            .map_err(|e| e.to_string())?;
        Ok((installed, changes))
    })();
    match result {
        Ok((installed, changes)) => Outcome::Updated { installed, changes },
        Err(error) => Outcome::Failed { error },
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
    let clients = m
        .clan_core
        .borgbackup
        .server
        .as_mut()
        .and_then(|s| s.clients.as_mut());
    for (client, c) in clients.into_iter().flatten() {
        // The client's own key, and the key its admin prunes with.
        for key in [&mut c.authorized_key, &mut c.admin_key] {
            let Some(KeyRef::Var {
                machine: owner,
                generator,
                file,
            }) = key.as_ref()
            else {
                continue;
            };
            let decl = fleet
                .all
                .get(owner)
                .and_then(|o| o.clan_core.vars.generators.get(generator))
                .ok_or_else(|| format!("client {client} declares no generator {generator}"))?;
            let path = store.public_path(&scope(owner, decl), generator, file);
            let value = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "client {client}: {} ({e}); run `clan vars generate {client}`",
                    path.display()
                )
            })?;
            *key = Some(KeyRef::Key(value.trim().to_string()));
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
        let clan_core::providers::ProviderConfig::Borg(borg) = provider else {
            continue;
        };
        for d in borg.destinations.values_mut() {
            let Some(server) = d.server.clone() else {
                continue;
            };
            let s = fleet
                .all
                .get(&server)
                .ok_or_else(|| format!("borg server {server} is not a machine of the clan"))?;
            let from_vars = crate::remote::host_keys(&fleet.clan, s)
                .into_iter()
                .find(|k| k.starts_with("ssh-ed25519 "));
            if let Some(key) = from_vars {
                d.host_key = Some(key);
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
            d.host_key = Some(format!("{kind} {blob}"));
        }
    }
    Ok(())
}
