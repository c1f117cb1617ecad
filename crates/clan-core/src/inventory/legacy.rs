//! Clan's older `inventory.services` format (before instances): refused, with the
//! same configuration written as `inventory.instances` from the user's own values.

use serde_json::{Map, Value, json};

/// `inventory.services` as `inventory.instances`: each `services.<module>.<name>`
/// becomes instance `<name>` (`<module>-<name>` when two modules use a name) of
/// module `<module>` from `clan-core`; role machine and tag lists become attribute
/// sets; the service-wide `config` and each role's `config` become the role's
/// settings, `machines.<m>.config` the settings of `m` in each of its roles.
/// Service-wide values go to the roles that have the option (`has(module, role,
/// option)`; Clan's older modules had one interface for all roles).
pub fn instances_of(
    services: &Map<String, Value>,
    has: impl Fn(&str, &str, &str) -> bool,
) -> Value {
    let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in services.values().filter_map(Value::as_object) {
        for name in s.keys() {
            *seen.entry(name).or_default() += 1;
        }
    }
    let mut instances = Map::new();
    for (module, named) in services {
        for (name, s) in named.as_object().into_iter().flatten() {
            let key = if seen[name.as_str()] > 1 {
                format!("{module}-{name}")
            } else {
                name.clone()
            };
            let wide = s.get("config").and_then(Value::as_object);
            let mut roles = Map::new();
            for (role, r) in s["roles"].as_object().into_iter().flatten() {
                let mut out = Map::new();
                let mut machines = Map::new();
                for m in r["machines"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    let mut entry = Map::new();
                    if let Some(c) = s["machines"][m]["config"]
                        .as_object()
                        .filter(|c| !c.is_empty())
                    {
                        entry.insert("settings".into(), Value::Object(c.clone()));
                    }
                    machines.insert(m.to_string(), Value::Object(entry));
                }
                if !machines.is_empty() {
                    out.insert("machines".into(), Value::Object(machines));
                }
                let tags: Map<String, Value> = r["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|t| (t.to_string(), json!({})))
                    .collect();
                if !tags.is_empty() {
                    out.insert("tags".into(), Value::Object(tags));
                }
                let mut settings: Map<String, Value> = wide
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| has(module, role, k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                settings.extend(r["config"].as_object().cloned().unwrap_or_default());
                if !settings.is_empty() {
                    out.insert("settings".into(), Value::Object(settings));
                }
                roles.insert(role.clone(), Value::Object(out));
            }
            instances.insert(
                key,
                json!({ "module": { "name": module, "input": "clan-core" }, "roles": roles }),
            );
        }
    }
    Value::Object(instances)
}

/// `value` as Nix, indented by `indent` levels (what a user pastes into clan.nix).
pub fn to_nix(value: &Value, indent: usize) -> String {
    let pad = |n: usize| "  ".repeat(n);
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => nix_string(s),
        Value::Array(items) if items.is_empty() => "[ ]".into(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(|v| to_nix(v, indent + 1)).collect();
            format!("[ {} ]", inner.join(" "))
        }
        Value::Object(m) if m.is_empty() => "{ }".into(),
        Value::Object(m) => {
            let mut out = String::from("{\n");
            for (k, v) in m {
                out.push_str(&format!(
                    "{}{} = {};\n",
                    pad(indent + 1),
                    nix_key(k),
                    to_nix(v, indent + 1)
                ));
            }
            out.push_str(&pad(indent));
            out.push('}');
            out
        }
    }
}

fn nix_key(k: &str) -> String {
    let plain = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-'".contains(c));
    if plain { k.to_string() } else { nix_string(k) }
}

fn nix_string(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace("${", "\\${")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_older_services_format_becomes_instances_with_the_same_values() {
        let services = json!({
            "borgbackup": { "instance_1": {
                "roles": {
                    "client": { "machines": ["jon", "sara"], "tags": ["laptop"], "config": { "startAt": "hourly" } },
                    "server": { "machines": ["backup"] },
                },
                "config": { "exclude": ["*.tmp"] },
                "machines": { "jon": { "config": { "exclude": ["/home/jon/cache"] } } },
            } },
            "sshd": { "instance_1": { "roles": { "server": { "tags": ["all"] } } } },
        });
        let got = instances_of(services.as_object().unwrap(), |_, role, option| {
            role == "client" || option != "exclude"
        });
        assert_eq!(
            got["borgbackup-instance_1"],
            json!({
                "module": { "name": "borgbackup", "input": "clan-core" },
                "roles": {
                    "client": {
                        "machines": { "jon": { "settings": { "exclude": ["/home/jon/cache"] } }, "sara": {} },
                        "tags": { "laptop": {} },
                        "settings": { "exclude": ["*.tmp"], "startAt": "hourly" },
                    },
                    "server": { "machines": { "backup": {} } },
                },
            })
        );
        assert_eq!(
            got["sshd-instance_1"]["roles"]["server"]["tags"],
            json!({"all": {}})
        );
        let nix = to_nix(&json!({"a-b": {"x y": ["s\"${x}"], "n": null}}), 0);
        assert_eq!(
            nix,
            "{\n  a-b = {\n    \"x y\" = [ \"s\\\"\\${x}\" ];\n    n = null;\n  };\n}"
        );
    }
}
