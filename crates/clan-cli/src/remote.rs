//! How the CLI reaches a machine: its `deploy.targetHost` (default
//! `root@<name>.<meta.domain>`) through the system's OpenSSH client, with the
//! user's ssh config and agent. `CLAN_SSH_CONFIG` names another ssh config file.

use clan_core::host::{Ssh, Target};
use clan_core::{Clan, ResolvedMachine};
use clan_runtime::Runtime;

use crate::error::{CliError, Result};

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
            CliError::Usage(format!(
                "machine '{}': deploy.targetHost: {e}; fix it in {}",
                m.name,
                clan.dir.root().display()
            ))
        }),
        None => Ok(Target::default_for(&m.name, &clan.inventory.meta.domain)),
    }
}

/// An SSH connection to the machine.
pub fn ssh(clan: &Clan, m: &ResolvedMachine) -> Result<Ssh> {
    let target = target(clan, m)?;
    let mut ssh = Ssh::new(target)
        .map_err(|e| CliError::Usage(format!("cannot prepare an SSH connection: {e}")))?;
    if let Some(config) = std::env::var_os("CLAN_SSH_CONFIG").filter(|v| !v.is_empty()) {
        ssh = ssh.config_file(config);
    }
    Ok(ssh)
}

/// The machine's runtime over SSH.
pub fn runtime(clan: &Clan, m: &ResolvedMachine) -> Result<Runtime> {
    Ok(Runtime::new(Box::new(ssh(clan, m)?)))
}
