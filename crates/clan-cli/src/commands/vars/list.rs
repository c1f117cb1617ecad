//! `clan vars list MACHINE`

use clap::Args;

use clan_vars::generate::scope;
use clan_vars::store::Store;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    pub machine: String,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let (clan, machines) = super::machines(g, std::slice::from_ref(&o.machine))?;
    let m = &machines[&o.machine];
    let store = Store::new(clan.dir.root());
    for (gen_name, gen_decl) in &m.clan_core.vars.generators {
        let s = scope(&m.name, gen_decl);
        for (f, decl) in &gen_decl.files {
            let shown = if decl.secret {
                if store.secret_path(&s, gen_name, f).is_file() {
                    "********".to_string()
                } else {
                    "<not set>".to_string()
                }
            } else {
                std::fs::read(store.public_path(&s, gen_name, f))
                    .map(|v| String::from_utf8_lossy(&v).trim_end().to_string())
                    .unwrap_or_else(|_| "<not set>".into())
            };
            println!("{gen_name}/{f}: {shown}");
        }
    }
    Ok(())
}
