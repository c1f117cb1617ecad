//! `clan vars set MACHINE GEN/FILE`: a value from stdin, or typed on the terminal
//! (hidden and confirmed for secrets).

use std::io::Read;

use clap::Args;

use clan_vars::generate::scope;
use clan_vars::keys;

use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::prompt;

#[derive(Debug, Args)]
pub struct Opts {
    pub machine: String,
    /// GENERATOR/FILE
    pub var: String,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = super::fleet(g, std::slice::from_ref(&o.machine))?;
    let m = &fleet.all[&o.machine];
    let (gen_name, decl, file) = super::find(m, &o.var)?;
    let secret = decl.files[&file].secret;
    let store = fleet.store();
    // Check access before asking for anything.
    let readers = fleet.readers()?;
    if secret {
        readers.check_admin(&keys::read_identity(&keys::admin_key_file())?)?;
    }
    let value = if prompt::on_terminal() {
        let label = format!("{} {}", m.name, o.var);
        if secret {
            prompt::hidden_confirmed(&label)
        } else {
            prompt::line(&label)
        }
    } else {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v).map(|_| v)
    }
    .map_err(|e| CliError::Usage(format!("reading the value of {}: {e}", o.var)))?;
    if value.is_empty() {
        return Err(CliError::Usage(format!(
            "the value for {} is empty; nothing changed",
            o.var
        )));
    }
    let s = scope(&m.name, decl);
    let mut touched = store.generator_dirs(&s, gen_name).to_vec();
    if secret {
        let target = readers
            .secrets_of(&m.name, gen_name, decl)
            .into_iter()
            .find(|r| r.file == file)
            .expect("a secret file of this generator");
        let (recipients, keys) = readers.recipients(&store, &target)?;
        store.write_secret(&s, gen_name, &file, &value, &recipients)?;
        touched.extend(keys);
    } else {
        store.write_public(&s, gen_name, &file, &value)?;
    }
    let refs: Vec<&std::path::Path> = touched
        .iter()
        .map(|p| p.as_path())
        .filter(|p| p.exists())
        .collect();
    let committed = clan_core::git::commit_paths(
        store.root(),
        &refs,
        &format!("vars: set {} (machine: {})", o.var, m.name),
    )
    .map_err(clan_core::Error::from)?;
    println!(
        "Set {} of {}{}",
        o.var,
        m.name,
        if committed { " (committed)" } else { "" }
    );
    Ok(())
}
