//! `clan vars get MACHINE GEN/FILE`

use std::io::Write;

use clap::Args;

use clan_vars::generate::scope;
use clan_vars::keys;
use clan_vars::store::Store;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    pub machine: String,
    /// GENERATOR/FILE
    pub var: String,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let (clan, machines) = super::machines(g, std::slice::from_ref(&o.machine))?;
    let m = &machines[&o.machine];
    let (gen_name, gen_decl, file) = super::find(m, &o.var)?;
    let store = Store::new(clan.dir.root());
    let s = scope(&m.name, gen_decl);
    let value = if gen_decl.files[&file].secret {
        let admin = keys::read_identity(&keys::admin_key_file())?;
        store.read_secret(&s, gen_name, &file, &admin)?
    } else {
        std::fs::read(store.public_path(&s, gen_name, &file))
            .map_err(|_| clan_vars::VarsError::NotGenerated(o.var.clone()))?
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&value);
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) && !value.ends_with(b"\n") {
        let _ = out.write_all(b"\n");
    }
    Ok(())
}
