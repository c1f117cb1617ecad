//! Running user scripts (state hooks, command providers) with bash, from a private
//! temporary file: `set -euo pipefail` applies, output is captured and reported.

use std::io::Write;

use clan_core::process::{Cmd, CommandError};

use crate::error::{BackupError, Result, io};
use crate::event::{Event, Reporter};

/// Runs `script`; returns its stdout. A failure names `step` and carries the output.
pub fn run_script(
    step: &str,
    script: &str,
    env: &[(&str, &str)],
    reporter: &dyn Reporter,
) -> Result<String> {
    let mut file = tempfile::Builder::new()
        .prefix("clan-hook-")
        .suffix(".sh")
        .tempfile()
        .map_err(io("creating a script file"))?;
    file.write_all(script.as_bytes())
        .map_err(io("writing a script file"))?;
    let mut cmd = Cmd::new("bash")
        .die_with_parent()
        .args(["-e", "-u", "-o", "pipefail"])
        .arg(file.path());
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    reporter.report(Event::Step {
        provider: None,
        step: step.to_string(),
    });
    match cmd.run() {
        Ok(out) => {
            for line in out.stderr.lines().chain(out.stdout_string().lines()) {
                reporter.report(Event::Output {
                    step: step.to_string(),
                    line: line.to_string(),
                });
            }
            Ok(out.stdout_string())
        }
        Err(CommandError::Failed {
            code,
            stderr,
            stdout,
            ..
        }) => {
            let output = format!("{}{}", stdout, stderr);
            Err(BackupError::Step {
                step: step.to_string(),
                message: format!(
                    "exit code {code}{}",
                    if output.trim().is_empty() {
                        String::new()
                    } else {
                        format!("; output:\n{}", output.trim_end())
                    }
                ),
            })
        }
        Err(e) => Err(BackupError::Step {
            step: step.to_string(),
            message: e.to_string(),
        }),
    }
}
