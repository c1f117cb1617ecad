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
    /// A known_hosts file with keys the clan knows for this machine (in `control`).
    pinned: Option<PathBuf>,
    /// Private directory of the control socket (0700, removed on drop).
    control: tempfile::TempDir,
    /// What the user's configuration says (asked once).
    user_config: std::sync::OnceLock<UserConfig>,
}

/// The parts of `ssh -G` clan works with.
#[derive(Debug, Default)]
struct UserConfig {
    /// StrictHostKeyChecking is set to something other than ssh's default.
    sets_policy: bool,
    /// GlobalKnownHostsFile, as ssh would use it.
    global_known_hosts: Option<String>,
}

/// The file name of pinned keys in the control directory.
const PINNED: &str = "pinned_known_hosts";

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
            pinned: None,
            control,
            user_config: std::sync::OnceLock::new(),
        })
    }

    /// Host keys the clan knows for this machine (its vars, `ssh-ed25519 AAAA…`):
    /// they verify the machine besides the user's known_hosts, so that the first
    /// connection already is verified and a machine whose key the clan set is
    /// recognised; a machine that shows neither key is refused.
    pub fn pin_host_keys(mut self, keys: &[String]) -> std::io::Result<Self> {
        if keys.is_empty() {
            return Ok(self);
        }
        let pattern = match self.target.port {
            Some(port) if port != 22 => format!("[{}]:{port}", self.target.host),
            _ => self.target.host.clone(),
        };
        let text: String = keys
            .iter()
            .map(|k| format!("{pattern} {}\n", k.trim()))
            .collect();
        let file = self.control.path().join(PINNED);
        std::fs::write(&file, text)?;
        self.pinned = Some(file);
        Ok(self)
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

    /// What the user's ssh configuration says for this host: a StrictHostKeyChecking
    /// other than ssh's default (`ask`) is not overridden; the global known_hosts
    /// files are kept when clan adds its own.
    fn user_config(&self) -> &UserConfig {
        self.user_config.get_or_init(|| {
            let mut cmd = Cmd::new("ssh").arg("-G");
            if let Some(config) = &self.config {
                cmd = cmd.arg("-F").arg(config);
            }
            if let Some(port) = self.target.port {
                cmd = cmd.arg("-p").arg(port.to_string());
            }
            let Ok(out) = cmd.arg(self.target.destination()).run() else {
                return UserConfig::default();
            };
            let text = out.stdout_string();
            let value = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(|v| v.trim().to_string())
            };
            UserConfig {
                sets_policy: value("stricthostkeychecking ").is_some_and(|v| v != "ask"),
                global_known_hosts: value("globalknownhostsfile "),
            }
        })
    }

    /// `ssh OPTIONS... CONTROL DESTINATION`: everything before the remote command.
    fn ssh(&self, control: &[&str]) -> Cmd {
        let mut o = self.options();
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

    /// This connection's ssh command without host, port and user, as one shell
    /// line (every word quoted): for programs that run ssh themselves (`BORG_RSH`)
    /// to reach the same machine with the same checks.
    pub fn command_line(&self) -> String {
        std::iter::once(OsString::from("ssh"))
            .chain(self.options())
            .map(|w| crate::process::shell_quote(&w.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn options(&self) -> Vec<OsString> {
        let mut o: Vec<OsString> = Vec::new();
        let mut opt = |s: &str| {
            o.push("-o".into());
            o.push(s.into());
        };
        opt("BatchMode=yes");
        opt("ControlMaster=auto");
        opt(&format!("ControlPath={}", self.control_path().display()));
        opt("ControlPersist=60");
        // A connection that stops answering is given up after 15 s (an activation
        // that cut a machine off must not hang the command).
        opt("ServerAliveInterval=5");
        opt("ServerAliveCountMax=3");
        opt("ConnectTimeout=15");
        if !(self.host_keys == HostKeyMode::AcceptNew && self.user_config().sets_policy) {
            self.host_keys.options().iter().for_each(|s| opt(s));
        }
        if let (Some(pinned), false) = (&self.pinned, self.host_keys == HostKeyMode::None) {
            let mut files = self
                .user_config()
                .global_known_hosts
                .clone()
                .unwrap_or_default();
            files.push(' ');
            files.push_str(&pinned.display().to_string());
            opt(&format!("GlobalKnownHostsFile={}", files.trim()));
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
        o
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
        let opened = std::fs::read_dir(self.control.path())
            .is_ok_and(|d| d.flatten().any(|e| e.file_name() != PINNED));
        if opened {
            let _ = self.ssh(&["-O", "exit"]).run();
        }
    }
}
