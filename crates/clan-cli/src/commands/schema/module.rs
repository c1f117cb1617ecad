//! `clan schema module FILE [--option PATH]`: the JSON Schema of a NixOS-style
//! module's options (SelfPrivacy's `module.nix` included, `meta` as `x-ui`).

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use clan_core::nix::{Nix, Query};
use clan_core::options::group_from_ir;
use clan_core::schema;

use crate::error::{CliError, Result};
use crate::output;

#[derive(Debug, Args)]
pub struct Opts {
    /// The module file (e.g. module.nix)
    pub file: PathBuf,
    /// Only the option or group at this dotted path (e.g. selfprivacy.modules.gitea)
    #[arg(long, value_name = "PATH")]
    pub option: Option<String>,
}

pub fn run(o: Opts) -> Result {
    let file = std::path::absolute(&o.file)
        .map_err(|e| CliError::Usage(format!("{}: {e}", o.file.display())))?;
    if !file.is_file() {
        return Err(CliError::Usage(format!("{}: no such file", file.display())));
    }
    let dir = file.parent().unwrap_or(std::path::Path::new("/"));
    let answer = Nix::new().eval(dir, Query::Module, Some(&json!({ "file": file })), &file)?;
    let group = group_from_ir(&answer["options"], "")
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let doc = match &o.option {
        None => schema::document(&group),
        Some(path) => schema::document_at(&group, path).ok_or_else(|| {
            CliError::Usage(format!(
                "{}: no option or option group at '{path}'",
                file.display()
            ))
        })?,
    }
    .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    output::json(&doc);
    Ok(())
}
