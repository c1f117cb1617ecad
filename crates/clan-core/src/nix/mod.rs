//! Evaluating a clan with the real Nix (`nix-instantiate --eval --strict --json`).
//!
//! The glue (`glue/eval.nix`, `glue/lib.nix`) is embedded in the binary and written
//! to a private temporary directory for each process, so it always matches the
//! binary; its `schema` string is checked on every answer.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::process::{Cmd, CommandError};

const EVAL_NIX: &str = include_str!("glue/eval.nix");
const LIB_NIX: &str = include_str!("glue/lib.nix");
const SCHEMA: &str = "clan-glue-1";
const NIX_INSTANTIATE: &str = "nix-instantiate";

#[derive(Debug, thiserror::Error)]
pub enum NixError {
    #[error(
        "{} needs Nix to be evaluated, and `nix-instantiate` was not found.\n\
         Install it (on Debian: `apt-get install nix-bin`), or describe the clan in inventory.json only",
        .needed_by.display()
    )]
    NotInstalled { needed_by: PathBuf },
    #[error("Nix could not evaluate the clan:\n{message}")]
    Evaluation { message: String },
    #[error("the Nix glue answered with schema {found:?}, this clan binary expects {SCHEMA:?}")]
    SchemaMismatch { found: String },
    #[error("unexpected answer from Nix: {0}")]
    BadOutput(String),
    #[error("could not prepare the Nix glue: {0}")]
    Io(#[from] std::io::Error),
}

/// The queries the glue answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// Meta, inventory, machine module names, user service modules.
    Inventory,
    /// Per-machine configuration definitions (needs arguments).
    Machines,
    /// The options of one NixOS-style module file.
    Module,
}

impl Query {
    fn as_str(self) -> &'static str {
        match self {
            Self::Inventory => "inventory",
            Self::Machines => "machines",
            Self::Module => "module",
        }
    }
}

/// Runs the embedded glue with `nix-instantiate`.
#[derive(Debug, Default)]
pub struct Nix {
    glue: OnceLock<tempfile::TempDir>,
}

impl Nix {
    pub fn new() -> Self {
        Self::default()
    }

    /// True when `nix-instantiate` can be run.
    pub fn available() -> bool {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|p| p.join(NIX_INSTANTIATE).is_file())
        })
    }

    fn glue_dir(&self) -> Result<&Path, NixError> {
        if let Some(dir) = self.glue.get() {
            return Ok(dir.path());
        }
        let dir = tempfile::Builder::new().prefix("clan-glue-").tempdir()?;
        std::fs::write(dir.path().join("eval.nix"), EVAL_NIX)?;
        std::fs::write(dir.path().join("lib.nix"), LIB_NIX)?;
        Ok(self.glue.get_or_init(|| dir).path())
    }

    /// Evaluates `query` for the clan in `clan_dir`. `needed_by` names the file that
    /// made evaluation necessary, for the "install Nix" message.
    pub fn eval(
        &self,
        clan_dir: &Path,
        query: Query,
        args: Option<&Value>,
        needed_by: &Path,
    ) -> Result<Value, NixError> {
        if !Self::available() {
            return Err(NixError::NotInstalled {
                needed_by: needed_by.to_path_buf(),
            });
        }
        let glue = self.glue_dir()?;
        let mut cmd = Cmd::new(NIX_INSTANTIATE)
            .args(["--eval", "--strict", "--json"])
            .arg(glue.join("eval.nix"))
            .args(["--argstr", "clanDir"])
            .arg(clan_dir)
            .args(["--argstr", "query", query.as_str()]);
        // Arguments travel in a file, never spliced into Nix source.
        let args_file;
        if let Some(args) = args {
            args_file = tempfile::Builder::new()
                .prefix("args-")
                .suffix(".json")
                .tempfile_in(glue)?;
            std::fs::write(
                args_file.path(),
                serde_json::to_vec(args).expect("JSON serialises"),
            )?;
            cmd = cmd.args(["--argstr", "argsFile"]).arg(args_file.path());
        }
        let out = cmd.run().map_err(|e| match e {
            CommandError::Failed { stderr, .. } => NixError::Evaluation {
                message: tidy_nix_error(&stderr),
            },
            CommandError::NotFound { .. } => NixError::NotInstalled {
                needed_by: needed_by.to_path_buf(),
            },
            other => NixError::BadOutput(other.to_string()),
        })?;
        let mut answer: Value =
            serde_json::from_slice(&out.stdout).map_err(|e| NixError::BadOutput(e.to_string()))?;
        match answer.get("schema").and_then(Value::as_str) {
            Some(SCHEMA) => Ok(answer["result"].take()),
            found => Err(NixError::SchemaMismatch {
                found: found.unwrap_or("none").to_string(),
            }),
        }
    }
}

/// Nix's message as Nix wrote it (file and line included), minus the trace lines
/// that point into clan's own glue, which mean nothing to a user.
fn tidy_nix_error(stderr: &str) -> String {
    let text = stderr.trim_end();
    let mut out = Vec::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.contains("clan-glue-") {
            skipping = true;
            continue;
        }
        if skipping
            && (line.trim().is_empty() || line.starts_with("       "))
            && !line.trim_start().starts_with("error:")
        {
            continue;
        }
        skipping = false;
        out.push(line);
    }
    let joined = out.join("\n");
    if joined.trim().is_empty() {
        text.to_string()
    } else {
        joined
    }
}
