//! `clan machines create NAME [--tags ...] [--target-host H] [--class C]`

use clap::Args;

use clan_core::inventory::MachineClass;
use clan_core::names::MachineName;
use clan_ops::machines::create::CreateOptions;

use crate::cli::Global;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct Opts {
    /// The machine's name (its hostname)
    pub name: MachineName,
    /// Tags, for selecting machines and joining service roles
    #[arg(long, num_args = 1..)]
    pub tags: Vec<String>,
    /// [user@]host[:port] to reach it; default root@<name>.<domain>
    #[arg(long)]
    pub target_host: Option<String>,
    /// nixos, darwin, or linux (any systemd Linux, e.g. Debian)
    #[arg(long, value_parser = parse_class)]
    pub class: Option<MachineClass>,
    #[arg(long)]
    pub description: Option<String>,
}

fn parse_class(s: &str) -> std::result::Result<MachineClass, String> {
    MachineClass::ALL
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| format!("'{s}' is not a machine class; use nixos, darwin or linux"))
}

pub fn run(g: &Global, o: Opts) -> Result {
    // Opening checks the clan is valid before it is changed.
    let fleet = clan_ops::Fleet::unresolved(super::super::clan_dir(g)?)?;
    let written = clan_ops::machines::create::create(
        &fleet,
        &o.name,
        &CreateOptions {
            tags: o.tags,
            target_host: o.target_host,
            class: o.class,
            description: o.description,
        },
    )?;
    println!(
        "Created machine '{}'{}",
        o.name.as_str(),
        if written.committed {
            " (committed)"
        } else {
            ""
        }
    );
    Ok(())
}
