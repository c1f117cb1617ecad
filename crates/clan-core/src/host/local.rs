use super::{Host, HostError};
use crate::process::{Cmd, Output};

/// The machine clan runs on.
#[derive(Debug, Default, Clone, Copy)]
pub struct Local;

impl Host for Local {
    fn describe(&self) -> String {
        "localhost".into()
    }

    fn run_with(&self, cmd: &Cmd, on_line: &mut dyn FnMut(&str)) -> Result<Output, HostError> {
        cmd.run_with(on_line).map_err(|source| HostError::Command {
            host: self.describe(),
            source,
        })
    }
}
