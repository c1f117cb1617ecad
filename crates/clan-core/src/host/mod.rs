//! Where a machine's commands run: this machine (`Local`) or another one over the
//! system's OpenSSH client (`Ssh`). Commands are argument vectors (`Cmd`); only the
//! SSH host turns them into one quoted line for the remote shell, in one place
//! (`Cmd::to_shell`). Secrets travel on stdin, never on a command line.

mod local;
mod ssh;
mod target;

pub use local::Local;
pub use ssh::{HostKeyMode, Ssh};
pub use target::{Target, TargetError};

use crate::process::{Cmd, CommandError, Output};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot reach {host} over SSH: {message}")]
    Unreachable { host: String, message: String },
    #[error("on {host}: {source}")]
    Command {
        host: String,
        #[source]
        source: CommandError,
    },
}

/// A machine that runs commands.
pub trait Host: Send + Sync + std::fmt::Debug {
    /// How messages name it: `localhost`, `root@10.0.0.2:2222`.
    fn describe(&self) -> String;

    /// Runs `cmd` there (with its stdin) and returns what it printed; a non-zero
    /// exit is an error that names the host and the command.
    fn run(&self, cmd: &Cmd) -> Result<Output, HostError> {
        self.run_with(cmd, &mut |_| {})
    }

    /// Like `run`, handing each line of stdout to `on_line` as it arrives.
    fn run_with(&self, cmd: &Cmd, on_line: &mut dyn FnMut(&str)) -> Result<Output, HostError>;
}
