//! `clan init [DIR] [--name N] [--domain D]`

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
    let name = match o.name {
        Some(n) => n,
        None => std::path::absolute(&o.dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .map(|n| {
                n.chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect()
            })
            .unwrap_or_else(|| "my-clan".into()),
    };
    let clan = clan_core::ClanDir::init(&o.dir, &name, &o.domain)?;
    println!("Created clan '{name}' in {}", clan.root().display());
    println!(
        "Next: `clan machines create NAME`, then describe services in clan.nix (`clan modules list`)."
    );
    Ok(())
}
