//! `machines delete`: the machine out of inventory.json (and out of the roles there
//! that name it), its directory, vars, secrets and key removed; checked, committed.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use clan_core::LayerEdit;
use clan_core::inventory::read_json_object;

use crate::error::{Error, Result};
use crate::fleet::Fleet;

#[derive(Debug, Clone, Serialize)]
pub struct Deleted {
    /// What was written or removed.
    pub paths: Vec<PathBuf>,
    pub committed: bool,
    /// `instance/role` of the roles in inventory.json that named the machine.
    pub removed_from: Vec<String>,
}

/// Why `machines delete NAME` would refuse: the machine is defined only in
/// clan.nix, which clan does not edit. `None` when it can be deleted.
pub fn why_not(clan: &clan_core::Clan, name: &str) -> Option<String> {
    let in_json = read_json_object(&clan.dir.inventory_json())
        .ok()
        .flatten()
        .is_some_and(|i| i.pointer(&format!("/machines/{name}")).is_some());
    (!in_json && !clan.dir.machines_dir().join(name).is_dir()).then(|| {
        format!(
            "machine '{name}' is defined in clan.nix; remove it there (clan only edits \
             inventory.json)"
        )
    })
}

pub fn delete(fleet: &Fleet, name: &str) -> Result<Deleted> {
    let clan = &fleet.clan;
    clan.machine(name)?;
    let path = clan.dir.inventory_json();
    let mut inventory = read_json_object(&path)
        .map_err(clan_core::Error::from)?
        .unwrap_or_default();
    if let Some(why) = why_not(clan, name) {
        return Err(Error::Usage(why));
    }
    let in_json = inventory.pointer(&format!("/machines/{name}")).is_some();
    let dir = clan.dir.machines_dir().join(name);
    let mut removed_from = Vec::new();
    for (inst, i) in inventory
        .get_mut("instances")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flatten()
    {
        for (role, r) in i
            .get_mut("roles")
            .and_then(Value::as_object_mut)
            .into_iter()
            .flatten()
        {
            if let Some(m) = r.get_mut("machines").and_then(Value::as_object_mut)
                && m.remove(name).is_some()
            {
                removed_from.push(format!("{inst}/{role}"));
            }
        }
    }
    if let Some(m) = inventory.get_mut("machines").and_then(Value::as_object_mut) {
        m.remove(name);
    }
    // The clan without the machine must still be valid (clan.nix may name it).
    let candidate = clan.with_layers(LayerEdit {
        inventory_json: Some(inventory.clone()),
        deleted_machine: Some(name.to_string()),
        ..Default::default()
    })?;
    candidate.resolve(&[])?;

    let mut paths = Vec::new();
    if in_json || !removed_from.is_empty() {
        crate::inventory::write_file(&path, &inventory)?;
        paths.push(path);
    }
    let mut dirs = vec![dir];
    dirs.extend(fleet.store().machine_dirs(name));
    for d in dirs {
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(|source| {
                Error::Core(Box::new(clan_core::Error::Io {
                    context: format!("removing {}", d.display()),
                    source,
                }))
            })?;
            paths.push(d);
        }
    }
    let refs: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    let committed =
        clan_core::git::commit_paths(clan.dir.root(), &refs, &format!("machines: delete {name}"))
            .map_err(clan_core::Error::from)?;
    Ok(Deleted {
        paths,
        committed,
        removed_from,
    })
}
