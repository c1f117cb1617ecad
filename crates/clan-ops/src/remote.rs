//! How clan reaches a machine: its `deploy.targetHost` (default
//! `root@<name>.<meta.domain>`) through the system's OpenSSH client, with the
//! user's ssh config and agent. `CLAN_SSH_CONFIG` names another ssh config file.

use clan_core::host::{Ssh, Target};
use clan_core::{Clan, ResolvedMachine};
use clan_runtime::Runtime;

use crate::error::{Error, Result};

/// Whether `target` is this machine.
pub fn is_local(target: Option<&str>) -> bool {
    let Some(t) = target else { return false };
    t.parse::<Target>()
        .is_ok_and(|t| matches!(t.host.as_str(), "localhost" | "127.0.0.1" | "::1"))
}

/// The machine's SSH target.
pub fn target(clan: &Clan, m: &ResolvedMachine) -> Result<Target> {
    match &m.deploy.target_host {
        Some(t) => t.parse().map_err(|e| {
            Error::Usage(format!(
                "machine '{}': deploy.targetHost: {e}; fix it in {}",
                m.name,
                clan.dir.root().display()
            ))
        }),
        None => Ok(Target::default_for(&m.name, &clan.inventory.meta.domain)),
    }
}

/// An SSH connection to the machine, which also accepts the host keys the clan
/// generated for it (see `Ssh::pin_host_keys`).
pub fn ssh(clan: &Clan, m: &ResolvedMachine) -> Result<Ssh> {
    let target = target(clan, m)?;
    let prepare =
        |e: std::io::Error| Error::Usage(format!("cannot prepare an SSH connection: {e}"));
    let mut ssh = Ssh::new(target).map_err(prepare)?;
    if let Some(config) = std::env::var_os("CLAN_SSH_CONFIG").filter(|v| !v.is_empty()) {
        ssh = ssh.config_file(config);
    }
    ssh.pin_host_keys(&host_keys(clan, m)).map_err(prepare)
}

/// The public host keys of the machine in the clan's vars (module `sshd`), as
/// `kind base64` each; none when the machine has no such generator or its keys
/// are not generated yet.
pub fn host_keys(clan: &Clan, m: &ResolvedMachine) -> Vec<String> {
    let Some(generator) = m.clan_core.sshd.host_keys.as_ref().map(|h| &h.generator) else {
        return Vec::new();
    };
    let Some(decl) = m.clan_core.vars.generators.get(generator) else {
        return Vec::new();
    };
    let store = clan_vars::store::Store::new(clan.dir.root());
    let scope = clan_vars::generate::scope(&m.name, decl);
    decl.files
        .keys()
        .filter(|f| f.starts_with("ssh.id_") && f.ends_with(".pub"))
        .filter_map(|f| std::fs::read_to_string(store.public_path(&scope, generator, f)).ok())
        .filter_map(|text| {
            let mut words = text.split_whitespace();
            Some(format!("{} {}", words.next()?, words.next()?))
        })
        .collect()
}

/// An SSH connection to a host that is not a machine of the clan (a build host
/// given as `[user@]host[:port]`).
pub fn ssh_to(address: &str) -> Result<Ssh> {
    let target: Target = address
        .parse()
        .map_err(|e| Error::Usage(format!("build host {address}: {e}")))?;
    let mut ssh = Ssh::new(target)
        .map_err(|e| Error::Usage(format!("cannot prepare an SSH connection: {e}")))?;
    if let Some(config) = std::env::var_os("CLAN_SSH_CONFIG").filter(|v| !v.is_empty()) {
        ssh = ssh.config_file(config);
    }
    Ok(ssh)
}

/// The machine's runtime over SSH.
pub fn runtime(clan: &Clan, m: &ResolvedMachine) -> Result<Runtime> {
    Ok(Runtime::new(Box::new(ssh(clan, m)?)))
}
