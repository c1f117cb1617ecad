//! `clan machines delete NAME`

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use clan_core::git;
use clan_core::inventory::{read_inventory_json, write_json};

use crate::cli::Global;
use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// The machine to delete
    pub name: String,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let clan = super::super::open_clan(g)?;
    let name = o.name.as_str();
    clan.machine(name)?;
    let path = clan.dir.inventory_json();
    let mut inventory = read_inventory_json(&clan.dir)
        .map_err(clan_core::Error::from)?
        .unwrap_or_default();
    let in_json = inventory.pointer(&format!("/machines/{name}")).is_some();
    let dir = clan.dir.machines_dir().join(name);
    if !in_json && !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "machine '{name}' is defined in clan.nix; remove it there (clan only edits inventory.json)"
        )));
    }
    // Roles in inventory.json that name the machine lose it too.
    let mut roles_left = Vec::new();
    if let Some(instances) = inventory
        .get_mut("instances")
        .and_then(Value::as_object_mut)
    {
        for (inst, i) in instances.iter_mut() {
            for (role, r) in i
                .get_mut("roles")
                .and_then(Value::as_object_mut)
                .into_iter()
                .flatten()
            {
                if let Some(m) = r.get_mut("machines").and_then(Value::as_object_mut)
                    && m.remove(name).is_some()
                {
                    roles_left.push(format!("{inst}/{role}"));
                }
            }
        }
    }
    if let Some(m) = inventory.get_mut("machines").and_then(Value::as_object_mut) {
        m.remove(name);
    }
    let mut changed: Vec<PathBuf> = vec![path.clone()];
    if in_json || !roles_left.is_empty() {
        write_json(&path, &inventory).map_err(|source| clan_core::Error::Io {
            context: format!("writing {}", path.display()),
            source,
        })?;
    }
    for d in [
        dir,
        clan.dir.root().join("vars/per-machine").join(name),
        clan.dir.root().join("secrets/per-machine").join(name),
    ] {
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(|source| clan_core::Error::Io {
                context: format!("removing {}", d.display()),
                source,
            })?;
            changed.push(d);
        }
    }
    let refs: Vec<&std::path::Path> = changed.iter().map(PathBuf::as_path).collect();
    let committed = git::commit_paths(clan.dir.root(), &refs, &format!("machines: delete {name}"))
        .map_err(clan_core::Error::from)?;
    println!(
        "Deleted machine '{name}'{}",
        if committed { " (committed)" } else { "" }
    );
    if !roles_left.is_empty() {
        println!("It was removed from: {}", roles_left.join(", "));
    }
    Ok(())
}
