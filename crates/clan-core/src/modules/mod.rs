//! Service modules (`clan.service`): built-in ones, compiled into clan, and user
//! ones from `modules/<name>/default.nix` (or `modules.<name>` in clan.nix).
//! Both describe roles with a settings interface; a module contributes machine
//! configuration per instance and role.

pub mod agent;
pub mod borgbackup;
mod hello_world;
mod localbackup;
mod restic;
mod sshd;
mod users;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::inventory::Meta;
use crate::options::{Group, IrError, group_from_ir};
use crate::schema::SchemaError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    pub name: String,
    pub description: String,
    pub categories: Vec<String>,
    pub readme: String,
    /// What an owner-facing frontend shows of the service.
    pub service: ServiceMeta,
}

/// A module's description for people who manage services in an app (SelfPrivacy's
/// module metadata): unset fields take the documented defaults where they are read.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceMeta {
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// SVG text (the API sends it base64-encoded).
    pub svg_icon: Option<String>,
    pub license: Vec<License>,
    pub homepage: Option<String>,
    pub source_page: Option<String>,
    /// normal, experimental, deprecated, community or unknown.
    pub support_level: Option<String>,
    pub is_required: Option<bool>,
    pub is_movable: Option<bool>,
    pub is_system_service: Option<bool>,
    pub can_be_backed_up: Option<bool>,
    pub backup_description: Option<String>,
}

/// A license as nixpkgs' `lib.licenses` describes one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct License {
    pub short_name: String,
    pub full_name: String,
    pub spdx_id: Option<String>,
    pub url: Option<String>,
    pub free: bool,
    pub redistributable: bool,
    pub deprecated: bool,
}

impl License {
    /// An open-source license by its SPDX id.
    pub fn spdx(id: &str, full_name: &str) -> Self {
        Self {
            short_name: id.to_lowercase(),
            full_name: full_name.into(),
            spdx_id: Some(id.into()),
            url: Some(format!("https://spdx.org/licenses/{id}.html")),
            free: true,
            redistributable: true,
            deprecated: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoleInfo {
    pub description: Option<String>,
    pub interface: Group,
    /// Whether the role contributes machine configuration.
    pub per_instance: bool,
}

/// Where a module comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    Builtin,
    /// A Nix module in the clan; its perInstance/perMachine run in Nix.
    User {
        file: PathBuf,
        per_machine: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceModule {
    pub name: String,
    pub manifest: Manifest,
    pub roles: BTreeMap<String, RoleInfo>,
    pub origin: Origin,
}

impl ServiceModule {
    /// The JSON Schema of a role's settings.
    pub fn role_schema(&self, role: &str) -> Result<Value, SchemaError> {
        crate::schema::document(&self.roles[role].interface)
    }

    pub fn is_builtin(&self) -> bool {
        self.origin == Origin::Builtin
    }
}

/// What a module sees when it contributes to one machine for one role of one instance.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceContext<'a> {
    pub instance_name: &'a str,
    pub role: &'a str,
    pub machine: &'a str,
    /// Every role this machine has in this instance.
    pub machine_roles: Vec<String>,
    /// This machine's final settings for `role`.
    pub settings: &'a Value,
    /// role -> machine -> final settings, for every member of the instance.
    pub roles: &'a BTreeMap<String, BTreeMap<String, Value>>,
    #[serde(skip)]
    pub meta: &'a Meta,
}

impl InstanceContext<'_> {
    pub fn members(&self, role: &str) -> impl Iterator<Item = (&String, &Value)> {
        self.roles.get(role).into_iter().flatten()
    }
}

/// A module compiled into clan.
pub trait Builtin: Sync {
    fn module(&self) -> ServiceModule;
    /// Machine configuration (an attribute set like a NixOS module's `config`).
    fn per_instance(&self, ctx: &InstanceContext<'_>) -> Value;
}

pub(crate) fn builtins() -> [&'static dyn Builtin; 7] {
    [
        &agent::Agent,
        &hello_world::HelloWorld,
        &borgbackup::Borgbackup,
        &restic::Restic,
        &localbackup::Localbackup,
        &users::Users,
        &sshd::Sshd,
    ]
}

/// Where a machine finds its deployed secret vars.
pub fn secret_path(generator: &str, file: &str) -> String {
    format!("/var/lib/clan/secrets/vars/{generator}/{file}")
}

/// The built-in module named `name`, with its contribution function.
pub fn builtin(name: &str) -> Option<&'static dyn Builtin> {
    builtins().into_iter().find(|b| b.module().name == name)
}

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("module '{module}' ({file}): {source}")]
    Interface {
        module: String,
        file: String,
        source: IrError,
    },
    #[error("module '{module}' ({file}): {message}")]
    Malformed {
        module: String,
        file: String,
        message: String,
    },
}

/// `module.input` values that name the built-in modules (Clan's names for its own
/// services' flake input).
pub const BUILTIN_INPUTS: [&str; 2] = ["clan-core", "clan"];

/// What `module.input` may say, for error messages.
pub const KNOWN_INPUTS: &str = "none (a built-in, else modules/<name>), \"self\" (modules/<name>), \"clan-core\" or \"clan\" (the built-ins)";

/// All modules a clan can use: built-ins, then the clan's own.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub builtin: BTreeMap<String, ServiceModule>,
    pub user: BTreeMap<String, ServiceModule>,
}

impl Registry {
    pub fn new(user_modules: &BTreeMap<String, Value>) -> Result<Self, ModuleError> {
        let builtin = builtins()
            .iter()
            .map(|b| b.module())
            .map(|m| (m.name.clone(), m))
            .collect();
        let user = user_modules
            .iter()
            .map(|(name, info)| user_module(name, info).map(|m| (name.clone(), m)))
            .collect::<Result<_, _>>()?;
        Ok(Self { builtin, user })
    }

    /// Looks a module up the way an instance names it: `input = null` is a built-in
    /// (or, when no built-in has the name, the clan's own); `input = "self"` is the
    /// clan's own; `"clan-core"` and `"clan"` (the flake input that holds Clan's
    /// services, whose counterparts are our built-ins) are the built-ins.
    pub fn lookup(&self, name: &str, input: Option<&str>) -> Option<&ServiceModule> {
        match input {
            None => self.builtin.get(name).or_else(|| self.user.get(name)),
            Some("self") => self.user.get(name),
            Some(i) if BUILTIN_INPUTS.contains(&i) => self.builtin.get(name),
            Some(_) => None,
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &ServiceModule> {
        self.builtin.values().chain(self.user.values())
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .builtin
            .keys()
            .map(|n| format!("{n} (built-in)"))
            .collect();
        names.extend(self.user.keys().map(|n| format!("{n} (modules/{n})")));
        names
    }
}

fn user_module(name: &str, info: &Value) -> Result<ServiceModule, ModuleError> {
    let file = info["file"].as_str().unwrap_or_default().to_string();
    let malformed = |message: String| ModuleError::Malformed {
        module: name.to_string(),
        file: file.clone(),
        message,
    };
    if let Some(class) = info["class"].as_str()
        && class != "clan.service"
    {
        return Err(malformed(format!(
            "_class is {class:?}, expected \"clan.service\""
        )));
    }
    let manifest = &info["manifest"];
    let text = |k: &str| manifest.get(k).and_then(Value::as_str).map(str::to_string);
    let manifest = Manifest {
        name: text("name").ok_or_else(|| malformed("manifest.name is missing".into()))?,
        description: text("description").unwrap_or_else(|| "No description".into()),
        categories: manifest
            .get("categories")
            .and_then(Value::as_array)
            .map(|c| {
                c.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_else(|| vec!["Uncategorized".into()]),
        readme: text("readme").unwrap_or_default(),
        service: serde_json::from_value(manifest.clone())
            .map_err(|e| malformed(format!("manifest: {e}")))?,
    };
    let mut roles = BTreeMap::new();
    for (role, r) in info["roles"].as_object().into_iter().flatten() {
        let interface =
            group_from_ir(&r["interface"], "").map_err(|source| ModuleError::Interface {
                module: name.to_string(),
                file: file.clone(),
                source: IrError {
                    path: format!("roles.{role}.interface.{}", source.path),
                    message: source.message,
                },
            })?;
        roles.insert(
            role.clone(),
            RoleInfo {
                description: r["description"].as_str().map(str::to_string),
                interface,
                per_instance: r["perInstance"].as_bool().unwrap_or(false),
            },
        );
    }
    Ok(ServiceModule {
        name: name.to_string(),
        manifest,
        roles,
        origin: Origin::User {
            file: PathBuf::from(&file),
            per_machine: info["perMachine"].as_bool().unwrap_or(false),
        },
    })
}

/// Shorthand for built-in manifests.
fn manifest(name: &str, description: &str, categories: &[&str], readme: &str) -> Manifest {
    Manifest {
        name: name.into(),
        description: description.into(),
        categories: categories.iter().map(|c| c.to_string()).collect(),
        readme: readme.into(),
        service: ServiceMeta::default(),
    }
}

impl Manifest {
    fn with_service(mut self, service: ServiceMeta) -> Self {
        self.service = service;
        self
    }
}

/// A square icon with one letter, for built-in modules.
fn letter_icon(letter: char, color: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 24 24\"><rect width=\"24\" height=\"24\" rx=\"5\" fill=\"{color}\"/><text x=\"12\" y=\"17\" font-family=\"sans-serif\" font-size=\"14\" text-anchor=\"middle\" fill=\"#fff\">{letter}</text></svg>"
    )
}

/// What a built-in module's manifest tells owners.
fn builtin_service(
    display_name: &str,
    icon: char,
    license: License,
    homepage: &str,
    backup_description: &str,
) -> ServiceMeta {
    ServiceMeta {
        display_name: Some(display_name.into()),
        svg_icon: Some(letter_icon(icon, "#3a6ea5")),
        license: vec![license],
        homepage: Some(homepage.into()),
        source_page: Some(homepage.into()),
        support_level: Some("normal".into()),
        is_system_service: Some(true),
        backup_description: Some(backup_description.into()),
        ..ServiceMeta::default()
    }
}

fn role(description: &str, interface: Group) -> RoleInfo {
    RoleInfo {
        description: Some(description.into()),
        interface,
        per_instance: true,
    }
}
