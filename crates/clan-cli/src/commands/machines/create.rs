//! `clan machines create NAME [--tags ...] [--target-host H] [--class C]`

use clap::Args;
use serde_json::{Map, Value, json};

use clan_core::git;
use clan_core::inventory::{MachineClass, read_inventory_json, write_json};
use clan_core::names::MachineName;

use crate::cli::Global;
use crate::error::{CliError, Result};

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
    let clan = super::super::open_clan(g)?;
    let name = o.name.as_str();
    if clan.inventory.machines.contains_key(name) {
        return Err(CliError::Usage(format!("machine '{name}' already exists")));
    }
    let path = clan.dir.inventory_json();
    let mut inventory = read_inventory_json(&clan.dir)
        .map_err(clan_core::Error::from)?
        .unwrap_or_else(|| json!({}));
    let mut machine = Map::new();
    if !o.tags.is_empty() {
        machine.insert("tags".into(), json!(o.tags));
    }
    if let Some(d) = o.description {
        machine.insert("description".into(), d.into());
    }
    if let Some(t) = o.target_host {
        machine.insert("deploy".into(), json!({ "targetHost": t }));
    }
    if let Some(c) = o.class {
        machine.insert("machineClass".into(), c.as_str().into());
    }
    let machines = inventory
        .as_object_mut()
        .expect("inventory.json holds an object")
        .entry("machines")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(machines) = machines.as_object_mut() else {
        return Err(CliError::Usage(format!(
            "{}: `machines` is not an object",
            path.display()
        )));
    };
    machines.insert(name.to_string(), Value::Object(machine));
    write_json(&path, &inventory).map_err(|source| clan_core::Error::Io {
        context: format!("writing {}", path.display()),
        source,
    })?;
    let committed = git::commit_paths(clan.dir.root(), &[&path], &format!("machines: add {name}"))
        .map_err(clan_core::Error::from)?;
    println!(
        "Created machine '{name}'{}",
        if committed { " (committed)" } else { "" }
    );
    Ok(())
}
