//! Instance settings are kept apart from the rest of the inventory, layer by layer
//! (role-wide, per tag, per machine) with the file each came from, so that they can
//! be merged per machine and every broken rule traced to where it was written.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::merge::{Definition, Source};

/// Where in a role a settings value was written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    RoleWide,
    Tag(String),
    Machine(String),
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RoleWide => f.write_str("role-wide"),
            Self::Tag(t) => write!(f, "tag '{t}'"),
            Self::Machine(m) => write!(f, "machine '{m}'"),
        }
    }
}

/// All settings definitions of one role of one instance, in source order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsLayers {
    pub defs: Vec<(Layer, Definition)>,
}

impl SettingsLayers {
    /// The definitions that apply to `machine` carrying `tags`: role-wide, then its
    /// tags, then its own.
    pub fn for_machine(&self, machine: &str, tags: &[String]) -> Vec<Definition> {
        let applies = |l: &Layer| match l {
            Layer::RoleWide => true,
            Layer::Tag(t) => tags.contains(t),
            Layer::Machine(m) => m == machine,
        };
        let mut defs: Vec<&(Layer, Definition)> =
            self.defs.iter().filter(|(l, _)| applies(l)).collect();
        defs.sort_by_key(|(l, _)| match l {
            Layer::RoleWide => 0,
            Layer::Tag(_) => 1,
            Layer::Machine(_) => 2,
        });
        defs.into_iter().map(|(_, d)| d.clone()).collect()
    }
}

/// Removes `instances.*.roles.*.{settings, tags.*.settings, machines.*.settings}`
/// from one inventory source into `layers`, keyed by (instance, role). A role's
/// `tags` given as a list becomes an attribute set.
pub(crate) fn take_settings(
    source: &Source,
    inventory: &mut Value,
    layers: &mut BTreeMap<(String, String), SettingsLayers>,
) {
    let Some(instances) = inventory
        .get_mut("instances")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (instance, inst) in instances.iter_mut() {
        let Some(roles) = inst.get_mut("roles").and_then(Value::as_object_mut) else {
            continue;
        };
        for (role, r) in roles.iter_mut() {
            let Some(r) = r.as_object_mut() else { continue };
            if let Some(Value::Array(list)) = r.get("tags") {
                let as_set: Map<String, Value> = list
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|t| (t.to_string(), Value::Object(Map::new())))
                    .collect();
                r.insert("tags".into(), Value::Object(as_set));
            }
            let entry = layers.entry((instance.clone(), role.clone())).or_default();
            let base = format!("instances.{instance}.roles.{role}");
            let mut push = |layer: Layer, path: String, value: Value| {
                let def = Definition::new(format!("{source}: {path} ({layer})"), value);
                entry.defs.push((layer, def));
            };
            if let Some(v) = r.remove("settings") {
                push(Layer::RoleWide, format!("{base}.settings"), v);
            }
            for (key, make) in [
                ("tags", Layer::Tag as fn(String) -> Layer),
                ("machines", Layer::Machine),
            ] {
                let Some(members) = r.get_mut(key).and_then(Value::as_object_mut) else {
                    continue;
                };
                for (name, member) in members.iter_mut() {
                    if let Some(v) = member.as_object_mut().and_then(|m| m.remove("settings")) {
                        push(
                            make(name.clone()),
                            format!("{base}.{key}.{name}.settings"),
                            v,
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layers_are_taken_out_with_their_place() {
        let mut inv = json!({"instances": {"sshd": {"roles": {"server": {
            "tags": ["all"],
            "settings": {"a": 1},
            "machines": {"m1": {"settings": {"b": 2}}}
        }}}}});
        let mut layers = BTreeMap::new();
        take_settings(&Source::new("clan.nix"), &mut inv, &mut layers);
        assert_eq!(
            inv,
            json!({"instances": {"sshd": {"roles": {"server": {"tags": {"all": {}}, "machines": {"m1": {}}}}}}})
        );
        let l = &layers[&("sshd".to_string(), "server".to_string())];
        let for_m1 = l.for_machine("m1", &["all".into()]);
        assert_eq!(for_m1.len(), 2);
        assert_eq!(
            for_m1[0].source.0,
            "clan.nix: instances.sshd.roles.server.settings (role-wide)"
        );
        assert_eq!(
            for_m1[1].source.0,
            "clan.nix: instances.sshd.roles.server.machines.m1.settings (machine 'm1')"
        );
        assert_eq!(l.for_machine("m2", &[]).len(), 1);
    }
}
