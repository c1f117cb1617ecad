//! Backup operations: where a machine's backups run (here, or through its runtime
//! over SSH), and the prune of append-only borg repositories from the admin's side.

use clan_backup::config::{BorgConfig, BorgDestination, ProviderConfig};
use clan_backup::engine::Keep;
use clan_backup::{Machine, Reporter};
use clan_core::modules::borgbackup::{ADMIN_GENERATOR, GENERATOR};
use clan_core::{Clan, ResolvedMachine};
use clan_runtime::backups::{Backups, Place};

use crate::error::{Error, Result};
use crate::fleet::Fleet;

/// One result per provider, by name.
pub type PerProvider<T> = Vec<(String, clan_backup::Result<T>)>;

/// The machine's backups: run here when `local` or its target host is this machine,
/// else through its runtime over SSH (same results, same events).
pub fn on(fleet: &Fleet, machine: &str, local: bool) -> Result<Backups> {
    let resolved = fleet.machine(machine)?;
    let place = if local || crate::remote::is_local(resolved.deploy.target_host.as_deref()) {
        Place::Here
    } else {
        Place::Remote(crate::remote::runtime(&fleet.clan, resolved)?)
    };
    Ok(Backups {
        machine: Machine::from_resolved(resolved),
        place,
    })
}

/// `clan backups prune`: on the machine, and, for borg repositories that take only
/// new archives from the machine's key (append-only), here with the admin's own key
/// for them. `keep` overrides each provider's own retention.
pub fn prune(
    fleet: &Fleet,
    machine: &str,
    local: bool,
    only: Option<&str>,
    keep: Option<Keep>,
    reporter: &dyn Reporter,
) -> Result<PerProvider<Vec<String>>> {
    let mut results = on(fleet, machine, local)?.prune(only, keep, reporter)?;
    results.extend(prune_append_only(fleet, machine, only, keep)?);
    Ok(results)
}

/// Prunes the machine's append-only borg repositories on clan servers from here:
/// with the admin's key for them (`borgbackup-admin`, never deployed), which the
/// server lets prune, and the repository's passphrase, both from the clan's vars.
/// One result per provider and server, named `PROVIDER (admin, SERVER)`.
fn prune_append_only(
    fleet: &Fleet,
    machine: &str,
    only: Option<&str>,
    keep: Option<Keep>,
) -> Result<PerProvider<Vec<String>>> {
    let clan = &fleet.clan;
    let m = fleet.machine(machine)?;
    let mut todo = Vec::new();
    for (name, p) in &m.clan_core.backups.providers {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let ProviderConfig::Borg(config) = p else {
            continue;
        };
        for (d, dest) in &config.destinations {
            if let (true, Some(server)) = (dest.append_only, &dest.server) {
                todo.push((
                    name.clone(),
                    config.clone(),
                    d.clone(),
                    dest.clone(),
                    server.clone(),
                ));
            }
        }
    }
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let servers: Vec<String> = todo.iter().map(|t| t.4.clone()).collect();
    let servers = clan.resolve(&servers)?.machines;
    // The passphrase and the admin's key, readable by this user only, for borg.
    let secrets = tempfile::Builder::new()
        .prefix("clan-borg-admin-")
        .tempdir()
        .map_err(|e| Error::Usage(format!("cannot make a private directory: {e}")))?;
    let passphrase = secrets.path().join("passphrase");
    let admin_key = secrets.path().join("admin-key");
    // Without the admin's key (e.g. on the machine itself) each such repository
    // reports the error; the machine's own prune above stands.
    let unlocked = write_secret(clan, m, GENERATOR, "borgbackup.repokey", &passphrase)
        .and_then(|()| write_secret(clan, m, ADMIN_GENERATOR, "borgbackup-admin.ssh", &admin_key))
        .map_err(|e| e.to_string());
    let mut results = Vec::new();
    for (name, config, d, dest, server) in todo {
        let label = format!("{name} (admin, {server})");
        let result = (|| {
            unlocked.clone().map_err(|e| {
                clan_backup::BackupError::Config(format!(
                    "the admin's prune of an append-only repository needs the clan's secrets: {e}"
                ))
            })?;
            let s = servers.get(&server).ok_or_else(|| {
                clan_backup::BackupError::Config(format!(
                    "borg server {server} is not a machine of the clan"
                ))
            })?;
            let ssh = crate::remote::ssh(clan, s)
                .map_err(|e| clan_backup::BackupError::Config(e.to_string()))?
                .identity_file(&admin_key);
            let repo = admin_repo(
                &dest.repo,
                &crate::remote::target(clan, s)
                    .map_err(|e| clan_backup::BackupError::Config(e.to_string()))?,
            )
            .ok_or_else(|| {
                clan_backup::BackupError::Config(format!("{}: not an ssh:// repository", dest.repo))
            })?;
            let admin = BorgConfig {
                destinations: [(
                    d.clone(),
                    BorgDestination {
                        repo,
                        rsh: Some(ssh.command_line()),
                        server: Some(server.clone()),
                        host_key: None,
                        append_only: false,
                    },
                )]
                .into(),
                passphrase_file: passphrase.clone(),
                ..config.clone()
            };
            let keep = keep.unwrap_or(config.keep);
            let provider = clan_backup::provider::open(
                &name,
                &ProviderConfig::Borg(admin),
                machine,
                secrets.path(),
            );
            provider.prune(&keep)
        })();
        results.push((label, result));
    }
    Ok(results)
}

/// The client's repository as the admin reaches it: user borg at the server's
/// target host (the address the client uses may differ).
fn admin_repo(repo: &str, server: &clan_core::host::Target) -> Option<String> {
    let rest = repo.strip_prefix("ssh://")?;
    let path = &rest[rest.find('/')?..];
    let port = server.port.map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!("ssh://borg@{}{port}{path}", server.host))
}

fn write_secret(
    clan: &Clan,
    m: &ResolvedMachine,
    generator: &str,
    file: &str,
    to: &std::path::Path,
) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let decl = m.clan_core.vars.generators.get(generator).ok_or_else(|| {
        Error::Usage(format!(
            "machine '{}' has no generator {generator}; update the clan's borgbackup instance",
            m.name
        ))
    })?;
    let store = clan_vars::store::Store::new(clan.dir.root());
    let admin = clan_vars::keys::read_identity(&clan_vars::keys::admin_key_file())?;
    let value = store.read_secret(
        &clan_vars::generate::scope(&m.name, decl),
        generator,
        file,
        &admin,
    )?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| Error::Usage(format!("{}: {e}", to.display())))?;
    f.write_all(&value)
        .map_err(|e| Error::Usage(format!("{}: {e}", to.display())))?;
    Ok(())
}
