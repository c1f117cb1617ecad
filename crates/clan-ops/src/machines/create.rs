//! `machines create`: a machine in inventory.json, committed.

use serde_json::{Map, Value, json};

use clan_core::inventory::MachineClass;
use clan_core::names::MachineName;

use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::inventory::{Edit, Written, edit};

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub tags: Vec<String>,
    pub target_host: Option<String>,
    pub class: Option<MachineClass>,
    pub description: Option<String>,
}

pub fn create(fleet: &Fleet, name: &MachineName, o: &CreateOptions) -> Result<Written> {
    let name = name.as_str();
    if fleet.clan.inventory.machines.contains_key(name) {
        return Err(Error::Usage(format!("machine '{name}' already exists")));
    }
    let mut machine = Map::new();
    if !o.tags.is_empty() {
        machine.insert("tags".into(), json!(o.tags));
    }
    if let Some(d) = &o.description {
        machine.insert("description".into(), d.clone().into());
    }
    if let Some(t) = &o.target_host {
        machine.insert("deploy".into(), json!({ "targetHost": t }));
    }
    if let Some(c) = o.class {
        machine.insert("machineClass".into(), c.as_str().into());
    }
    edit(
        &fleet.clan,
        &[Edit::SetMachine {
            machine: name.to_string(),
            path: Vec::new(),
            value: Some(Value::Object(machine)),
        }],
        &format!("machines: add {name}"),
    )
}
