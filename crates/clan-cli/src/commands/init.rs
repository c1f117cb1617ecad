//! `clan init [DIR] [--name N] [--domain D] [--machine-held NAME [--agent-listen ADDR]]`
//! (clan-ops' `init` and `machine_held`)

use std::path::PathBuf;

use clap::Args;

use clan_core::names::MachineName;

use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    /// Where to create the clan (created if missing); default: the current
    /// directory, or /var/lib/clan/clan with --machine-held
    pub dir: Option<PathBuf>,
    /// The clan's name; default: the directory's name (the machine's with --machine-held)
    #[arg(long)]
    pub name: Option<String>,
    /// Machines are reached as <machine>.<domain> unless they set a target host
    #[arg(long, default_value = "clan")]
    pub domain: String,
    /// A clan that this machine holds and manages itself, as machine NAME: no
    /// clan.nix (no Nix needed here), `machines update NAME` applies here without
    /// SSH, and its agent (which the SelfPrivacy app talks to) changes this clan
    #[arg(long, value_name = "NAME")]
    pub machine_held: Option<MachineName>,
    /// With --machine-held: where the agent listens (default 127.0.0.1:5050; the
    /// app must reach it, e.g. 0.0.0.0:5050 behind TLS or a VPN)
    #[arg(long, value_name = "ADDR", requires = "machine_held")]
    pub agent_listen: Option<String>,
}

pub fn run(o: Opts) -> Result {
    let Some(machine) = &o.machine_held else {
        let dir = o.dir.unwrap_or_else(|| PathBuf::from("."));
        let (clan, name) = clan_ops::init::init(&dir, o.name.as_deref(), &o.domain)?;
        println!("Created clan '{name}' in {}", clan.root().display());
        println!(
            "Next: `clan machines create NAME`, then describe services in clan.nix (`clan modules list`)."
        );
        return Ok(());
    };
    let dir = o
        .dir
        .unwrap_or_else(|| PathBuf::from(clan_ops::init::MACHINE_HELD_DIR));
    let admin = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let made = clan_ops::init::machine_held(
        &dir,
        o.name.as_deref(),
        &o.domain,
        machine,
        o.agent_listen.as_deref(),
        &admin,
    )?;
    println!(
        "Created clan '{}' in {}, held by this machine ({machine})",
        o.name.as_deref().unwrap_or(machine.as_str()),
        made.clan.root().display()
    );
    if let Some(key) = &made.new_key {
        println!("Created your admin key: {}", key.display());
    }
    println!(
        "Next: `clan --dir {} machines update {machine}` (applies here), then \
         `clan --dir {0} vars get {machine} agent/token` for the app.",
        made.clan.root().display()
    );
    Ok(())
}
