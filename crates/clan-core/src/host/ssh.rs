//! The system's OpenSSH client: the user's ssh config and agent apply; one
//! multiplexed connection per host (ControlMaster), closed when the `Ssh` is dropped.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{Host, HostError, Target};
use crate::process::{Cmd, CommandError, Output};

/// How the server's host key is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyMode {
    /// Only keys already in known_hosts.
    Strict,
    /// Unknown hosts are trusted on first use and remembered; changed keys refused.
    /// Only where the user's ssh configuration says nothing of its own: a
    /// `StrictHostKeyChecking` there (as `ssh -G` reports it) is kept.
    #[default]
    AcceptNew,
    /// No checking at all (throwaway test machines only).
    None,
}

impl HostKeyMode {
    fn options(self) -> &'static [&'static str] {
        match self {
            Self::Strict => &["StrictHostKeyChecking=yes"],
            Self::AcceptNew => &["StrictHostKeyChecking=accept-new"],
            Self::None => &["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"],
        }
    }
}

/// A machine reached over SSH.
#[derive(Debug)]
pub struct Ssh {
    target: Target,
    host_keys: HostKeyMode,
    options: Vec<String>,
    config: Option<PathBuf>,
    identity: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    /// Private directory of the control socket (0700, removed on drop).
    control: tempfile::TempDir,
    /// Whether the user's configuration sets StrictHostKeyChecking (asked once).
    user_policy: std::sync::OnceLock<bool>,
}

impl Ssh {
    pub fn new(target: Target) -> std::io::Result<Self> {
        let control = tempfile::Builder::new().prefix("clan-ssh-").tempdir()?;
        Ok(Self {
            target,
            host_keys: HostKeyMode::default(),
            options: Vec::new(),
            config: None,
            identity: None,
            known_hosts: None,
            control,
            user_policy: std::sync::OnceLock::new(),
        })
    }

    pub fn host_keys(mut self, mode: HostKeyMode) -> Self {
        self.host_keys = mode;
        self
    }

    pub fn identity_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.identity = Some(path.into());
        self
    }

    /// The known_hosts file to check against (and, with `AcceptNew`, to add to)
    /// instead of the user's.
    pub fn known_hosts_file(mut self, path: &Path) -> Self {
        self.known_hosts = Some(path.to_path_buf());
        self
    }

    /// An extra `-o` option, e.g. `ConnectTimeout=5`.
    pub fn option(mut self, option: impl Into<String>) -> Self {
        self.options.push(option.into());
        self
    }

    /// An ssh config file used instead of the user's (`ssh -F`).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// The private directory holding the shared connection's socket.
    pub fn control_dir(&self) -> &Path {
        self.control.path()
    }

    /// Whether the shared (master) connection is up.
    pub fn connected(&self) -> bool {
        self.ssh(&["-O", "check"]).run().is_ok()
    }

    fn control_path(&self) -> PathBuf {
        self.control.path().join("%C")
    }

    /// Whether the user's ssh configuration for this host says anything but ssh's
    /// default (`ask`) for StrictHostKeyChecking: then clan does not override it.
    fn user_sets_policy(&self) -> bool {
        *self.user_policy.get_or_init(|| {
            let mut cmd = Cmd::new("ssh").arg("-G");
            if let Some(config) = &self.config {
                cmd = cmd.arg("-F").arg(config);
            }
            if let Some(port) = self.target.port {
                cmd = cmd.arg("-p").arg(port.to_string());
            }
            cmd.arg(self.target.destination())
                .run()
                .map(|out| {
                    out.stdout_string().lines().any(|l| {
                        l.strip_prefix("stricthostkeychecking ")
                            .is_some_and(|v| v.trim() != "ask")
                    })
                })
                .unwrap_or(false)
        })
    }

    /// `ssh OPTIONS... CONTROL DESTINATION`: everything before the remote command.
    fn ssh(&self, control: &[&str]) -> Cmd {
        let mut o: Vec<OsString> = Vec::new();
        let mut opt = |s: &str| {
            o.push("-o".into());
            o.push(s.into());
        };
        opt("BatchMode=yes");
        opt("ControlMaster=auto");
        opt(&format!("ControlPath={}", self.control_path().display()));
        opt("ControlPersist=60");
        opt("ServerAliveInterval=15");
        opt("ConnectTimeout=15");
        if !(self.host_keys == HostKeyMode::AcceptNew && self.user_sets_policy()) {
            self.host_keys.options().iter().for_each(|s| opt(s));
        }
        if let (Some(file), false) = (&self.known_hosts, self.host_keys == HostKeyMode::None) {
            opt(&format!("UserKnownHostsFile={}", file.display()));
        }
        self.options.iter().for_each(|s| opt(s));
        if let Some(config) = &self.config {
            o.push("-F".into());
            o.push(config.into());
        }
        if let Some(id) = &self.identity {
            o.push("-i".into());
            o.push(id.into());
            o.push("-o".into());
            o.push("IdentitiesOnly=yes".into());
        }
        if let Some(port) = self.target.port {
            o.push("-p".into());
            o.push(port.to_string().into());
        }
        Cmd::new("ssh")
            .args(o)
            .args(control)
            .arg("-T")
            .arg(self.target.destination())
    }
}

impl Host for Ssh {
    fn describe(&self) -> String {
        self.target.to_string()
    }

    fn run_with(&self, cmd: &Cmd, on_line: &mut dyn FnMut(&str)) -> Result<Output, HostError> {
        let mut ssh = self.ssh(&[]).arg("--").arg(cmd.to_shell());
        if let Some(data) = cmd.stdin_data() {
            ssh = ssh.stdin(data);
        }
        ssh.run_with(on_line).map_err(|e| match e {
            // ssh's own failures (connection, authentication, host key) exit 255 (so
            // does a remote command that exits 255: it is reported as unreachable).
            CommandError::Failed {
                code: 255, stderr, ..
            } => HostError::Unreachable {
                host: self.describe(),
                message: stderr.trim().to_string(),
            },
            CommandError::Failed {
                code,
                stderr,
                stdout,
                ..
            } => HostError::Command {
                host: self.describe(),
                source: CommandError::Failed {
                    command: cmd.display(),
                    code,
                    stderr,
                    stdout,
                },
            },
            other => HostError::Command {
                host: self.describe(),
                source: other,
            },
        })
    }
}

impl Drop for Ssh {
    fn drop(&mut self) {
        // Close the shared connection (its master process) if one was opened.
        if std::fs::read_dir(self.control.path()).is_ok_and(|mut d| d.next().is_some()) {
            let _ = self.ssh(&["-O", "exit"]).run();
        }
    }
}
