//! From a clan directory to each machine's resolved configuration:
//!
//! 1. read the sources (clan.nix through Nix, inventory.json, machines/),
//! 2. merge and validate the inventory,
//! 3. resolve instances: module, roles, members (machines and tags),
//! 4. merge every member's settings (role-wide, tags, machine) and validate them
//!    against the role's schema — for every instance, before any command acts,
//! 5. collect each selected machine's configuration definitions: its modules in
//!    clan.nix and machines/<m>/configuration.nix, and what every module
//!    contributes per instance (built-ins in Rust, the clan's own modules in Nix),
//! 6. merge them, validate `clan.core` and type it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::ClanDir;
use crate::error::{Error, Result};
use crate::inventory::{Deploy, Inventory, MachineClass, RawClan};
use crate::machine::{ClanCore, clan_core_options};
use crate::merge::{Definition, merge};
use crate::modules::{InstanceContext, Origin, Registry, builtin};
use crate::names::{MachineName, did_you_mean};
use crate::nix::{Nix, Query};
use crate::options::apply_defaults;
use crate::services::MachineService;
use crate::validate::Validator;

/// A loaded clan: its inventory merged and validated, its modules known.
pub struct Clan {
    pub dir: ClanDir,
    pub inventory: Inventory,
    pub registry: Registry,
    raw: RawClan,
    nix: Nix,
}

/// Each backup provider of a machine as its kind takes it, and its schedule a
/// systemd calendar expression; errors name the provider and where it was set.
fn check_providers(machine: &str, core: &Value, merged: &crate::merge::Merged) -> Result<()> {
    let providers = core["backups"]["providers"]
        .as_object()
        .into_iter()
        .flatten();
    for (name, value) in providers {
        let at = format!("clan.core.backups.providers.{name}");
        let set_in = || {
            let sources = merged.sources_at(&format!(
                "/clan/core/backups/providers/{}",
                name.replace('~', "~0").replace('/', "~1")
            ));
            sources
                .iter()
                .map(|s| s.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let invalid = |message: String| {
            Error::Invalid(format!(
                "machine '{machine}': {at}: {message} (set in {})",
                set_in()
            ))
        };
        let config: crate::providers::ProviderConfig =
            serde_json::from_value(value.clone()).map_err(|e| invalid(e.to_string()))?;
        if let Some(at_time) = config.start_at() {
            crate::calendar::check(at_time).map_err(|e| invalid(format!("startAt: {e}")))?;
        }
        if let Some(at_time) = config.drill_at() {
            crate::calendar::check(at_time).map_err(|e| invalid(format!("drillAt: {e}")))?;
        }
    }
    Ok(())
}

/// A change to a clan's files, for [`Clan::with_layers`].
#[derive(Debug, Clone, Default)]
pub struct LayerEdit {
    /// The new content of inventory.json.
    pub inventory_json: Option<Value>,
    /// A machine's new JSON layer.
    pub machine_layer: Option<(String, Value)>,
    /// A machine whose directory is removed.
    pub deleted_machine: Option<String>,
}

/// One role a machine has in one instance, with its final settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleAssignment {
    pub instance: String,
    pub module: String,
    pub role: String,
    pub settings: Value,
}

/// Everything clan knows about one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedMachine {
    pub name: MachineName,
    pub description: Option<String>,
    pub machine_class: MachineClass,
    pub tags: Vec<String>,
    pub deploy: Deploy,
    pub instances: Vec<RoleAssignment>,
    pub clan_core: ClanCore,
    /// The clan's domain (`meta.domain`).
    #[serde(default)]
    pub domain: String,
    /// The services an owner sees on this machine.
    #[serde(default)]
    pub services: Vec<MachineService>,
    /// Other (NixOS) settings, as data.
    pub other: Value,
    /// Where the configuration came from, in order.
    pub sources: Vec<String>,
    /// For each JSON pointer of the configuration (`/clan/core/...`), the sources
    /// that set it. Not sent to machines.
    #[serde(skip)]
    pub provenance: BTreeMap<String, Vec<String>>,
    /// The arguments with which the Nix glue gives this machine's modules (query
    /// `nixos`): what a NixOS machine's system is built from. Not sent to machines.
    #[serde(skip)]
    pub nixos_args: Value,
}

#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub machines: BTreeMap<String, ResolvedMachine>,
    pub warnings: Vec<String>,
}

/// What the instances give the machines being resolved.
#[derive(Default)]
struct Contributions {
    assignments: BTreeMap<String, Vec<RoleAssignment>>,
    /// Definitions of the built-in modules, by machine.
    builtin: BTreeMap<String, Vec<Definition>>,
    /// perInstance calls of the clan's own modules, for the Nix glue.
    nix_calls: Vec<Value>,
}

/// Members and settings of every instance: instance -> role -> machine -> settings.
type Memberships = BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>>;
/// Per machine, the (instance, module, role) it would hold but is disabled in.
type Disabled = BTreeMap<String, Vec<(String, String, String)>>;

impl Clan {
    pub fn open(dir: ClanDir) -> Result<Self> {
        let nix = Nix::new();
        let raw = RawClan::load(&dir, &nix)?;
        let inventory = Inventory::from_raw(&raw)?;
        let registry = Registry::new(&raw.user_modules)?;
        Ok(Self {
            dir,
            inventory,
            registry,
            raw,
            nix,
        })
    }

    /// This clan as it would be after `edit`: the inventory merged and validated
    /// again, so that an edit is checked (then resolved) before anything is written.
    pub fn with_layers(&self, edit: LayerEdit) -> Result<Clan> {
        let mut raw = self.raw.clone();
        if let Some(json) = edit.inventory_json {
            let def = Definition::new(crate::clan_dir::INVENTORY_JSON, json);
            match raw
                .inventory
                .iter()
                .position(|d| d.source.0 == crate::clan_dir::INVENTORY_JSON)
            {
                Some(i) => raw.inventory[i] = def,
                None => {
                    let at = raw
                        .inventory
                        .iter()
                        .position(|d| d.source.0.starts_with("machines/"))
                        .unwrap_or(raw.inventory.len());
                    raw.inventory.insert(at, def);
                }
            }
        }
        if let Some((machine, value)) = edit.machine_layer {
            raw.machine_layers.insert(machine, value);
        }
        if let Some(machine) = edit.deleted_machine {
            let dir = format!("machines/{machine}/");
            raw.inventory.retain(|d| d.source.0 != dir);
            raw.machine_layers.remove(&machine);
        }
        let inventory = Inventory::from_raw(&raw)?;
        let registry = Registry::new(&raw.user_modules)?;
        Ok(Self {
            dir: self.dir.clone(),
            inventory,
            registry,
            raw,
            nix: Nix::new(),
        })
    }

    /// The machine named `name`, or an error with suggestions.
    pub fn machine(&self, name: &str) -> Result<&crate::inventory::Machine> {
        self.inventory
            .machines
            .get(name)
            .ok_or_else(|| Error::UnknownMachine {
                name: name.to_string(),
                suggestions: did_you_mean(name, self.inventory.machines.keys().map(String::as_str))
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            })
    }

    /// Resolves the given machines (all when empty). Every instance is checked, not
    /// only those of the selected machines.
    pub fn resolve(&self, selected: &[String]) -> Result<Resolution> {
        let mut warnings = Vec::new();
        let (memberships, mut disabled) = self.memberships(&mut warnings)?;
        let names: Vec<String> = if selected.is_empty() {
            self.inventory.machines.keys().cloned().collect()
        } else {
            selected.to_vec()
        };
        for n in &names {
            self.machine(n)?;
        }
        let mut contributions = self.contributions(&memberships, &names);
        let mut assignments = std::mem::take(&mut contributions.assignments);
        let mut nixos_args = self.nixos_args(&memberships, &names, &contributions);
        let mut definitions = self.definitions(&memberships, &names, contributions)?;

        let core_options = clan_core_options();
        let core_validator = Validator::new(
            &crate::schema::document(&core_options).expect("clan.core schema is JSON"),
        )
        .expect("clan.core schema compiles");
        let mut machines = BTreeMap::new();
        for n in names {
            let defs = definitions.remove(&n).unwrap_or_default();
            let resolved = self.machine_config(
                &n,
                defs,
                assignments.remove(&n).unwrap_or_default(),
                disabled.remove(&n).unwrap_or_default(),
                &core_options,
                &core_validator,
            )?;
            let resolved = ResolvedMachine {
                nixos_args: nixos_args.remove(&n).unwrap_or_default(),
                ..resolved
            };
            machines.insert(n, resolved);
        }
        Ok(Resolution { machines, warnings })
    }

    /// What each instance gives the selected machines: their roles, the built-in
    /// modules' definitions, and the calls of the clan's own modules for Nix.
    fn contributions(&self, memberships: &Memberships, names: &[String]) -> Contributions {
        let mut c = Contributions::default();
        for (instance_name, roles) in memberships {
            let instance = &self.inventory.instances[instance_name];
            let module = self
                .registry
                .lookup(&instance.module.name, instance.module.input.as_deref())
                .expect("checked");
            for (role, members) in roles {
                for (machine, settings) in members {
                    if !names.contains(machine) {
                        continue;
                    }
                    c.assignments
                        .entry(machine.clone())
                        .or_default()
                        .push(RoleAssignment {
                            instance: instance_name.clone(),
                            module: module.name.clone(),
                            role: role.clone(),
                            settings: settings.clone(),
                        });
                    let machine_roles: Vec<String> = roles
                        .iter()
                        .filter(|(_, m)| m.contains_key(machine))
                        .map(|(r, _)| r.clone())
                        .collect();
                    let ctx = InstanceContext {
                        instance_name,
                        role,
                        machine,
                        machine_roles,
                        settings,
                        roles,
                        meta: &self.inventory.meta,
                    };
                    match &module.origin {
                        Origin::Builtin => {
                            let value = builtin(&module.name)
                                .expect("registered")
                                .per_instance(&ctx);
                            c.builtin.entry(machine.clone()).or_default().push(Definition::new(
                                format!("module '{}' (built-in), instance '{instance_name}', role '{role}'", module.name),
                                value,
                            ));
                        }
                        Origin::User { .. } if module.roles[role].per_instance => {
                            let mut call = serde_json::to_value(&ctx).expect("serialises");
                            call["module"] = json!(module.name);
                            call["roles"] = roles_arg(roles);
                            c.nix_calls.push(call);
                        }
                        Origin::User { .. } => {}
                    }
                }
            }
        }
        c
    }

    /// Every definition of each selected machine's configuration: the built-in
    /// modules', then (one Nix evaluation, when anything needs Nix) clan.nix's
    /// `machines.<m>`, `machines/<m>/configuration.nix` and the clan's own modules',
    /// and last the machine's JSON layer.
    fn definitions(
        &self,
        memberships: &Memberships,
        names: &[String],
        c: Contributions,
    ) -> Result<BTreeMap<String, Vec<Definition>>> {
        let per_machine_calls = self.per_machine_calls(memberships, names);
        let needs_nix = !c.nix_calls.is_empty()
            || !per_machine_calls.is_empty()
            || names.iter().any(|n| {
                self.raw.machine_modules.contains(n)
                    || self
                        .dir
                        .machines_dir()
                        .join(n)
                        .join("configuration.nix")
                        .is_file()
            });
        let mut definitions: BTreeMap<String, Vec<Definition>> = BTreeMap::new();
        if needs_nix {
            let extra: Map<String, Value> = c
                .builtin
                .iter()
                .map(|(m, defs)| {
                    (
                        m.clone(),
                        defs.iter()
                            .map(|d| json!({"source": d.source.0, "value": d.value}))
                            .collect(),
                    )
                })
                .collect();
            let args = json!({ "machines": names, "perInstance": c.nix_calls, "perMachine": per_machine_calls, "extraDefinitions": extra });
            let needed_by = self.dir.clan_nix();
            let answer =
                self.nix
                    .eval(self.dir.root(), Query::Machines, Some(&args), &needed_by)?;
            for n in names {
                let defs = answer[n.as_str()]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| {
                        Definition::new(d["source"].as_str().unwrap_or("?"), d["value"].clone())
                    })
                    .collect();
                definitions.insert(n.clone(), defs);
            }
        } else {
            definitions = c.builtin;
        }
        for n in names {
            if let Some(layer) = self.raw.machine_layers.get(n) {
                definitions
                    .entry(n.clone())
                    .or_default()
                    .push(Definition::new(
                        format!("machines/{n}/{}", crate::clan_dir::MACHINE_JSON),
                        layer.clone(),
                    ));
            }
        }
        Ok(definitions)
    }

    /// For each machine, what the glue's `nixos` query needs: its modules' calls
    /// and its definitions that are data (built-in modules, the JSON layer).
    fn nixos_args(
        &self,
        memberships: &Memberships,
        names: &[String],
        c: &Contributions,
    ) -> BTreeMap<String, Value> {
        let per_machine = self.per_machine_calls(memberships, names);
        let of = |calls: &[Value], n: &str| -> Vec<Value> {
            calls
                .iter()
                .filter(|c| c["machine"] == json!(n))
                .cloned()
                .collect()
        };
        names
            .iter()
            .map(|n| {
                let mut data: Vec<Value> = c
                    .builtin
                    .get(n)
                    .into_iter()
                    .flatten()
                    .map(|d| json!({"source": d.source.0, "value": d.value}))
                    .collect();
                if let Some(layer) = self.raw.machine_layers.get(n) {
                    data.push(json!({
                        "source": format!("machines/{n}/{}", crate::clan_dir::MACHINE_JSON),
                        "value": layer,
                    }));
                }
                let args = json!({
                    "machines": [n],
                    "perInstance": of(&c.nix_calls, n),
                    "perMachine": of(&per_machine, n),
                    "extraDefinitions": { n.as_str(): data },
                });
                (n.clone(), args)
            })
            .collect()
    }

    fn machine_config(
        &self,
        name: &str,
        defs: Vec<Definition>,
        instances: Vec<RoleAssignment>,
        disabled: Vec<(String, String, String)>,
        core_options: &crate::options::Group,
        core_validator: &Validator,
    ) -> Result<ResolvedMachine> {
        let sources = defs.iter().map(|d| d.source.0.clone()).collect();
        let merged = merge(&defs)?;
        let mut other = merged.value.clone();
        let mut core = other
            .get_mut("clan")
            .and_then(Value::as_object_mut)
            .and_then(|c| c.remove("core"))
            .unwrap_or_else(|| json!({}));
        if other
            .get("clan")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            other.as_object_mut().expect("object").remove("clan");
        }
        if let Some(obj) = core.as_object_mut() {
            apply_defaults(core_options, obj);
        }
        let issues =
            core_validator.check_value(&core, |p| merged.sources_at(&format!("/clan/core{p}")));
        if !issues.is_empty() {
            let issues = issues.into_iter().map(|mut i| {
                i.path =
                    format!("clan.core.{}", i.path).replace("clan.core.(top level)", "clan.core");
                i
            });
            return Err(Error::InvalidMachineConfig {
                machine: name.to_string(),
                issues: issues.collect(),
            });
        }
        check_providers(name, &core, &merged)?;
        let clan_core: ClanCore = serde_json::from_value(core)
            .map_err(|e| Error::Invalid(format!("machine '{name}': clan.core: {e}")))?;
        let m = &self.inventory.machines[name];
        let provenance: BTreeMap<String, Vec<String>> = merged
            .provenance
            .iter()
            .map(|(p, s)| (p.clone(), s.iter().map(|s| s.0.clone()).collect()))
            .collect();
        let services =
            MachineService::of_machine(&instances, &disabled, &clan_core, &provenance, |i| {
                let instance = self.inventory.instances.get(i)?;
                let module = self
                    .registry
                    .lookup(&instance.module.name, instance.module.input.as_deref())?;
                let mut meta = module.manifest.service.clone();
                meta.description
                    .get_or_insert_with(|| module.manifest.description.clone());
                let interfaces = module
                    .roles
                    .iter()
                    .map(|(r, info)| (r.clone(), info.interface.clone()))
                    .collect();
                Some((meta, interfaces))
            });
        let deploy = deploy_of(name, &m.deploy, &clan_core.networking, &provenance)?;
        Ok(ResolvedMachine {
            name: m.name.clone(),
            description: m.description.clone(),
            machine_class: m.machine_class,
            tags: m.tags.clone(),
            deploy,
            instances,
            clan_core,
            domain: self.inventory.meta.domain.clone(),
            services,
            other,
            sources,
            provenance,
            nixos_args: Value::Null,
        })
    }

    fn per_machine_calls(&self, memberships: &Memberships, names: &[String]) -> Vec<Value> {
        let mut calls = Vec::new();
        for module in self.registry.user.values() {
            let Origin::User {
                per_machine: true, ..
            } = module.origin
            else {
                continue;
            };
            for machine in names {
                let mut instances = Map::new();
                let mut roles = BTreeSet::new();
                for (inst_name, inst_roles) in memberships {
                    let inst = &self.inventory.instances[inst_name];
                    if self
                        .registry
                        .lookup(&inst.module.name, inst.module.input.as_deref())
                        .map(|m| &m.name)
                        != Some(&module.name)
                    {
                        continue;
                    }
                    if !inst_roles.values().any(|m| m.contains_key(machine)) {
                        continue;
                    }
                    let r: Map<String, Value> = inst_roles
                        .iter()
                        .map(|(role, members)| {
                            if members.contains_key(machine) {
                                roles.insert(role.clone());
                            }
                            let machines: Map<String, Value> = members
                                .iter()
                                .map(|(m, s)| (m.clone(), json!({ "settings": s })))
                                .collect();
                            (role.clone(), json!({ "machines": machines }))
                        })
                        .collect();
                    instances.insert(inst_name.clone(), json!({ "roles": r }));
                }
                if !instances.is_empty() {
                    calls.push(json!({ "module": module.name, "machine": machine, "machineRoles": roles, "instances": instances }));
                }
            }
        }
        calls
    }

    /// Resolves every instance's members and their final, validated settings.
    fn memberships(&self, warnings: &mut Vec<String>) -> Result<(Memberships, Disabled)> {
        let inv = &self.inventory;
        let mut out = Memberships::new();
        let mut disabled = Disabled::new();
        for (name, instance) in &inv.instances {
            let module = self
                .registry
                .lookup(&instance.module.name, instance.module.input.as_deref())
                .ok_or_else(|| Error::UnknownModule {
                    instance: name.clone(),
                    module: instance.module.name.clone(),
                    input: instance.module.input.clone(),
                    available: self.registry.names(),
                })?;
            let mut roles = BTreeMap::new();
            for (role_name, role) in &instance.roles {
                let Some(role_info) = module.roles.get(role_name) else {
                    return Err(Error::UnknownRole {
                        instance: name.clone(),
                        module: module.name.clone(),
                        role: role_name.clone(),
                        available: module.roles.keys().cloned().collect(),
                    });
                };
                let mut members = BTreeSet::new();
                for m in &role.machines {
                    if !inv.machines.contains_key(m) {
                        return Err(Error::UndefinedMachine {
                            instance: name.clone(),
                            role: role_name.clone(),
                            machine: m.clone(),
                            suggestions: did_you_mean(m, inv.machines.keys().map(String::as_str))
                                .into_iter()
                                .map(str::to_string)
                                .collect(),
                        });
                    }
                    members.insert(m.clone());
                }
                for tag in &role.tags {
                    let tagged: Vec<String> = inv
                        .machines
                        .values()
                        .filter(|m| m.tags.contains(tag))
                        .map(|m| m.name.to_string())
                        .collect();
                    if tagged.is_empty() {
                        let known: Vec<&str> = inv.known_tags().into_iter().collect();
                        warnings.push(format!(
                            "instance '{name}', role '{role_name}': no machine has tag '{tag}'. Known tags: {}",
                            known.join(", ")
                        ));
                    }
                    members.extend(tagged);
                }
                if role.extra_modules {
                    warnings.push(format!(
                        "instance '{name}', role '{role_name}': extraModules are NixOS modules, \
                         which clan does not apply; its machines get the service's own \
                         configuration only"
                    ));
                }
                for m in &role.disabled {
                    if members.remove(m) {
                        disabled.entry(m.clone()).or_default().push((
                            name.clone(),
                            module.name.clone(),
                            role_name.clone(),
                        ));
                    }
                }
                let schema = crate::schema::document(&role_info.interface).map_err(|source| {
                    Error::Schema {
                        module: module.name.clone(),
                        role: role_name.clone(),
                        source,
                    }
                })?;
                let validator = Validator::new(&schema).map_err(|e| {
                    Error::Invalid(format!("module '{}', role '{role_name}': {e}", module.name))
                })?;
                let mut settings_of = BTreeMap::new();
                for m in members {
                    let tags = &inv.machines[&m].tags;
                    let merged = merge(&role.settings.for_machine(&m, tags))?;
                    let mut value = merged.value.clone();
                    if let Some(obj) = value.as_object_mut() {
                        apply_defaults(&role_info.interface, obj);
                    }
                    let issues = validator.check_value(&value, |p| merged.sources_at(p));
                    if !issues.is_empty() {
                        return Err(Error::InvalidSettings {
                            instance: name.clone(),
                            module: module.name.clone(),
                            role: role_name.clone(),
                            machine: m,
                            issues,
                        });
                    }
                    if let Some((setting, reason)) =
                        crate::options::unsupported_setting(&role_info.interface, &value)
                    {
                        return Err(Error::UnsupportedSetting {
                            place: format!("instance '{name}', role '{role_name}', machine '{m}'"),
                            setting: format!("{setting} of module '{}'", module.name),
                            reason,
                        });
                    }
                    settings_of.insert(m, value);
                }
                roles.insert(role_name.clone(), settings_of);
            }
            out.insert(name.clone(), roles);
        }
        Ok((out, disabled))
    }
}

/// The inventory's `deploy`, with Clan's `clan.core.networking.{targetHost,
/// buildHost}` from the machine's configuration filling what it leaves out; two
/// different values are an error naming both places.
fn deploy_of(
    machine: &str,
    inventory: &crate::inventory::Deploy,
    networking: &crate::machine::Networking,
    provenance: &BTreeMap<String, Vec<String>>,
) -> Result<crate::inventory::Deploy> {
    let pick = |ours: &Option<String>, clans: &Option<String>, name: &str| match (ours, clans) {
        (Some(a), Some(b)) if a != b => Err(Error::Invalid(format!(
            "machine '{machine}': deploy.{name} is {a:?} in the inventory but \
             clan.core.networking.{name} is {b:?} (in {}); set one of them",
            provenance
                .get(&format!("/clan/core/networking/{name}"))
                .map(|s| s.join(", "))
                .unwrap_or_else(|| "the machine's configuration".into())
        ))),
        (Some(a), _) => Ok(Some(a.clone())),
        (None, b) => Ok(b.clone()),
    };
    Ok(crate::inventory::Deploy {
        target_host: pick(
            &inventory.target_host,
            &networking.target_host,
            "targetHost",
        )?,
        build_host: pick(&inventory.build_host, &networking.build_host, "buildHost")?,
    })
}

/// `roles` as Nix modules see it: `roles.<role>.machines.<machine>.settings`.
fn roles_arg(roles: &BTreeMap<String, BTreeMap<String, Value>>) -> Value {
    roles
        .iter()
        .map(|(role, members)| {
            let machines: Map<String, Value> = members
                .iter()
                .map(|(m, s)| (m.clone(), json!({ "settings": s })))
                .collect();
            (role.clone(), json!({ "machines": machines }))
        })
        .collect::<Map<String, Value>>()
        .into()
}
