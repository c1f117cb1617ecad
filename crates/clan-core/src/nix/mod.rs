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

/// Writes the glue (`eval.nix`, `lib.nix`) into `dir`, for expressions that import
/// it (a NixOS machine's system: `nixos.rs`).
pub fn write_glue(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join("eval.nix"), EVAL_NIX)?;
    std::fs::write(dir.join("lib.nix"), LIB_NIX)
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
        write_glue(dir.path())?;
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
                message: with_location(tidy_nix_error(&stderr), || {
                    cmd.clone()
                        .arg("--show-trace")
                        .run()
                        .err()
                        .and_then(|e| match e {
                            CommandError::Failed { stderr, .. } => user_location(&stderr),
                            _ => None,
                        })
                }),
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

/// Nix omits the place of some errors (a `throw`, an assertion) unless asked for
/// its whole trace, and then says to use `--show-trace`, which clan does not take.
/// clan asks for the trace itself and adds the innermost place in the user's files.
fn with_location(message: String, trace: impl FnOnce() -> Option<String>) -> String {
    const ASK: &str = "(use '--show-trace' to show detailed location information)";
    if !message.contains(ASK) {
        return message;
    }
    let message = message
        .lines()
        .filter(|l| l.trim() != ASK)
        .collect::<Vec<_>>()
        .join("\n");
    match trace() {
        Some(place) => format!("{message}\n{place}"),
        None => message,
    }
}

/// The innermost frame of a `--show-trace` output that is in the user's files
/// (`at /path/file.nix:LINE:COL:` and the code Nix shows under it).
fn user_location(trace: &str) -> Option<String> {
    let lines: Vec<&str> = trace.lines().collect();
    let i = lines.iter().position(|l| {
        l.trim_start()
            .strip_prefix("at /")
            .is_some_and(|_| !l.contains("clan-glue-"))
    })?;
    // "… while evaluating the attribute 'x'" above the place, the code below it.
    let start = if i > 0 && lines[i - 1].trim_start().starts_with('…') {
        i - 1
    } else {
        i
    };
    let code = lines[i + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || l.contains('|'))
        .filter(|l| !l.trim().is_empty())
        .copied();
    Some(
        lines[start..=i]
            .iter()
            .copied()
            .chain(code)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Nix's message as Nix wrote it (file and line included), minus the trace lines
/// that point into clan's own glue, which mean nothing to a user.
fn tidy_nix_error(stderr: &str) -> String {
    let text = stderr.trim_end();
    let mut out = Vec::new();
    let mut skipping = false;
    for line in text.lines() {
        // Debian's nix-bin in single-user mode says this on every run.
        if line.starts_with("warning: the group 'nixbld'") {
            continue;
        }
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
