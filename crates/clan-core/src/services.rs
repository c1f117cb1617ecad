//! Services as a machine's owner sees them (the agent's and the UI's unit): each
//! service instance the machine takes part in, with the states that instance
//! contributes, and each state declared outside any instance. Computed once at
//! resolution and sent to the machine with its configuration, so the machine needs
//! neither the modules nor Nix to describe itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::machine::ClanCore;
use crate::modules::ServiceMeta;
use crate::options::{DefaultValue, Group, OptionNode, OptionType};
use crate::resolve::RoleAssignment;

/// One service on one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineService {
    /// The instance's name, or the state's name for a state outside instances.
    pub id: String,
    /// The instance, when the service is one.
    pub instance: Option<String>,
    pub module: Option<String>,
    /// This machine's roles in the instance.
    pub roles: Vec<String>,
    /// False when the inventory turns the instance off on this machine
    /// (`roles.<r>.machines.<m>.enabled = false`): listed, with no states or units.
    #[serde(default = "yes")]
    pub enabled: bool,
    pub meta: ServiceMeta,
    /// The states the service contributes (what its backups hold).
    pub states: Vec<String>,
    /// The systemd units of those states.
    pub units: Vec<String>,
    /// The settings a form can show: simple options of its roles, with their values.
    pub settings: Vec<Setting>,
}

/// One setting of a service, as SelfPrivacy's configuration items show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Setting {
    /// The option's name; `<role>.<option>` when the machine has several roles.
    pub field_id: String,
    pub role: String,
    pub option: String,
    pub description: String,
    pub widget: String,
    pub kind: SettingKind,
    pub value: Value,
    pub default: Value,
    /// Order in forms (SelfPrivacy's `weight`, 50 unless the option's meta says).
    pub weight: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum SettingKind {
    String { regex: Option<String> },
    Bool,
    Enum { options: Vec<String> },
}

fn yes() -> bool {
    true
}

impl MachineService {
    /// Every service of a machine: its instances (in name order), then the states
    /// no instance contributed. `provenance` maps `/clan/core/...` pointers to their
    /// sources, which name the instance that set them.
    pub fn of_machine(
        assignments: &[RoleAssignment],
        disabled: &[(String, String, String)],
        core: &ClanCore,
        provenance: &BTreeMap<String, Vec<String>>,
        module_of: impl Fn(&str) -> Option<(ServiceMeta, BTreeMap<String, Group>)>,
    ) -> Vec<MachineService> {
        let mut by_instance: BTreeMap<&str, Vec<&RoleAssignment>> = BTreeMap::new();
        for a in assignments {
            by_instance.entry(&a.instance).or_default().push(a);
        }
        let state_sources = |state: &str| -> Vec<&String> {
            let at = format!("/clan/core/state/{state}");
            provenance
                .iter()
                .filter(|(p, _)| *p == &at || p.starts_with(&format!("{at}/")))
                .flat_map(|(_, s)| s)
                .collect()
        };
        let mut claimed = Vec::new();
        let mut services = Vec::new();
        for (instance, roles) in by_instance {
            let mark = format!("instance '{instance}'");
            let states: Vec<String> = core
                .state
                .keys()
                .filter(|s| state_sources(s).iter().any(|src| src.contains(&mark)))
                .map(|s| s.to_string())
                .collect();
            claimed.extend(states.iter().cloned());
            let module = roles[0].module.clone();
            let (meta, interfaces) = module_of(instance).unwrap_or_default();
            let several = roles.len() > 1;
            let mut settings: Vec<Setting> = roles
                .iter()
                .flat_map(|a| {
                    interfaces
                        .get(&a.role)
                        .map(|g| settings_of(g, a, several))
                        .unwrap_or_default()
                })
                .collect();
            settings.sort_by(|a, b| (a.weight, &a.field_id).cmp(&(b.weight, &b.field_id)));
            services.push(MachineService {
                id: instance.to_string(),
                instance: Some(instance.to_string()),
                module: Some(module),
                roles: roles.iter().map(|a| a.role.clone()).collect(),
                enabled: true,
                units: units_of(core, &states),
                states,
                meta,
                settings,
            });
        }
        let mut off: BTreeMap<&str, (&str, Vec<String>)> = BTreeMap::new();
        for (instance, module, role) in disabled {
            let entry = off.entry(instance).or_insert((module, Vec::new()));
            entry.1.push(role.clone());
        }
        for (instance, (module, roles)) in off {
            if services.iter().any(|s| s.id == instance) {
                continue;
            }
            services.push(MachineService {
                id: instance.to_string(),
                instance: Some(instance.to_string()),
                module: Some(module.to_string()),
                roles,
                enabled: false,
                meta: module_of(instance)
                    .map(|(meta, _)| meta)
                    .unwrap_or_default(),
                states: Vec::new(),
                units: Vec::new(),
                settings: Vec::new(),
            });
        }
        services.sort_by(|a, b| a.id.cmp(&b.id));
        for state in core.state.keys() {
            if claimed.iter().any(|c| c == state.as_str()) {
                continue;
            }
            let states = vec![state.to_string()];
            services.push(MachineService {
                id: state.to_string(),
                instance: None,
                module: None,
                roles: Vec::new(),
                enabled: true,
                meta: ServiceMeta {
                    display_name: Some(state.to_string()),
                    backup_description: Some(format!("The state '{state}' of this machine.")),
                    ..ServiceMeta::default()
                },
                units: units_of(core, &states),
                states,
                settings: Vec::new(),
            });
        }
        services
    }

    pub fn display_name(&self) -> &str {
        self.meta.display_name.as_deref().unwrap_or(&self.id)
    }

    /// A service backs up when it has states and its module does not say otherwise.
    pub fn can_be_backed_up(&self) -> bool {
        !self.states.is_empty() && self.meta.can_be_backed_up.unwrap_or(true)
    }
}

fn units_of(core: &ClanCore, states: &[String]) -> Vec<String> {
    let mut units: Vec<String> = states
        .iter()
        .filter_map(|s| core.state.iter().find(|(n, _)| n.as_str() == s))
        .flat_map(|(_, st)| st.services.iter().cloned())
        .collect();
    units.sort();
    units.dedup();
    units
}

/// The top-level options of a role a form can edit: strings, booleans and enums
/// (SelfPrivacy's item kinds; its `meta.type` wins over the option's type, and
/// `enable`/`location` items are not settings).
fn settings_of(interface: &Group, a: &RoleAssignment, several_roles: bool) -> Vec<Setting> {
    let mut out = Vec::new();
    for (name, node) in interface {
        let OptionNode::Option(o) = node else {
            continue;
        };
        if !o.visible || o.read_only {
            continue;
        }
        let meta = o.meta.clone().unwrap_or(Value::Null);
        if meta.get("unsupported").is_some() {
            continue;
        }
        let meta_str = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
        let ty = match &o.ty {
            OptionType::NullOr(t) => t.as_ref(),
            t => t,
        };
        let kind = match (meta_str("type").as_deref(), ty) {
            (Some("enable" | "location" | "int"), _) => continue,
            (Some("bool"), _) | (None, OptionType::Bool) => SettingKind::Bool,
            (Some("enum"), _) | (None, OptionType::Enum(_)) => SettingKind::Enum {
                options: match ty {
                    OptionType::Enum(values) => values
                        .iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .collect(),
                    _ => meta
                        .get("options")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                },
            },
            (Some("string"), _) | (None, OptionType::Str | OptionType::StrMatching { .. }) => {
                SettingKind::String {
                    regex: meta_str("regex").or(match ty {
                        OptionType::StrMatching { pattern } => Some(format!("^(?:{pattern})$")),
                        _ => None,
                    }),
                }
            }
            _ => continue,
        };
        let default = match &o.default {
            DefaultValue::Json(v) => v.clone(),
            _ => Value::Null,
        };
        let widget = meta_str("widget").unwrap_or_else(|| {
            match kind {
                SettingKind::String { .. } => "text",
                SettingKind::Bool => "switch",
                SettingKind::Enum { .. } => "select",
            }
            .into()
        });
        out.push(Setting {
            field_id: if several_roles {
                format!("{}.{name}", a.role)
            } else {
                name.clone()
            },
            role: a.role.clone(),
            option: name.clone(),
            description: o.description.clone().unwrap_or_else(|| name.clone()),
            widget,
            kind,
            value: a.settings.get(name).cloned().unwrap_or(default.clone()),
            default,
            weight: meta.get("weight").and_then(Value::as_i64).unwrap_or(50),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::build::*;
    use serde_json::json;

    fn core(states: Value) -> ClanCore {
        let mut core = json!({ "state": states });
        crate::options::apply_defaults(
            &crate::machine::clan_core_options(),
            core.as_object_mut().unwrap(),
        );
        serde_json::from_value(core).unwrap()
    }

    #[test]
    fn instances_own_the_states_they_set_and_the_rest_are_services_of_their_own() {
        let core = core(json!({
            "nextcloud": {"folders": ["/var/lib/nextcloud"], "services": ["nextcloud.service", "phpfpm.service"]},
            "notes": {"folders": ["/srv/notes"]},
        }));
        let provenance = BTreeMap::from([
            (
                "/clan/core/state/nextcloud/folders".to_string(),
                vec!["module 'cloud', instance 'cloud', role 'server' (perInstance)".to_string()],
            ),
            (
                "/clan/core/state/notes/folders".to_string(),
                vec!["machines/m/configuration.nix".to_string()],
            ),
        ]);
        let assignments = vec![RoleAssignment {
            instance: "cloud".into(),
            module: "cloud".into(),
            role: "server".into(),
            settings: json!({"domain": "cloud.example.org", "open": true, "size": 3}),
        }];
        let interface = group([
            ("domain", opt(str()).desc("Where it answers").node()),
            ("open", opt(bool()).default(false).node()),
            ("size", opt(int()).default(1).node()),
            (
                "tier",
                opt(enum_of(&["small", "big"])).default("small").node(),
            ),
        ]);
        let services = MachineService::of_machine(&assignments, &[], &core, &provenance, |_| {
            Some((
                ServiceMeta {
                    display_name: Some("Cloud".into()),
                    ..Default::default()
                },
                BTreeMap::from([("server".to_string(), interface.clone())]),
            ))
        });
        assert_eq!(services.len(), 2);
        let cloud = &services[0];
        assert_eq!(cloud.id, "cloud");
        assert_eq!(cloud.display_name(), "Cloud");
        assert_eq!(cloud.states, ["nextcloud"]);
        assert_eq!(cloud.units, ["nextcloud.service", "phpfpm.service"]);
        let fields: Vec<(&str, &Value)> = cloud
            .settings
            .iter()
            .map(|s| (s.field_id.as_str(), &s.value))
            .collect();
        // The int is not a form item (SelfPrivacy has none); the enum takes its default.
        assert_eq!(
            fields,
            [
                ("domain", &json!("cloud.example.org")),
                ("open", &json!(true)),
                ("tier", &json!("small"))
            ]
        );
        assert_eq!(
            cloud.settings[2].kind,
            SettingKind::Enum {
                options: vec!["small".into(), "big".into()]
            }
        );
        let notes = &services[1];
        assert_eq!(
            (notes.id.as_str(), notes.instance.as_deref()),
            ("notes", None)
        );
        assert_eq!(notes.states, ["notes"]);
        assert!(notes.units.is_empty());
        assert!(notes.can_be_backed_up());
    }
}
