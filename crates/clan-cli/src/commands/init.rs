//! `clan init [DIR] [--name N] [--domain D]` (clan-ops' `init`)

use std::path::PathBuf;

use clap::Args;

use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    /// Where to create the clan (created if missing)
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The clan's name; default: the directory's name
    #[arg(long)]
    pub name: Option<String>,
    /// Machines are reached as <machine>.<domain> unless they set a target host
    #[arg(long, default_value = "clan")]
    pub domain: String,
}

pub fn run(o: Opts) -> Result {
    let (clan, name) = clan_ops::init::init(&o.dir, o.name.as_deref(), &o.domain)?;
    println!("Created clan '{name}' in {}", clan.root().display());
    println!(
        "Next: `clan machines create NAME`, then describe services in clan.nix (`clan modules list`)."
    );
    Ok(())
}
