//! Stopping and starting a state's systemd units around a restore.

use clan_core::process::Cmd;

use crate::error::{BackupError, Result};

/// True when systemd is the running init system here. Tests of machines without
/// systemd set `CLAN_TEST_NO_SYSTEMD` (test-only, like `CLAN_TEST_FAULT_AT`), so
/// that they run on machines with it too.
pub fn systemd_running() -> bool {
    std::env::var_os("CLAN_TEST_NO_SYSTEMD").is_none()
        && std::path::Path::new("/run/systemd/system").is_dir()
}

pub fn stop(units: &[String]) -> Result<()> {
    systemctl("stop", units)
}

pub fn start(units: &[String]) -> Result<()> {
    systemctl("start", units)
}

fn systemctl(verb: &str, units: &[String]) -> Result<()> {
    if units.is_empty() {
        return Ok(());
    }
    Cmd::new("systemctl")
        .arg(verb)
        .arg("--")
        .args(units)
        .run()
        .map_err(|e| BackupError::Step {
            step: format!("systemctl {verb} {}", units.join(" ")),
            message: e.to_string(),
        })?;
    Ok(())
}
