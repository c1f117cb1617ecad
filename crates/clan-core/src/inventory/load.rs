//! Reading a clan's sources: clan.nix (through Nix), inventory.json and
//! machines/<name>/ (directly), into definitions for the merge.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::InventoryError;
use crate::clan_dir::ClanDir;
use crate::merge::Definition;
use crate::nix::{Nix, NixError, Query};

/// Top-level attributes clan.nix may define.
pub const CLAN_NIX_KEYS: [&str; 4] = ["meta", "inventory", "machines", "modules"];

/// Everything read from a clan's files before merging.
#[derive(Debug, Clone, Default)]
pub struct RawClan {
    /// Definitions of the inventory (each a whole inventory-shaped value), in order.
    pub inventory: Vec<Definition>,
    /// Machines that have a module in clan.nix (`machines.<name>`).
    pub machine_modules: Vec<String>,
    /// User service modules, as the glue describes them.
    pub user_modules: BTreeMap<String, Value>,
    /// Whether Nix was used to read this clan.
    pub evaluated_with_nix: bool,
    /// Each machine's JSON layer (`machines/<name>/configuration.json`), by name.
    pub machine_layers: BTreeMap<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Nix(#[from] NixError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error("{file}: unknown top-level attribute '{key}'; clan.nix may define {}", CLAN_NIX_KEYS.join(", "))]
    UnknownKey { file: String, key: String },
}

/// Reads inventory.json; a missing file is an empty inventory.
pub fn read_inventory_json(dir: &ClanDir) -> Result<Option<Value>, InventoryError> {
    read_json_object(&dir.inventory_json())
}

/// A JSON file that must hold an object; `None` when missing.
pub fn read_json_object(path: &std::path::Path) -> Result<Option<Value>, InventoryError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(InventoryError::Io {
                file: path.display().to_string(),
                source,
            });
        }
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| InventoryError::Json {
        file: path.display().to_string(),
        message: format!("not valid JSON: {e}"),
    })?;
    if !value.is_object() {
        return Err(InventoryError::Json {
            file: path.display().to_string(),
            message: "must hold a JSON object".into(),
        });
    }
    Ok(Some(value))
}

/// User modules are directories under modules/ holding default.nix.
fn has_user_modules(dir: &ClanDir) -> bool {
    std::fs::read_dir(dir.modules_dir())
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.path().join("default.nix").is_file())
        })
        .unwrap_or(false)
}

impl RawClan {
    pub fn load(dir: &ClanDir, nix: &Nix) -> Result<Self, LoadError> {
        let mut raw = RawClan::default();
        let clan_nix = dir.clan_nix();
        if clan_nix.is_file() || has_user_modules(dir) {
            let needed_by = if clan_nix.is_file() {
                clan_nix.clone()
            } else {
                dir.modules_dir()
            };
            let answer = nix.eval(dir.root(), Query::Inventory, None, &needed_by)?;
            raw.evaluated_with_nix = true;
            for key in answer["topLevelKeys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !CLAN_NIX_KEYS.contains(&key) {
                    return Err(LoadError::UnknownKey {
                        file: clan_nix.display().to_string(),
                        key: key.to_string(),
                    });
                }
            }
            let meta = &answer["meta"];
            if meta.as_object().is_some_and(|m| !m.is_empty()) {
                raw.inventory
                    .push(Definition::new("clan.nix (meta)", json!({ "meta": meta })));
            }
            if answer["inventory"]
                .as_object()
                .is_some_and(|m| !m.is_empty())
            {
                raw.inventory
                    .push(Definition::new("clan.nix", answer["inventory"].clone()));
            }
            raw.machine_modules = string_list(&answer["machineModules"]);
            for name in &raw.machine_modules {
                raw.inventory.push(Definition::new(
                    format!("clan.nix (machines.{name})"),
                    json!({"machines": {name: {}}}),
                ));
            }
            if let Some(modules) = answer["modules"].as_object() {
                raw.user_modules = modules
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
            }
        }
        if let Some(json) = read_inventory_json(dir)? {
            raw.inventory.push(Definition::new("inventory.json", json));
        }
        if let Ok(entries) = std::fs::read_dir(dir.machines_dir()) {
            let mut names: Vec<String> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect();
            names.sort();
            for name in names {
                if let Some(layer) = read_json_object(&dir.machine_json(&name))? {
                    raw.machine_layers.insert(name.clone(), layer);
                }
                raw.inventory.push(Definition::new(
                    format!("machines/{name}/"),
                    json!({"machines": {&name: {}}}),
                ));
            }
        }
        Ok(raw)
    }
}

fn string_list(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}
