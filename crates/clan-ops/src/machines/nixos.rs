//! NixOS machines: build the system with the clan's nixpkgs, copy what the machine
//! lacks of its closure, activate it there and confirm the activation over a new
//! SSH connection; the machine rolls back by itself when no confirmation comes
//! (an activation that cut it off). The machine's side is clan-runtime's nixos.rs.

use std::time::{Duration, Instant};

use clan_core::ResolvedMachine;
use clan_core::event::{Event, Reporter};
use clan_core::host::Host;
use clan_core::process::Cmd;
use clan_runtime::nixos::{Phase, Spec, Started, Status, Target};
use clan_runtime::protocol::Watched;
use clan_runtime::{Request, Runtime};

use super::update::Connect;
use crate::fleet::Fleet;

type Result<T> = std::result::Result<T, String>;

/// How a NixOS machine is updated.
#[derive(Debug, Clone, Default)]
pub struct NixosOptions {
    /// Build only.
    pub dry_run: bool,
    /// Keep the new system even when no confirmation comes.
    pub no_rollback: bool,
    /// Build here or on this host (`[user@]host[:port]`) instead of the
    /// machine's `deploy.buildHost`.
    pub build_host: Option<String>,
}

/// The nixpkgs expression of the clan: `meta.nixpkgs` (relative to the clan) or
/// `<nixpkgs>`; an error that says how to name one when there is none.
fn nixpkgs(fleet: &Fleet) -> Result<String> {
    match &fleet.clan.inventory.meta.nixpkgs {
        Some(p) => {
            let path = fleet.clan.dir.root().join(p);
            if !path.join("nixos").is_dir() {
                return Err(format!(
                    "meta.nixpkgs = {p:?}: {} is not a nixpkgs (it has no nixos/ directory); \
                     point it at a nixpkgs checkout",
                    path.display()
                ));
            }
            Ok(format!(
                "(/. + {})",
                clan_core::nixos::string(&path.display().to_string())
            ))
        }
        None => {
            let found = Cmd::new("nix-instantiate")
                .args(["--find-file", "nixpkgs"])
                .run();
            if found.is_err() {
                return Err(
                    "NixOS machines are built with the clan's nixpkgs, and the clan names none: \
                     set meta.nixpkgs in clan.nix to a nixpkgs checkout, or put nixpkgs on \
                     NIX_PATH (nixpkgs=/path/to/nixpkgs)"
                        .into(),
                );
            }
            Ok("<nixpkgs>".into())
        }
    }
}

/// The expression that builds `m`'s system, in a private directory.
pub fn expression(fleet: &Fleet, m: &ResolvedMachine) -> Result<tempfile::TempDir> {
    let nixpkgs = nixpkgs(fleet)?;
    let dir = tempfile::Builder::new()
        .prefix("clan-nixos-")
        .tempdir()
        .map_err(|e| format!("creating a directory for the build: {e}"))?;
    let write = |name: &str, text: &[u8]| {
        std::fs::write(dir.path().join(name), text).map_err(|e| format!("writing {name}: {e}"))
    };
    clan_core::nix::write_glue(dir.path()).map_err(|e| format!("writing the glue: {e}"))?;
    write(
        "args.json",
        &serde_json::to_vec(&m.nixos_args).expect("JSON"),
    )?;
    write(
        "clan-core.nix",
        clan_core::nixos::options_module().as_bytes(),
    )?;
    let settings = clan_core::nixos::settings_module(m, clan_runtime::binary::LINK);
    write("settings.nix", settings.as_bytes())?;
    write(
        "default.nix",
        clan_core::nixos::toplevel_expression(&nixpkgs).as_bytes(),
    )?;
    Ok(dir)
}

/// Where a system is built: here, or on a build host over SSH.
pub enum Builder {
    Here,
    Host(Box<dyn Host>),
}

impl Builder {
    /// `--build-host`, else the machine's `deploy.buildHost`; `localhost` is here.
    pub fn of(m: &ResolvedMachine, given: Option<&str>) -> Result<Self> {
        let Some(address) = given.or(m.deploy.build_host.as_deref()) else {
            return Ok(Self::Here);
        };
        if crate::remote::is_local(Some(address)) {
            return Ok(Self::Here);
        }
        crate::remote::ssh_to(address)
            .map(|s| Self::Host(Box::new(s)))
            .map_err(|e| e.to_string())
    }

    pub fn host(&self) -> &dyn Host {
        match self {
            Self::Here => &clan_core::host::Local,
            Self::Host(h) => h.as_ref(),
        }
    }
}

/// Builds `m`'s system with `builder`; its store path (in the builder's store).
pub fn build(
    fleet: &Fleet,
    m: &ResolvedMachine,
    builder: &Builder,
    report: &dyn Reporter,
) -> Result<String> {
    let dir = expression(fleet, m)?;
    let failed = |e: &dyn std::fmt::Display| format!("building the system of {}: {e}", m.name);
    let nix = |program: &str| {
        Cmd::new(program)
            .arg(dir.path().join("default.nix"))
            .args(["--argstr", "clanDir"])
            .arg(fleet.clan.dir.root())
    };
    let path = match builder {
        Builder::Here => {
            report.report(Event::step("building the system"));
            let built = nix("nix-build")
                .arg("--no-out-link")
                .run()
                .map_err(|e| failed(&e))?;
            built.stdout_string().trim().to_string()
        }
        Builder::Host(host) => {
            // Evaluated here (the clan is here), built there.
            let drv = nix("nix-instantiate").run().map_err(|e| failed(&e))?;
            let drv = drv.stdout_string().trim().to_string();
            report.report(Event::step(format!(
                "building the system on {}",
                host.describe()
            )));
            copy_closure(&clan_core::host::Local, host.as_ref(), &drv, report)?;
            let built = host
                .run(&Cmd::new("nix-store").args(["--realise", &drv]))
                .map_err(|e| failed(&e))?;
            built
                .stdout_string()
                .lines()
                .last()
                .unwrap_or("")
                .to_string()
        }
    };
    if !path.starts_with("/nix/store/") {
        return Err(format!("Nix gave no system for {}: {path:?}", m.name));
    }
    Ok(path)
}

/// Copies what the machine (`to`, reached by the admin at `address`) lacks of the
/// system's closure: from a build host directly (its `nix-copy-closure`, with its
/// own SSH keys) when it can reach the machine, else through this clan.
pub fn copy_system(
    builder: &Builder,
    to: &dyn Host,
    address: &str,
    path: &str,
    report: &dyn Reporter,
) -> Result<usize> {
    if let Builder::Host(b) = builder {
        let closure = requisites(b.as_ref(), path)?;
        let missing = invalid(to, &closure)?;
        if missing.is_empty() {
            return copy_closure(b.as_ref(), to, path, report);
        }
        report.report(Event::step(format!(
            "copying the closure from {} to {address} directly: {} of {} store paths",
            b.describe(),
            missing.len(),
            closure.len()
        )));
        let direct = Cmd::new("nix-copy-closure")
            .env(
                "NIX_SSHOPTS",
                "-o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=accept-new",
            )
            .args(["--to", address, path]);
        match b.run(&direct) {
            Ok(_) => return Ok(missing.len()),
            Err(e) => report.report(Event::Warning {
                message: format!(
                    "the build host {} cannot copy to {address} itself ({}); copying through this machine",
                    b.describe(),
                    e.to_string().lines().last().unwrap_or_default()
                ),
            }),
        }
    }
    copy_closure(builder.host(), to, path, report)
}

fn requisites(host: &dyn Host, path: &str) -> Result<Vec<String>> {
    Ok(host
        .run(&Cmd::new("nix-store").args(["--query", "--requisites", path]))
        .map_err(|e| format!("listing the closure of {path}: {e}"))?
        .stdout_string()
        .lines()
        .map(str::to_string)
        .collect())
}

/// The paths of `paths` that `host`'s store lacks.
fn invalid(host: &dyn Host, paths: &[String]) -> Result<Vec<String>> {
    Ok(host
        .run(
            &Cmd::new("nix-store")
                .args(["--check-validity", "--print-invalid"])
                .args(paths),
        )
        .map_err(|e| format!("asking which store paths are there (is Nix installed?): {e}"))?
        .stdout_string()
        .lines()
        .map(str::to_string)
        .collect())
}

/// Copies what `to` lacks of `path`'s closure in `from`'s store (exported there,
/// imported here); how many store paths were copied.
pub fn copy_closure(
    from: &dyn Host,
    to: &dyn Host,
    path: &str,
    report: &dyn Reporter,
) -> Result<usize> {
    let closure = requisites(from, path)?;
    let missing = invalid(to, &closure)?;
    if missing.is_empty() {
        report.report(Event::step(format!(
            "copying the closure: all {} store paths are there",
            closure.len()
        )));
        return Ok(0);
    }
    // In the closure's order: what a path refers to is imported before it.
    let missing: Vec<&String> = closure.iter().filter(|p| missing.contains(p)).collect();
    report.report(Event::step(format!(
        "copying the closure: {} of {} store paths",
        missing.len(),
        closure.len()
    )));
    let export = from
        .run(&Cmd::new("nix-store").arg("--export").args(&missing))
        .map_err(|e| format!("exporting store paths: {e}"))?;
    to.run(&Cmd::new("nix-store").arg("--import").stdin(export.stdout))
        .map_err(|e| format!("importing store paths: {e}"))?;
    Ok(missing.len())
}

/// Activates `target` on the machine and confirms it over a new connection.
pub fn activate(
    fleet: &Fleet,
    m: &ResolvedMachine,
    connect: &Connect,
    runtime: &Runtime,
    target: Target,
    o: &NixosOptions,
    report: &dyn Reporter,
) -> Result<Vec<String>> {
    let timeout = m.clan_core.deployment.confirm_timeout;
    let spec = Spec {
        target,
        confirm_timeout: (!o.no_rollback).then_some(timeout),
    };
    report.report(Event::step("activating"));
    let started: Started = runtime
        .call(&Request::Activate { spec }, report)
        .map_err(|e| e.to_string())?;
    let id = match started {
        Started::Unchanged { generation } => {
            return Ok(vec![format!(
                "the system is active already (generation {}); nothing activated",
                show(generation)
            )]);
        }
        Started::Started { id } => id,
    };
    // Until the activation ended or awaits confirmation: polled over the first
    // connection, then, once one broke (the activation may restart sshd or the
    // network), over a new one.
    let deadline = Instant::now() + Duration::from_secs(timeout + 180);
    let mut replacement: Option<Runtime> = None;
    let mut broken = false;
    let mut last_error = String::new();
    loop {
        if Instant::now() > deadline {
            let why = if last_error.is_empty() {
                String::new()
            } else {
                format!("; the last answer: {last_error}")
            };
            return Err(format!(
                "the activation did not end within {} s{why}",
                timeout + 180
            ));
        }
        let poll = Request::AwaitActivation {
            id: id.clone(),
            seconds: 5,
        };
        if broken && replacement.is_none() {
            replacement = fresh_runtime(fleet, m, connect)
                .map_err(|e| last_error = e)
                .ok();
        }
        let over = if broken {
            replacement.as_ref()
        } else {
            Some(runtime)
        };
        let answer = over.map(|r| r.call::<Watched>(&poll, report));
        match answer {
            Some(Ok(w)) if w.status.phase.is_final() => return outcome(&w, o),
            Some(Ok(w)) if matches!(w.status.phase, Phase::AwaitingConfirmation { .. }) => {
                return confirm(fleet, m, connect, &id, timeout, o, report);
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => last_error = e.to_string(),
            None => {}
        }
        broken = true;
        replacement = None;
        report.report(Event::step(format!(
            "no answer from {} during the activation; trying again",
            m.name
        )));
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn fresh_runtime(fleet: &Fleet, m: &ResolvedMachine, connect: &Connect) -> Result<Runtime> {
    connect(fleet, m).map(Runtime::new)
}

fn show(generation: Option<u32>) -> String {
    generation.map_or("none".into(), |g| g.to_string())
}

/// The confirmation, over a connection made for it: proves the new system can
/// still be reached. When it cannot, the machine rolls back by itself; the result
/// is read once it is reachable again.
fn confirm(
    fleet: &Fleet,
    m: &ResolvedMachine,
    connect: &Connect,
    id: &str,
    timeout: u64,
    o: &NixosOptions,
    report: &dyn Reporter,
) -> Result<Vec<String>> {
    report.report(Event::step("confirming over a new connection"));
    let confirmed = fresh_runtime(fleet, m, connect).and_then(|r| {
        r.call::<Watched>(&Request::Confirm { id: id.into() }, report)
            .map_err(|e| e.to_string())
    });
    let why = match confirmed {
        Ok(w) => return outcome(&w, o),
        Err(e) => e,
    };
    report.report(Event::step(format!(
        "{} cannot be reached over a new connection ({why}); it rolls back by itself within {timeout} s",
        m.name
    )));
    let until = Instant::now() + Duration::from_secs(timeout + 120);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_secs(3));
        let status = fresh_runtime(fleet, m, connect).and_then(|r| {
            r.call::<Watched>(
                &Request::AwaitActivation {
                    id: id.into(),
                    seconds: 5,
                },
                &clan_core::event::Silent,
            )
            .map_err(|e| e.to_string())
        });
        if let Ok(w) = status
            && w.status.phase.is_final()
        {
            return match outcome(&w, o) {
                Err(e) => Err(format!(
                    "the new system cut {} off (no new connection could confirm it): {e}",
                    m.name
                )),
                Ok(ok) => Ok(ok),
            };
        }
    }
    Err(format!(
        "{} could not confirm the activation over a new connection ({why}) and is still \
         unreachable; it should have rolled back to its previous generation by itself",
        m.name
    ))
}

/// A finished activation as the update's result.
fn outcome(w: &Watched, o: &NixosOptions) -> Result<Vec<String>> {
    let s: &Status = &w.status;
    let log = || {
        if w.log.is_empty() {
            String::new()
        } else {
            format!("\n{}", w.log.join("\n"))
        }
    };
    match &s.phase {
        Phase::Active => Ok(vec![format!(
            "activated generation {}{}",
            show(s.generation),
            if o.no_rollback {
                " (no confirmation asked: --no-rollback)"
            } else {
                " (confirmed over a new connection)"
            }
        )]),
        Phase::Failed {
            error,
            rolled_back_to,
        } => Err(format!(
            "activation failed: {error}; {}{}",
            match rolled_back_to {
                Some(g) => format!("rolled back to generation {g}"),
                None => "there was no previous generation to roll back to".into(),
            },
            log()
        )),
        Phase::RolledBack { to } => Err(format!(
            "no confirmation came in time: rolled back to generation {} by itself",
            show(*to)
        )),
        other => Err(format!("the activation is still {other:?}")),
    }
}

/// The machine's generations.
pub fn generations(
    fleet: &Fleet,
    m: &ResolvedMachine,
    connect: &Connect,
) -> Result<Vec<clan_runtime::nixos::Generation>> {
    fresh_runtime(fleet, m, connect)?
        .call(&Request::Generations, &clan_core::event::Silent)
        .map_err(|e| e.to_string())
}

/// `machines rollback`: the generation before the current one, activated and
/// confirmed like an update.
pub fn rollback(
    fleet: &Fleet,
    m: &ResolvedMachine,
    connect: &Connect,
    o: &NixosOptions,
    report: &dyn Reporter,
) -> Result<Vec<String>> {
    let runtime = fresh_runtime(fleet, m, connect)?;
    let gens: Vec<clan_runtime::nixos::Generation> = runtime
        .call(&Request::Generations, report)
        .map_err(|e| e.to_string())?;
    let current = gens
        .iter()
        .find(|g| g.current)
        .ok_or_else(|| format!("{} has no current system generation", m.name))?;
    let previous = gens
        .iter()
        .filter(|g| g.number < current.number)
        .max_by_key(|g| g.number)
        .ok_or_else(|| {
            format!(
                "{} has no generation before {} to roll back to",
                m.name, current.number
            )
        })?;
    report.report(Event::step(format!(
        "rolling back from generation {} to {}",
        current.number, previous.number
    )));
    activate(
        fleet,
        m,
        connect,
        &runtime,
        Target::Generation(previous.number),
        o,
        report,
    )
}

/// The NixOS machine `name` of the fleet, or why it is not one.
pub fn machine<'a>(fleet: &'a Fleet, name: &str) -> crate::error::Result<&'a ResolvedMachine> {
    let m = fleet.machine(name)?;
    if m.machine_class != clan_core::inventory::MachineClass::Nixos {
        return Err(crate::error::Error::Usage(format!(
            "machine '{name}' is not a NixOS machine (machineClass = \"{}\"): it has no system generations",
            m.machine_class
        )));
    }
    Ok(m)
}
