//! The machine's side: read one request, do it, write events and the result as
//! JSON lines.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use clan_backup::{Event, Reporter, ops};

use crate::protocol::{BackupOp, Reply, Request, WireError, to_wire};
use crate::{apply, nixos};

/// Where `clan vars upload` material lives on a machine.
pub const SECRETS_DIR: &str = "/var/lib/clan/secrets";

/// Writes each event as a line as soon as it happens.
struct JsonLines<'a>(Mutex<&'a mut (dyn Write + Send)>);

impl Reporter for JsonLines<'_> {
    fn report(&self, event: Event) {
        let mut out = self.0.lock().expect("output");
        let _ = writeln!(out, "{}", Reply::Event(event).line());
        let _ = out.flush();
    }
}

/// Serves one request from `input`; the answer (also a failure) goes to `output`.
pub fn serve(input: &mut dyn Read, output: &mut (dyn Write + Send)) {
    let mut text = Vec::new();
    let request = input
        .read_to_end(&mut text)
        .map_err(|e| format!("reading the request: {e}"))
        .and_then(|_| {
            serde_json::from_slice::<Request>(&text).map_err(|e| {
                format!("not a request this clan understands ({e}); are both clans the same build?")
            })
        });
    let reporter = JsonLines(Mutex::new(output));
    let reply = match request
        .map_err(WireError::runtime)
        .and_then(|r| handle(r, &reporter))
    {
        Ok(value) => Reply::Done(value),
        Err(error) => Reply::Failed(error),
    };
    let mut out = reporter.0.lock().expect("output");
    let _ = writeln!(out, "{}", reply.line());
    let _ = out.flush();
}

fn json<T: Serialize>(value: T) -> Value {
    serde_json::to_value(value).expect("serialisable")
}

fn handle(request: Request, reporter: &dyn Reporter) -> Result<Value, WireError> {
    match request {
        Request::Backups { mut machine, op } => {
            pin_from_config(&mut machine);
            backups(&machine, op, reporter)
        }
        Request::Secrets { bundle } => {
            reporter.report(Event::Step {
                provider: None,
                step: format!("installing {} secret files", bundle.manifest.files.len()),
            });
            let done = clan_vars::upload::write(&bundle, Path::new(SECRETS_DIR)).map_err(|e| {
                WireError::runtime(format!("installing the secrets into {SECRETS_DIR}: {e}"))
            })?;
            Ok(json(done.ownership_deferred))
        }
        Request::Apply { machine } => apply::apply(&machine, reporter)
            .map(json)
            .map_err(WireError::runtime),
        Request::Configure { machine } => apply::configure(&machine, reporter)
            .map(json)
            .map_err(WireError::runtime),
        Request::Activate { spec } => nixos::start(spec).map(json).map_err(WireError::runtime),
        Request::AwaitActivation { id, seconds } => {
            watched(nixos::wait(&id, std::time::Duration::from_secs(seconds)))
        }
        Request::Confirm { id } => watched(nixos::confirm(&id)),
        Request::Generations => nixos::generations().map(json).map_err(WireError::runtime),
    }
}

fn watched(status: Result<nixos::Status, String>) -> Result<Value, WireError> {
    let status = status.map_err(WireError::runtime)?;
    let log = nixos::log_tail(&status.id, 20);
    Ok(json(crate::protocol::Watched { status, log }))
}

/// Borg servers' host keys as `machines update` pinned them in this machine's
/// configuration, for a backup the admin asked for (the admin's request carries the
/// configuration without them): so every backup accepts only the pinned key.
fn pin_from_config(m: &mut ops::Machine) {
    let Ok(text) = std::fs::read(apply::CONFIG_FILE) else {
        return;
    };
    let Ok(resolved) = serde_json::from_slice::<clan_core::ResolvedMachine>(&text) else {
        return;
    };
    use clan_backup::ProviderConfig::Borg;
    let pinned = &resolved.clan_core.backups.providers;
    for (name, provider) in m.providers.iter_mut() {
        let (Borg(config), Some(Borg(on_machine))) = (provider, pinned.get(name)) else {
            continue;
        };
        for (d, dest) in config.destinations.iter_mut() {
            if let Some(p) = on_machine.destinations.get(d)
                && p.repo == dest.repo
                && p.host_key.is_some()
            {
                dest.host_key = p.host_key.clone();
            }
        }
    }
}

fn backups(m: &ops::Machine, op: BackupOp, reporter: &dyn Reporter) -> Result<Value, WireError> {
    let e = |e: clan_backup::BackupError| WireError::from(&e);
    Ok(match op {
        BackupOp::Create { only, reason } => json(to_wire(
            ops::create(m, only.as_deref(), reason, reporter).map_err(e)?,
        )),
        BackupOp::List { only } => json(to_wire(ops::list(m, only.as_deref()).map_err(e)?)),
        BackupOp::Restore {
            provider,
            name,
            options,
        } => json(ops::restore(m, &provider, &name, &options, reporter).map_err(e)?),
        BackupOp::Check { only, read_data } => json(to_wire(
            ops::check(m, only.as_deref(), read_data).map_err(e)?,
        )),
        BackupOp::Prune { only, keep } => {
            json(to_wire(ops::prune(m, only.as_deref(), keep).map_err(e)?))
        }
        BackupOp::Forget { provider, name } => json(ops::forget(m, &provider, &name).map_err(e)?),
        BackupOp::Health => json(
            clan_backup::drill::read_health(&clan_backup::drill::health_path(&m.staging_directory))
                .map_err(e)?,
        ),
        BackupOp::Drill { only, state } => json(to_wire(
            clan_backup::drill::drill(m, only.as_deref(), state.as_deref(), reporter).map_err(e)?,
        )),
    })
}

/// The machine as `clan machines update` wrote it.
fn configured() -> Result<clan_core::ResolvedMachine, String> {
    let text = std::fs::read(apply::CONFIG_FILE)
        .map_err(|e| format!("reading {}: {e}", apply::CONFIG_FILE))?;
    serde_json::from_slice(&text).map_err(|e| format!("reading {}: {e}", apply::CONFIG_FILE))
}

/// Runs the machine's `clan.core.backups.onFailure` about a failure of `provider`
/// (of `state`, for a drill); its own failure is reported, not raised (the timer
/// fails anyway).
fn on_failure(
    resolved: &clan_core::ResolvedMachine,
    provider: &str,
    state: Option<&str>,
    message: &str,
    reporter: &dyn clan_backup::Reporter,
) {
    let Some(command) = resolved.clan_core.backups.on_failure.as_deref() else {
        return;
    };
    let env = [
        ("CLAN_MACHINE", resolved.name.as_str()),
        ("CLAN_PROVIDER", provider),
        ("CLAN_STATE", state.unwrap_or("")),
        ("CLAN_MESSAGE", message),
    ];
    if let Err(e) = clan_backup::hooks::run_script("onFailure", command, &env, reporter) {
        reporter.report(Event::Warning {
            message: format!("onFailure failed too: {e}"),
        });
    }
}

/// What a backup timer runs: a backup to `provider`, then its prune, with the
/// configuration `clan machines update` wrote. Progress goes to `reporter` (the
/// CLI writes it to the journal). A failure runs `onFailure`.
pub fn timer(provider: &str, reporter: &dyn clan_backup::Reporter) -> Result<(), String> {
    run_timer(&configured()?, provider, reporter)
}

/// [`timer`] for the machine `resolved`.
pub fn run_timer(
    resolved: &clan_core::ResolvedMachine,
    provider: &str,
    reporter: &dyn clan_backup::Reporter,
) -> Result<(), String> {
    let m = ops::Machine::from_resolved(resolved);
    let result = backup_and_prune(&m, provider, reporter);
    if let Err(message) = &result {
        on_failure(resolved, provider, None, message, reporter);
    }
    alert_overdue(resolved, &m, reporter);
    result
}

fn backup_and_prune(
    m: &ops::Machine,
    provider: &str,
    reporter: &dyn clan_backup::Reporter,
) -> Result<(), String> {
    let e = |e: clan_backup::BackupError| e.to_string();
    for (_, r) in ops::create(m, Some(provider), clan_backup::Reason::Auto, reporter).map_err(e)? {
        let made = r.map_err(e)?;
        reporter.report(Event::step(format!("backup {} done", made.backup.name)));
    }
    for (_, r) in ops::prune(m, Some(provider), None).map_err(e)? {
        let removed = r.map_err(e)?;
        reporter.report(Event::step(format!("pruned {} old backups", removed.len())));
    }
    Ok(())
}

/// What a drill timer runs: `clan backups drill` of `provider`; each failed state
/// runs `onFailure`.
pub fn drill_timer(provider: &str, reporter: &dyn clan_backup::Reporter) -> Result<(), String> {
    run_drill_timer(&configured()?, provider, reporter)
}

/// [`drill_timer`] for the machine `resolved`.
pub fn run_drill_timer(
    resolved: &clan_core::ResolvedMachine,
    provider: &str,
    reporter: &dyn clan_backup::Reporter,
) -> Result<(), String> {
    let m = ops::Machine::from_resolved(resolved);
    let results = match clan_backup::drill::drill(&m, Some(provider), None, reporter) {
        Ok(r) => r,
        Err(e) => {
            let message = e.to_string();
            on_failure(resolved, provider, None, &message, reporter);
            return Err(message);
        }
    };
    let mut failed = Vec::new();
    for (_, r) in results {
        let drills = match r {
            Ok(d) => d,
            Err(e) => {
                let message = e.to_string();
                on_failure(resolved, provider, None, &message, reporter);
                failed.push(message);
                continue;
            }
        };
        for d in drills {
            if d.ok {
                reporter.report(Event::step(format!(
                    "drill of state '{}' from {}: ok, {} files",
                    d.state,
                    d.backup.as_deref().unwrap_or("-"),
                    d.files
                )));
                continue;
            }
            let mut message = d.error.clone().unwrap_or_default();
            for mismatch in &d.mismatches {
                if !message.is_empty() {
                    message.push('\n');
                }
                message.push_str(mismatch);
            }
            on_failure(resolved, provider, Some(&d.state), &message, reporter);
            failed.push(format!("state '{}': {message}", d.state));
        }
    }
    alert_overdue(resolved, &m, reporter);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("drills failed: {}", failed.join("; ")))
    }
}

/// Runs `onFailure` once for each provider whose backups became overdue (the newest
/// is older than twice its schedule): both kinds of timer look, so a provider whose
/// own timer stopped firing is still noticed by the drill timer.
fn alert_overdue(
    resolved: &clan_core::ResolvedMachine,
    m: &ops::Machine,
    reporter: &dyn clan_backup::Reporter,
) {
    let path = clan_backup::drill::health_path(&m.staging_directory);
    let Ok(health) = clan_backup::drill::read_health(&path) else {
        return;
    };
    let schedules = m
        .providers
        .iter()
        .filter_map(|(name, p)| Some((name.as_str(), p.start_at()?)));
    for (provider, last) in health.newly_overdue(schedules, jiff::Timestamp::now()) {
        let message = format!(
            "backups of provider '{provider}' are overdue: the newest is from {last}, more than \
             twice its schedule ago"
        );
        on_failure(resolved, &provider, None, &message, reporter);
        if let Err(e) = clan_backup::drill::record_overdue_alert(&path, &provider, &last) {
            reporter.report(Event::Warning {
                message: e.to_string(),
            });
        }
    }
}
