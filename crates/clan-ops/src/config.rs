//! A machine's settable options (`clan config --machine M [OPTION [VALUE]]`): the
//! inventory's (`deploy.targetHost`, `deploy.buildHost`, `machineClass`, `tags`,
//! `description`), written to inventory.json, and every JSON-typed `clan.core`
//! option, written to the machine's JSON layer (`machines/<m>/configuration.json`).
//! Clan's older names are accepted: `clan.networking.targetHost`,
//! `clan.networking.buildHost`, `clan.deployment.*`.

use serde::Serialize;
use serde_json::{Map, Value};

use clan_core::machine::clan_core_options;
use clan_core::options::{DefaultValue, Group, OptionDecl, OptionNode, OptionType};
use clan_core::validate::Validator;

use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::inventory::{self, Edit, Written};

/// Where an option's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Place {
    /// `machines.<m>` of inventory.json.
    Inventory,
    /// The machine's JSON layer.
    MachineLayer,
}

/// One option of a machine, as `clan config` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    /// The option's path as clan names it (`deploy.targetHost`, `clan.core.…`).
    pub option: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The machine's current value (the default when nothing sets it).
    pub value: Value,
    /// The files (or modules) that set it; empty: the default.
    pub set_in: Vec<String>,
    pub place: Place,
    /// Why `clan config` cannot change it (another file sets it), when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_by: Option<String>,
}

const INVENTORY_OPTIONS: [&str; 5] = [
    "deploy.targetHost",
    "deploy.buildHost",
    "machineClass",
    "tags",
    "description",
];

/// `option` in clan's own words.
fn canonical(option: &str) -> String {
    match option {
        "clan.networking.targetHost" | "targetHost" => "deploy.targetHost".into(),
        "clan.networking.buildHost" | "buildHost" => "deploy.buildHost".into(),
        o => match o.strip_prefix("clan.deployment.") {
            Some(rest) => format!("clan.core.deployment.{rest}"),
            None => o.to_string(),
        },
    }
}

/// The declaration at `parts` below `group`: attribute names of `attrsOf` options
/// are free, one part each.
fn find<'a>(group: &'a Group, parts: &[&str]) -> Option<&'a OptionDecl> {
    let (first, rest) = parts.split_first()?;
    match group.get(*first)? {
        OptionNode::Group(g) => find(g, rest),
        OptionNode::Option(o) => find_in_type(o, &o.ty, rest),
    }
}

fn find_in_type<'a>(
    o: &'a OptionDecl,
    ty: &'a OptionType,
    rest: &[&str],
) -> Option<&'a OptionDecl> {
    if rest.is_empty() {
        return Some(o);
    }
    match ty {
        OptionType::Submodule(g) => find(g, rest),
        OptionType::AttrsOf { elem, .. } => match elem.as_ref() {
            OptionType::Submodule(g) if rest.len() > 1 => find(g, &rest[1..]),
            _ => None,
        },
        OptionType::NullOr(t) => find_in_type(o, t, rest),
        _ => None,
    }
}

/// The options of one machine in the inventory (`machines.<name>`).
fn machine_group() -> Group {
    let inv = clan_core::inventory::schema();
    if let Some(OptionNode::Option(o)) = inv.get("machines")
        && let OptionType::AttrsOf { elem, .. } = &o.ty
        && let OptionType::Submodule(g) = elem.as_ref()
    {
        return g.clone();
    }
    Group::new()
}

fn pointer(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// The sources that set the value at `pointer` (merging records every pointer it
/// was given a value for; none: the default).
fn sources_at<T: ToString>(
    provenance: &std::collections::BTreeMap<String, Vec<T>>,
    pointer: &str,
) -> Vec<String> {
    provenance
        .get(pointer)
        .map(|s| s.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}

/// One option of `machine`.
pub fn get(fleet: &Fleet, machine: &str, option: &str) -> Result<Setting> {
    let m = fleet.machine(machine)?;
    let option = canonical(option);
    let parts: Vec<&str> = option.split('.').collect();
    if INVENTORY_OPTIONS.contains(&option.as_str()) {
        let group = machine_group();
        let decl = find(&group, &parts).expect("declared");
        let at = format!("/machines/{machine}{}", pointer(&parts));
        let value = fleet.clan.inventory.merged.pointer(&at).cloned();
        let set_in = sources_at(&fleet.clan.inventory.provenance, &at);
        let own = clan_core::clan_dir::INVENTORY_JSON;
        return Ok(setting(&option, decl, value, set_in, Place::Inventory, own));
    }
    let Some(rest) = parts.strip_prefix(&["clan", "core"]) else {
        return Err(unknown(fleet, machine, &option));
    };
    let options = clan_core_options();
    let decl = find(&options, rest).ok_or_else(|| unknown(fleet, machine, &option))?;
    let core = serde_json::to_value(&m.clan_core).expect("serialises");
    let value = core.pointer(&pointer(rest)).cloned();
    let set_in = sources_at(&m.provenance, &pointer(&parts));
    let own = format!("machines/{machine}/{}", clan_core::clan_dir::MACHINE_JSON);
    Ok(setting(
        &option,
        decl,
        value,
        set_in,
        Place::MachineLayer,
        &own,
    ))
}

fn setting(
    option: &str,
    decl: &OptionDecl,
    value: Option<Value>,
    set_in: Vec<String>,
    place: Place,
    own: &str,
) -> Setting {
    let default = match &decl.default {
        DefaultValue::Json(v) => Some(v.clone()),
        _ => None,
    };
    let others: Vec<&String> = set_in.iter().filter(|s| *s != own).collect();
    let fixed_by = (!others.is_empty()).then(|| {
        format!(
            "set in {}; {own} cannot change it (change it there, or remove it there to set it here)",
            others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    Setting {
        option: option.to_string(),
        ty: decl.ty.nix_name(),
        description: decl.description.clone(),
        value: value.or_else(|| default.clone()).unwrap_or(Value::Null),
        default,
        set_in,
        place,
        fixed_by,
    }
}

fn unknown(fleet: &Fleet, machine: &str, option: &str) -> Error {
    let mut known: Vec<String> = list(fleet, machine)
        .map(|l| l.into_iter().map(|s| s.option).collect())
        .unwrap_or_default();
    known.extend(["clan.networking.targetHost", "clan.networking.buildHost"].map(String::from));
    let close = clan_core::names::did_you_mean(option, known.iter().map(String::as_str));
    Error::Usage(format!(
        "machine '{machine}' has no option '{option}'.{} `clan config --machine {machine}` \
         lists them",
        if close.is_empty() {
            String::new()
        } else {
            format!(" Did you mean: {}?", close.join(", "))
        }
    ))
}

/// Every settable option of `machine`: the inventory's, then `clan.core`'s (for
/// `attrsOf` options such as `state`, each entry that exists and `<name>` for a new one).
pub fn list(fleet: &Fleet, machine: &str) -> Result<Vec<Setting>> {
    let m = fleet.machine(machine)?;
    let mut out = Vec::new();
    for o in INVENTORY_OPTIONS {
        out.push(get(fleet, machine, o)?);
    }
    let core = serde_json::to_value(&m.clan_core).expect("serialises");
    let mut paths = Vec::new();
    leaves(&clan_core_options(), "clan.core", &core, &mut paths);
    for p in paths {
        out.push(get(fleet, machine, &p)?);
    }
    Ok(out)
}

fn leaves(group: &Group, prefix: &str, value: &Value, out: &mut Vec<String>) {
    for (name, node) in group {
        let path = format!("{prefix}.{name}");
        let v = value.get(name).unwrap_or(&Value::Null);
        match node {
            OptionNode::Group(g) => leaves(g, &path, v, out),
            OptionNode::Option(o) if !o.visible || o.read_only => {}
            OptionNode::Option(o) => match &o.ty {
                OptionType::Submodule(g) => leaves(g, &path, v, out),
                OptionType::AttrsOf { elem, .. } if matches!(**elem, OptionType::Submodule(_)) => {
                    let OptionType::Submodule(g) = elem.as_ref() else {
                        unreachable!()
                    };
                    for (entry, ev) in v.as_object().into_iter().flatten() {
                        leaves(g, &format!("{path}.{entry}"), ev, out);
                    }
                    // What a new entry takes.
                    leaves(g, &format!("{path}.<name>"), &Value::Null, out);
                }
                OptionType::NotJson(_) => {}
                _ => out.push(path),
            },
        }
    }
}

/// Sets `option` of `machine` to `raw` (JSON when it parses as JSON, else the
/// string), after checking it against the option's type and the whole clan with it.
pub fn set(fleet: &Fleet, machine: &str, option: &str, raw: &str) -> Result<Written> {
    set_by(fleet, machine, option, raw, None)
}

/// [`set`], its commit naming who asked (`by`, e.g. the agent's device).
pub fn set_by(
    fleet: &Fleet,
    machine: &str,
    option: &str,
    raw: &str,
    by: Option<&str>,
) -> Result<Written> {
    if option.contains("<name>") {
        return Err(Error::Usage(format!(
            "{option}: replace <name> with the entry's name (e.g. clan.core.state.app.folders)"
        )));
    }
    let current = get(fleet, machine, option)?;
    if let Some(why) = &current.fixed_by {
        return Err(Error::Usage(format!("{}: {why}", current.option)));
    }
    let value: Value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()));
    check(&current.option, &value)?;
    let parts: Vec<&str> = current.option.split('.').collect();
    let mut message = format!("machines: set {machine} {}", current.option);
    if let Some(by) = by {
        message.push_str(&format!(" ({by})"));
    }
    match current.place {
        Place::Inventory => inventory::edit(
            &fleet.clan,
            &[Edit::SetMachine {
                machine: machine.to_string(),
                path: parts.iter().map(|p| p.to_string()).collect(),
                value: Some(value),
            }],
            &message,
        ),
        Place::MachineLayer => {
            let path = fleet.clan.dir.machine_json(machine);
            let mut layer = clan_core::inventory::read_json_object(&path)
                .map_err(clan_core::Error::from)?
                .unwrap_or_else(|| Value::Object(Map::new()));
            let mut at = &mut layer;
            let (last, parents) = parts.split_last().expect("a path");
            for p in parents {
                at = at
                    .as_object_mut()
                    .ok_or_else(|| {
                        Error::Usage(format!("{}: `{p}` is not an object", path.display()))
                    })?
                    .entry(p.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            at.as_object_mut()
                .ok_or_else(|| Error::Usage(format!("{}: not an object", path.display())))?
                .insert(last.to_string(), value);
            let candidate = fleet.clan.with_layers(clan_core::LayerEdit {
                machine_layer: Some((machine.to_string(), layer.clone())),
                ..Default::default()
            })?;
            candidate.resolve(&[])?;
            inventory::write(&fleet.clan, &[(path, layer)], &message)
        }
    }
}

/// `value` against the type of `option` (found by [`get`]).
fn check(option: &str, value: &Value) -> Result<()> {
    let parts: Vec<&str> = option.split('.').collect();
    let (inventory_options, core_options) = (machine_group(), clan_core_options());
    let decl = match parts.strip_prefix(&["clan", "core"]) {
        Some(rest) => find(&core_options, rest),
        None => find(&inventory_options, &parts),
    }
    .expect("found before");
    let schema = clan_core::schema::option_document(decl, option)
        .map_err(|e| Error::Usage(format!("{option} cannot be set from the command line: {e}")))?;
    let validator = Validator::new(&schema).expect("option schemas compile");
    let issues = validator.check_value(value, |_| Vec::new());
    match issues.first() {
        None => Ok(()),
        Some(issue) => Err(Error::Usage(format!(
            "{option} = {value}: {} (type {}{})",
            issue.message,
            decl.ty.nix_name(),
            decl.description
                .as_ref()
                .map(|d| format!("; {d}"))
                .unwrap_or_default()
        ))),
    }
}
