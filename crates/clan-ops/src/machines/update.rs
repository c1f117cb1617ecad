//! `machines update`: bring machines to their configuration over SSH — the
//! runtime binary, the resolved configuration, the secrets; on Linux machines the
//! runtime sets up users, borg repositories and backup timers, NixOS machines get
//! them in a system built, copied and activated by `nixos.rs`. Missing vars are
//! generated first; machines are updated in parallel, each reporting its events
//! wrapped as [`Event::Machine`].

use std::sync::Mutex;

use serde::Serialize;

use clan_core::ResolvedMachine;
use clan_core::event::{Event, Reporter};
use clan_core::host::Host;
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
    /// How NixOS machines are updated.
    pub nixos: super::nixos::NixosOptions,
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

/// How an update reaches a machine: over SSH ([`ssh`]), or a test double.
pub type Connect =
    dyn Fn(&Fleet, &ResolvedMachine) -> std::result::Result<Box<dyn Host>, String> + Sync;

/// The machine's SSH connection (what `clan machines update` uses); this machine
/// itself, without SSH, when its target host is `localhost` (a clan the machine
/// holds: `clan init --machine-held`).
pub fn ssh(fleet: &Fleet, m: &ResolvedMachine) -> std::result::Result<Box<dyn Host>, String> {
    if crate::remote::is_local(m.deploy.target_host.as_deref()) {
        return Ok(Box::new(clan_core::host::Local));
    }
    crate::remote::ssh(&fleet.clan, m)
        .map(|s| Box::new(s) as Box<dyn Host>)
        .map_err(|e| e.to_string())
}

/// `clan machines update`, as the admin whose key file is in place, over SSH.
pub fn update(
    fleet: &Fleet,
    o: &UpdateOptions,
    prompter: &dyn Prompter,
    reporter: &dyn Reporter,
) -> Result<Report> {
    let admin = keys::read_identity(&keys::admin_key_file())?;
    update_with(fleet, o, &admin, prompter, reporter, &ssh)
}

/// `clan machines update` as `admin`, reaching machines through `connect`.
pub fn update_with(
    fleet: &Fleet,
    o: &UpdateOptions,
    admin: &Identity,
    prompter: &dyn Prompter,
    reporter: &dyn Reporter,
    connect: &Connect,
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
    let generated = vars::generate_as(
        fleet,
        &GenerateOptions {
            machines: need_vars,
            answered: o.answered.clone(),
            ..Default::default()
        },
        admin,
        prompter,
        reporter,
    )?;
    let queue = Mutex::new(selected.iter().rev().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..o.jobs.max(1).min(selected.len() as u16) {
            s.spawn(|| {
                while let Some(name) = queue.lock().expect("queue").pop() {
                    let on = |e: Event| reporter.report(e.on(name));
                    let outcome = update_one(fleet, &fleet.all[name], admin, connect, o, &on);
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
    connect: &Connect,
    o: &UpdateOptions,
    report: &dyn Reporter,
) -> Outcome {
    let result = (|| -> std::result::Result<(bool, Vec<String>), String> {
        let toplevel = match m.machine_class {
            MachineClass::Linux => None,
            MachineClass::Nixos => {
                let builder = super::nixos::Builder::of(m, o.nixos.build_host.as_deref())?;
                let built = super::nixos::build(fleet, m, &builder, report)?;
                if o.nixos.dry_run {
                    return Ok((
                        false,
                        vec![format!(
                            "built {built} (--dry-run: not copied, not activated)"
                        )],
                    ));
                }
                Some((builder, built))
            }
            MachineClass::Darwin => {
                return Err("darwin machines are not supported by `clan machines update`".into());
            }
        };
        let runtime = clan_runtime::Runtime::new(connect(fleet, m)?);
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
        let machine = Box::new(with_public_values(fleet, m, connect)?);
        let Some((builder, toplevel)) = toplevel else {
            let changes = runtime
                .call::<Vec<String>>(&Request::Apply { machine }, report)
                .map_err(|e| e.to_string())?;
            return Ok((installed, changes));
        };
        // NixOS: everything but the runtime's own configuration is in the system.
        let mut changes = runtime
            .call::<Vec<String>>(&Request::Configure { machine }, report)
            .map_err(|e| e.to_string())?;
        let address = crate::remote::target(&fleet.clan, m)
            .map_err(|e| e.to_string())?
            .to_string();
        let copied =
            super::nixos::copy_system(&builder, runtime.host(), &address, &toplevel, report)?;
        if copied > 0 {
            changes.push(format!("copied {copied} store paths"));
        }
        changes.extend(super::nixos::activate(
            fleet,
            m,
            connect,
            &runtime,
            clan_runtime::nixos::Target::System(toplevel),
            &o.nixos,
            report,
        )?);
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
    connect: &Connect,
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
    pin_borg_servers(fleet, &mut m, connect)?;
    Ok(m)
}

/// Each borg destination served by a clan machine gets that server's SSH host key:
/// the one in the clan's vars (module `sshd`, which `machines update` installs on
/// the server), else the one read over the admin's own (verified) connection to it.
/// The client's borg then accepts that key only, from its first backup on.
fn pin_borg_servers(
    fleet: &Fleet,
    m: &mut ResolvedMachine,
    connect: &Connect,
) -> std::result::Result<(), String> {
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
            let out = connect(fleet, s)?
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

/// The planning of an update without SSH: `FakeMachine` (a test double for a
/// machine's runtime) records the requests it gets and answers as a runtime that
/// applied them. Generators, the vars store and the resolution are real; updates of
/// real machines are tested in the lab (crates/clan-cli/tests/lab.rs).
#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use clan_core::host::HostError;
    use clan_core::process::{Cmd, Output};
    use clan_core::providers::ProviderConfig;
    use serde_json::json;

    use super::*;

    type Log = Arc<Mutex<Vec<(String, Request)>>>;

    #[derive(Debug)]
    struct FakeMachine {
        name: String,
        log: Log,
    }

    impl Host for FakeMachine {
        fn describe(&self) -> String {
            format!("fake {}", self.name)
        }

        fn run_with(
            &self,
            cmd: &Cmd,
            on_line: &mut dyn FnMut(&str),
        ) -> std::result::Result<Output, HostError> {
            let line = cmd.display();
            let stdout = if line.starts_with("test -x ") {
                String::new()
            } else if line == "cat /etc/ssh/ssh_host_ed25519_key.pub" {
                format!("ssh-ed25519 AAAA{} root@{}\n", self.name, self.name)
            } else if line.ends_with(" __runtime") {
                let request: Request =
                    serde_json::from_slice(cmd.stdin_data().expect("a request")).unwrap();
                let reply = match &request {
                    Request::Apply { .. } => json!({"done": ["applied"]}),
                    _ => json!({"done": []}),
                };
                self.log.lock().unwrap().push((self.name.clone(), request));
                on_line(&reply.to_string());
                reply.to_string()
            } else {
                panic!("unexpected command on {}: {line}", self.name)
            };
            Ok(Output {
                stdout: stdout.into_bytes(),
                stderr: String::new(),
            })
        }
    }

    struct NoPrompts;

    impl Prompter for NoPrompts {
        fn ask(&self, r: &clan_vars::generate::PromptRequest<'_>) -> clan_vars::Result<Vec<u8>> {
            panic!("no prompt expected: {}", r.prompt)
        }
    }

    #[test]
    fn an_update_sends_each_machine_its_secrets_and_configuration_with_the_keys_it_needs() {
        let tmp = tempfile::tempdir().unwrap();
        let inventory = json!({
            "meta": {"name": "t"},
            "machines": {
                "server": {"machineClass": "linux", "deploy": {"targetHost": "root@server"}},
                "client": {"machineClass": "linux", "deploy": {"targetHost": "root@client"}},
            },
            "instances": {"borg": {"module": {"name": "borgbackup"}, "roles": {
                "server": {"machines": {"server": {}}},
                "client": {"machines": {"client": {}}},
            }}},
        });
        std::fs::write(tmp.path().join("inventory.json"), inventory.to_string()).unwrap();
        let admin = keys::Identity::generate();
        clan_vars::store::Store::new(tmp.path())
            .add_admin("t", &admin.to_public())
            .unwrap();
        let dir = clan_core::ClanDir::open(tmp.path(), "the test").unwrap();
        let fleet = Fleet::load(dir, &[], &crate::Silent).unwrap();

        let log: Log = Arc::default();
        let machines_log = log.clone();
        let connect = move |_: &Fleet, m: &ResolvedMachine| {
            Ok(Box::new(FakeMachine {
                name: m.name.to_string(),
                log: machines_log.clone(),
            }) as Box<dyn Host>)
        };
        let events = Mutex::new(Vec::new());
        let report = update_with(
            &fleet,
            &UpdateOptions {
                machines: vec![],
                tags: vec![],
                jobs: 2,
                answered: vec![],
                nixos: Default::default(),
            },
            &admin,
            &NoPrompts,
            &|e: Event| events.lock().unwrap().push(e),
            &connect,
        )
        .unwrap();

        assert!(report.failed().is_empty(), "{:?}", report.machines);
        assert_eq!(
            report.generated.ran.len(),
            2,
            "borgbackup and borgbackup-admin of client"
        );
        let requests = log.lock().unwrap();
        let of = |machine: &str| -> Vec<&Request> {
            requests
                .iter()
                .filter(|(m, _)| m == machine)
                .map(|(_, r)| r)
                .collect()
        };
        let public = |generator: &str, file: &str| {
            let decl = &fleet.all["client"].clan_core.vars.generators[generator];
            let path = fleet
                .store()
                .public_path(&scope("client", decl), generator, file);
            std::fs::read_to_string(path).unwrap().trim().to_string()
        };

        // The server gets its clients' public keys as values, not references.
        let [Request::Secrets { .. }, Request::Apply { machine }] = of("server")[..] else {
            panic!("secrets, then the configuration: {:?}", of("server"));
        };
        let clients = machine.clan_core.borgbackup.server.as_ref().unwrap();
        let client = &clients.clients.as_ref().unwrap()["client"];
        assert_eq!(
            client.authorized_key,
            Some(KeyRef::Key(public("borgbackup", "borgbackup.ssh.pub")))
        );
        assert_eq!(
            client.admin_key,
            Some(KeyRef::Key(public(
                "borgbackup-admin",
                "borgbackup-admin.ssh.pub"
            )))
        );

        // The client's borg accepts only the server's host key (read from the
        // server: the clan has no host keys for it), and gets its own secrets but
        // not the admin's key (deploy = false).
        let [Request::Secrets { bundle }, Request::Apply { machine }] = of("client")[..] else {
            panic!("secrets, then the configuration: {:?}", of("client"));
        };
        let Some(ProviderConfig::Borg(borg)) = machine.clan_core.backups.providers.get("borg")
        else {
            panic!("a borg provider");
        };
        assert_eq!(
            borg.destinations["server"].host_key.as_deref(),
            Some("ssh-ed25519 AAAAserver")
        );
        let files: Vec<&String> = bundle.contents.keys().collect();
        assert!(
            files.iter().any(|f| f.ends_with("borgbackup.repokey")),
            "{files:?}"
        );
        assert!(
            !files.iter().any(|f| f.contains("borgbackup-admin")),
            "{files:?}"
        );

        let done: Vec<String> = events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::MachineDone {
                    machine, ok: true, ..
                } => Some(machine.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(done.len(), 2, "{done:?}");
    }
}
