//! The inventory: meta, machines, tags and service instances, gathered from
//! clan.nix, inventory.json and machines/<name>/ directories, merged (see
//! `merge.rs`) and validated against the inventory schema.

mod legacy;
mod load;
pub mod settings;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::merge::{Definition, MergeError};
use crate::names::{InstanceName, MachineName};
use crate::options::build::*;
use crate::options::{Group, apply_defaults};
use crate::validate::{Issue, Validator};

pub use load::{LoadError, RawClan, read_inventory_json, read_json_object};
pub use settings::{Layer, SettingsLayers};

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("the inventory is invalid:\n{}", format_issues(.0))]
    Invalid(Vec<Issue>),
    #[error(transparent)]
    Merge(#[from] MergeError),
    #[error("{file}: {message}")]
    Json { file: String, message: String },
    #[error(
        "{file}: inventory.services is Clan's older format; clan reads inventory.instances \
         (module = {{ name; input; }}, roles.<role>.machines.<name> = {{ }}, settings instead of \
         config). The same configuration as instances:\n\n{instances}"
    )]
    OlderServices { file: String, instances: String },
    #[error("could not read {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
}

/// The refusal of `inventory.services`, with the instances it means written the
/// way its file is (Nix for clan.nix, JSON for inventory.json).
fn older_services(source: &str, services: &serde_json::Map<String, Value>) -> InventoryError {
    let modules: BTreeMap<String, crate::modules::ServiceModule> = crate::modules::builtins()
        .iter()
        .map(|b| b.module())
        .map(|m| (m.name.clone(), m))
        .collect();
    let has = |module: &str, role: &str, option: &str| {
        modules.get(module).is_none_or(|m| {
            m.roles
                .get(role)
                .is_none_or(|r| r.interface.contains_key(option))
        })
    };
    let instances = legacy::instances_of(services, has);
    let instances = if source.starts_with("inventory.json") {
        format!(
            "\"instances\": {}",
            serde_json::to_string_pretty(&instances).expect("JSON")
        )
    } else {
        format!("inventory.instances = {};", legacy::to_nix(&instances, 0))
    };
    InventoryError::OlderServices {
        file: source.to_string(),
        instances,
    }
}

pub(crate) fn format_issues(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| format!("  {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum MachineClass {
    #[default]
    Nixos,
    Darwin,
    /// Any Linux with systemd (e.g. Debian): state, secrets and backups, no NixOS.
    Linux,
}

impl MachineClass {
    pub const ALL: [MachineClass; 3] = [Self::Nixos, Self::Darwin, Self::Linux];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nixos => "nixos",
            Self::Darwin => "darwin",
            Self::Linux => "linux",
        }
    }
}

impl fmt::Display for MachineClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub name: String,
    pub domain: String,
    pub description: Option<String>,
    /// The nixpkgs NixOS machines are built with (a directory); `None`: `<nixpkgs>`.
    #[serde(default)]
    pub nixpkgs: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deploy {
    pub target_host: Option<String>,
    pub build_host: Option<String>,
}

/// A machine as the inventory declares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub name: MachineName,
    pub description: Option<String>,
    /// Every tag the machine carries: its own, `inventory.tags` memberships, and
    /// the builtin `all` and class tags. Sorted.
    pub tags: Vec<String>,
    pub deploy: Deploy,
    pub machine_class: MachineClass,
    pub installed_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModuleRef {
    pub name: String,
    pub input: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// Machines named explicitly (`roles.<r>.machines.<m>`).
    pub machines: Vec<String>,
    /// Machines whose entry says `enabled = false`: the service is off there (not
    /// a member) but stays listed, so an owner can turn it on again.
    pub disabled: Vec<String>,
    /// Tags whose machines join (`roles.<r>.tags.<t>`).
    pub tags: Vec<String>,
    /// `extraModules` were given (NixOS modules: clan does not apply them).
    pub extra_modules: bool,
    pub settings: SettingsLayers,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub name: String,
    pub module: ModuleRef,
    pub roles: BTreeMap<String, Role>,
}

/// The merged, validated inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    /// The merged inventory as JSON (defaults applied), and for each of its JSON
    /// pointers the sources that set it.
    pub merged: Value,
    pub provenance: BTreeMap<String, Vec<crate::merge::Source>>,
    pub meta: Meta,
    pub machines: BTreeMap<String, Machine>,
    pub instances: BTreeMap<String, Instance>,
}

pub const BUILTIN_TAG_ALL: &str = "all";

impl Inventory {
    /// Merges and validates the definitions of a clan's inventory.
    pub fn from_raw(raw: &RawClan) -> Result<Self, InventoryError> {
        let mut defs: Vec<Definition> = Vec::new();
        let mut layers = BTreeMap::new();
        for def in &raw.inventory {
            if let Some(services) = def.value.get("services").and_then(Value::as_object) {
                return Err(older_services(&def.source.0, services));
            }
            let mut def = def.clone();
            settings::take_settings(&def.source, &mut def.value, &mut layers);
            defs.push(def);
        }
        let merged = crate::merge::merge(&defs)?;
        let options = schema();
        let validator =
            Validator::new(&crate::schema::document(&options).expect("inventory schema is JSON"))
                .expect("inventory schema compiles");
        let issues = validator.check(&merged);
        if !issues.is_empty() {
            return Err(InventoryError::Invalid(issues));
        }
        let provenance = merged.provenance;
        let mut value = merged.value;
        apply_defaults(
            &options,
            value.as_object_mut().expect("validated as an object"),
        );
        let mut inventory = Self::from_value(value.clone(), &mut layers)?;
        inventory.merged = value;
        inventory.provenance = provenance;
        Ok(inventory)
    }

    fn from_value(
        value: Value,
        layers: &mut BTreeMap<(String, String), SettingsLayers>,
    ) -> Result<Self, InventoryError> {
        let raw: raw::Inventory =
            serde_json::from_value(value).map_err(|e| InventoryError::Json {
                file: "inventory".into(),
                message: e.to_string(),
            })?;
        let mut machines = BTreeMap::new();
        for (key, m) in raw.machines {
            let machine = Self::machine(&key, m, &raw.tags)?;
            machines.insert(key, machine);
        }
        let mut instances = BTreeMap::new();
        for (name, i) in raw.instances {
            let instance = Self::instance(name.clone(), i, layers)?;
            instances.insert(name, instance);
        }
        Ok(Self {
            merged: Value::Null,
            provenance: BTreeMap::new(),
            meta: raw.meta,
            machines,
            instances,
        })
    }

    /// A machine with every tag it carries: its own, `inventory.tags` memberships,
    /// `all` and its class.
    fn machine(
        key: &str,
        m: raw::Machine,
        inventory_tags: &BTreeMap<String, Vec<String>>,
    ) -> Result<Machine, InventoryError> {
        let name =
            MachineName::new(key).map_err(|e| invalid(format!("machines.{key}"), e.to_string()))?;
        if let Some(n) = &m.name
            && n != key
        {
            return Err(invalid(
                format!("machines.{key}.name"),
                format!("is {n:?} but the machine is named {key:?}"),
            ));
        }
        let mut tags: BTreeSet<String> = m.tags.into_iter().collect();
        tags.extend(
            inventory_tags
                .iter()
                .filter(|(_, members)| members.iter().any(|m| m == key))
                .map(|(t, _)| t.clone()),
        );
        tags.insert(BUILTIN_TAG_ALL.to_string());
        tags.insert(m.machine_class.as_str().to_string());
        Ok(Machine {
            name,
            description: m.description,
            tags: tags.into_iter().collect(),
            deploy: m.deploy,
            machine_class: m.machine_class,
            installed_at: m.installed_at,
        })
    }

    /// An instance with its roles' members and their settings layers.
    fn instance(
        name: String,
        i: raw::Instance,
        layers: &mut BTreeMap<(String, String), SettingsLayers>,
    ) -> Result<Instance, InventoryError> {
        InstanceName::new(&name)
            .map_err(|e| invalid(format!("instances.{name}"), e.to_string()))?;
        let roles = i
            .roles
            .into_iter()
            .map(|(role, r)| {
                let settings = layers
                    .remove(&(name.clone(), role.clone()))
                    .unwrap_or_default();
                (
                    role,
                    Role {
                        disabled: r
                            .machines
                            .iter()
                            .filter(|(_, v)| v.get("enabled") == Some(&Value::Bool(false)))
                            .map(|(m, _)| m.clone())
                            .collect(),
                        extra_modules: !r.extra_modules.is_empty(),
                        machines: r.machines.into_keys().collect(),
                        tags: r.tags.into_keys().collect(),
                        settings,
                    },
                )
            })
            .collect();
        let module = ModuleRef {
            name: i.module.name.unwrap_or_else(|| name.clone()),
            input: i.module.input,
        };
        Ok(Instance {
            name,
            module,
            roles,
        })
    }

    /// Machines that carry every one of `tags`.
    pub fn machines_with_tags<'a>(
        &'a self,
        tags: &'a [String],
    ) -> impl Iterator<Item = &'a Machine> + 'a {
        self.machines
            .values()
            .filter(move |m| tags.iter().all(|t| m.tags.contains(t)))
    }

    /// Every tag some machine carries.
    pub fn known_tags(&self) -> BTreeSet<&str> {
        self.machines
            .values()
            .flat_map(|m| m.tags.iter().map(String::as_str))
            .collect()
    }
}

/// The schema every inventory source is checked against (after merging).
fn invalid(path: String, message: String) -> InventoryError {
    InventoryError::Invalid(vec![Issue {
        path,
        message,
        sources: vec![],
    }])
}

/// The merged inventory as JSON reads, before names are checked and tags added.
mod raw {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::Value;

    use super::{Deploy, MachineClass, Meta};

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Machine {
        pub name: Option<String>,
        pub description: Option<String>,
        pub tags: Vec<String>,
        pub deploy: Deploy,
        pub machine_class: MachineClass,
        pub installed_at: Option<i64>,
    }

    #[derive(Deserialize)]
    pub struct ModuleRef {
        pub name: Option<String>,
        pub input: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Role {
        pub machines: BTreeMap<String, Value>,
        pub tags: BTreeMap<String, Value>,
        #[serde(default)]
        pub extra_modules: Vec<Value>,
    }

    #[derive(Deserialize)]
    pub struct Instance {
        pub module: ModuleRef,
        pub roles: BTreeMap<String, Role>,
    }

    #[derive(Deserialize)]
    pub struct Inventory {
        pub meta: Meta,
        pub machines: BTreeMap<String, Machine>,
        pub instances: BTreeMap<String, Instance>,
        pub tags: BTreeMap<String, Vec<String>>,
    }
}

pub fn schema() -> Group {
    let nullable_str = || opt(null_or(str())).default(Value::Null).node();
    let empty = || submodule(Group::new());
    group([
        (
            "meta",
            nested([
                (
                    "name",
                    opt(matching("[a-zA-Z0-9_-]+"))
                        .desc("The clan's name; unique among the clans you manage.")
                        .node(),
                ),
                (
                    "domain",
                    opt(matching(DOMAIN_PATTERN))
                        .default("clan")
                        .desc("Machines are reached as <name>.<domain> by default.")
                        .node(),
                ),
                ("description", nullable_str()),
                ("icon", nullable_str()),
                (
                    "nixpkgs",
                    opt(null_or(str()))
                        .default(Value::Null)
                        .desc(
                            "The nixpkgs that builds NixOS machines (a directory, relative to \
                             the clan or absolute); null: <nixpkgs> from NIX_PATH",
                        )
                        .node(),
                ),
            ]),
        ),
        (
            "machines",
            opt(named_attrs_of(
                MACHINE_NAME_PATTERN,
                submodule(group([
                    ("name", nullable_str()),
                    ("description", nullable_str()),
                    ("icon", nullable_str()),
                    ("tags", opt(list_of(str())).default(json!([])).node()),
                    (
                        "deploy",
                        nested([
                            (
                                "targetHost",
                                opt(null_or(str()))
                                    .default(Value::Null)
                                    .desc("[user@]host[:port] to deploy to")
                                    .node(),
                            ),
                            ("buildHost", nullable_str()),
                            (
                                "forwardAgent",
                                opt(null_or(bool())).default(Value::Null).node(),
                            ),
                        ]),
                    ),
                    (
                        "machineClass",
                        opt(enum_of(&["nixos", "darwin", "linux"]))
                            .default("nixos")
                            .desc("linux: any systemd Linux, e.g. Debian")
                            .node(),
                    ),
                    (
                        "installedAt",
                        opt(null_or(int())).default(Value::Null).node(),
                    ),
                ])),
            ))
            .default(json!({}))
            .node(),
        ),
        (
            "instances",
            opt(attrs_of(submodule(group([
                (
                    "module",
                    nested([("name", nullable_str()), ("input", nullable_str())]),
                ),
                (
                    "roles",
                    opt(attrs_of(submodule(group([
                        (
                            "machines",
                            opt(attrs_of(submodule(group([(
                                "enabled",
                                opt(bool())
                                    .default(true)
                                    .desc("false: the service is off on this machine (still listed, to turn on again)")
                                    .node(),
                            )]))))
                            .default(json!({}))
                            .node(),
                        ),
                        ("tags", opt(attrs_of(empty())).default(json!({})).node()),
                        (
                            "extraModules",
                            opt(list_of(anything())).default(json!([])).node(),
                        ),
                    ]))))
                    .default(json!({}))
                    .node(),
                ),
            ]))))
            .default(json!({}))
            .node(),
        ),
        (
            "tags",
            opt(attrs_of(list_of(str()))).default(json!({})).node(),
        ),
    ])
}

pub const MACHINE_NAME_PATTERN: &str = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?";
pub const DOMAIN_PATTERN: &str =
    "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*";

/// Writes JSON the way people read it (two-space indent, final newline), atomically.
pub fn write_json(path: &Path, value: &Value) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON serialises");
    text.push('\n');
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(tmp.path(), text)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
