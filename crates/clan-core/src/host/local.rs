use super::{Host, HostError};
use crate::process::{Cmd, Output};

/// The machine clan runs on.
#[derive(Debug, Default, Clone, Copy)]
pub struct Local;

impl Host for Local {
    fn describe(&self) -> String {
        "localhost".into()
    }

    fn run(&self, cmd: &Cmd) -> Result<Output, HostError> {
        cmd.run().map_err(|source| HostError::Command {
            host: self.describe(),
            source,
        })
    }
}
