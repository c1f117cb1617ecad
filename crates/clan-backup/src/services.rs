//! Stopping and starting a state's systemd units around a restore.

use clan_core::process::Cmd;

use crate::error::{BackupError, Result};

/// True when systemd is the running init system here.
pub fn systemd_running() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
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
