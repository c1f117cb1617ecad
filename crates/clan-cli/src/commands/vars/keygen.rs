//! `clan vars keygen [--name NAME]`

use clap::Args;

use clan_vars::keys;
use clan_vars::store::Store;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    /// Your name among the clan's admins; default: $USER
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let dir = super::super::clan_dir(g)?;
    let path = keys::admin_key_file();
    let existed = path.exists();
    let id = keys::ensure_admin_identity(&path)?;
    let name = o
        .name
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "admin".into());
    let store = Store::new(dir.root());
    let file = store.add_admin(&name, &id.to_public())?;
    let committed =
        clan_core::git::commit_paths(dir.root(), &[&file], &format!("secrets: add admin {name}"))
            .map_err(clan_core::Error::from)?;
    println!(
        "{} key: {}",
        if existed { "Your" } else { "Created your" },
        path.display()
    );
    println!(
        "Public key {} registered as admin '{name}'{}",
        id.to_public(),
        if committed { " (committed)" } else { "" }
    );
    Ok(())
}
