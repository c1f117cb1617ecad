//! Typed edits of inventory.json (and of a machine's JSON layer), as the CLI, the
//! agent and the UI make them: applied to the file's JSON, the whole clan validated
//! with the result before anything is written, then written atomically with sorted
//! keys and a 2-space indent (so that diffs stay small), and committed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use clan_core::Clan;
use clan_core::inventory::read_json_object;

use crate::error::{Error, Result};

/// Where in a role settings are written: role-wide, for a tag, for one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SettingsLayer {
    Role,
    Tag(String),
    Machine(String),
}

/// One change to inventory.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "edit", rename_all = "camelCase")]
pub enum Edit {
    /// Sets the value at `path` below `machines.<machine>` (removes it when `None`).
    SetMachine {
        machine: String,
        path: Vec<String>,
        value: Option<Value>,
    },
    /// Replaces a role's settings at one layer (removes them when `None`).
    SetRoleSettings {
        instance: String,
        role: String,
        layer: SettingsLayer,
        settings: Option<Value>,
    },
    AddMember {
        instance: String,
        role: String,
        machine: String,
    },
    RemoveMember {
        instance: String,
        role: String,
        machine: String,
    },
    CreateInstance {
        instance: String,
        module: String,
        input: Option<String>,
    },
    RemoveInstance {
        instance: String,
    },
    /// Sets which tags a role has (`roles.<r>.tags`): others are removed, settings
    /// of the tags kept stay.
    SetRoleTags {
        instance: String,
        role: String,
        tags: Vec<String>,
    },
    /// Turns an instance on or off on one machine, in one role
    /// (`roles.<r>.machines.<m>.enabled`; the machine's entry stays).
    SetEnabled {
        instance: String,
        role: String,
        machine: String,
        enabled: bool,
    },
}

/// What an edit wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// False when the clan is not a git repository (or nothing changed).
    pub committed: bool,
}

/// Applies `edit` to the JSON of inventory.json.
pub fn apply(json: &mut Value, edit: &Edit) -> Result<()> {
    match edit {
        Edit::SetMachine {
            machine,
            path,
            value,
        } => {
            let mut at = vec!["machines".to_string(), machine.clone()];
            at.extend(path.iter().cloned());
            set_at(json, &at, value.clone())
        }
        Edit::SetRoleSettings {
            instance,
            role,
            layer,
            settings,
        } => {
            let mut at = vec![
                "instances".to_string(),
                instance.clone(),
                "roles".into(),
                role.clone(),
            ];
            match layer {
                SettingsLayer::Role => {}
                SettingsLayer::Tag(t) => at.extend(["tags".to_string(), t.clone()]),
                SettingsLayer::Machine(m) => at.extend(["machines".to_string(), m.clone()]),
            }
            at.push("settings".into());
            set_at(json, &at, settings.clone())
        }
        Edit::AddMember {
            instance,
            role,
            machine,
        } => {
            let at = member_path(instance, role, machine);
            if get_at(json, &at).is_none() {
                set_at(json, &at, Some(Value::Object(Map::new())))?;
            }
            Ok(())
        }
        Edit::RemoveMember {
            instance,
            role,
            machine,
        } => set_at(json, &member_path(instance, role, machine), None),
        Edit::CreateInstance {
            instance,
            module,
            input,
        } => {
            let at = ["instances".to_string(), instance.clone()];
            if get_at(json, &at).is_some() {
                return Err(Error::Usage(format!(
                    "instance '{instance}' exists already in inventory.json"
                )));
            }
            let mut m = Map::new();
            m.insert("name".into(), module.clone().into());
            if let Some(i) = input {
                m.insert("input".into(), i.clone().into());
            }
            let mut i = Map::new();
            i.insert("module".into(), Value::Object(m));
            i.insert("roles".into(), Value::Object(Map::new()));
            set_at(json, &at, Some(Value::Object(i)))
        }
        Edit::SetRoleTags {
            instance,
            role,
            tags,
        } => {
            let at = ["instances", instance, "roles", role, "tags"].map(str::to_string);
            let mut have = match get_at(json, &at) {
                Some(Value::Object(o)) => o.clone(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|t| (t.to_string(), Value::Object(Map::new())))
                    .collect(),
                _ => Map::new(),
            };
            have.retain(|t, _| tags.contains(t));
            for t in tags {
                have.entry(t.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            set_at(json, &at, (!have.is_empty()).then_some(Value::Object(have)))
        }
        Edit::RemoveInstance { instance } => {
            set_at(json, &["instances".to_string(), instance.clone()], None)
        }
        Edit::SetEnabled {
            instance,
            role,
            machine,
            enabled: false,
        } => {
            let mut at = member_path(instance, role, machine);
            at.push("enabled".into());
            set_at(json, &at, Some(Value::Bool(false)))
        }
        Edit::SetEnabled {
            instance,
            role,
            machine,
            enabled: true,
        } => {
            let at = member_path(instance, role, machine);
            if let Some(entry) = at
                .iter()
                .try_fold(&mut *json, |v, k| v.get_mut(k))
                .and_then(Value::as_object_mut)
            {
                entry.remove("enabled");
            }
            Ok(())
        }
    }
}

fn member_path(instance: &str, role: &str, machine: &str) -> Vec<String> {
    ["instances", instance, "roles", role, "machines", machine]
        .map(str::to_string)
        .to_vec()
}

fn get_at<'a>(json: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(json, |v, k| v.get(k))
}

/// Sets `path` to `value` (making objects on the way), or removes it (and the
/// objects that become empty) when `value` is `None`.
fn set_at(json: &mut Value, path: &[String], value: Option<Value>) -> Result<()> {
    let (last, parents) = path.split_last().expect("a path");
    let Some(value) = value else {
        let parent = parents
            .iter()
            .try_fold(&mut *json, |v, k| v.get_mut(k))
            .and_then(Value::as_object_mut);
        if let Some(parent) = parent {
            parent.remove(last);
            prune_empty(json, parents);
        }
        return Ok(());
    };
    let mut at = json;
    for (i, k) in parents.iter().enumerate() {
        at = at
            .as_object_mut()
            .ok_or_else(|| not_object(&path[..i]))?
            .entry(k.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    at.as_object_mut()
        .ok_or_else(|| not_object(parents))?
        .insert(last.clone(), value);
    Ok(())
}

/// Removes the objects along `path` that an edit left empty, innermost first.
fn prune_empty(json: &mut Value, path: &[String]) {
    for n in (1..=path.len()).rev() {
        let (last, parents) = path[..n].split_last().expect("not empty");
        let Some(parent) = parents
            .iter()
            .try_fold(&mut *json, |v, k| v.get_mut(k))
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        if parent
            .get(last)
            .is_some_and(|v| v.as_object().is_some_and(Map::is_empty))
        {
            parent.remove(last);
        } else {
            return;
        }
    }
}

fn not_object(path: &[String]) -> Error {
    Error::Usage(format!(
        "inventory.json: `{}` is not an object",
        if path.is_empty() {
            "(top level)".to_string()
        } else {
            path.join(".")
        }
    ))
}

/// Applies `edits` to inventory.json: validated, written, committed with `message`.
pub fn edit(clan: &Clan, edits: &[Edit], message: &str) -> Result<Written> {
    let path = clan.dir.inventory_json();
    let mut json = read_json_object(&path)
        .map_err(clan_core::Error::from)?
        .unwrap_or_else(|| Value::Object(Map::new()));
    for e in edits {
        apply(&mut json, e)?;
    }
    let candidate = clan.with_layers(clan_core::LayerEdit {
        inventory_json: Some(json.clone()),
        ..Default::default()
    })?;
    candidate.resolve(&[])?;
    write(clan, &[(path, json)], message)
}

/// Writes each file (sorted keys, 2-space indent, atomically) and commits them.
pub(crate) fn write(clan: &Clan, files: &[(PathBuf, Value)], message: &str) -> Result<Written> {
    for (path, json) in files {
        write_file(path, json)?;
    }
    let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let committed = clan_core::git::commit_paths(clan.dir.root(), &paths, message)
        .map_err(clan_core::Error::from)?;
    Ok(Written {
        files: files.iter().map(|(p, _)| p.clone()).collect(),
        committed,
    })
}

/// One JSON file, sorted keys and a 2-space indent, written atomically.
pub(crate) fn write_file(path: &Path, json: &Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    clan_core::inventory::write_json(path, &sorted(json)).map_err(|e| io(path, e))
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Core(Box::new(clan_core::Error::Io {
        context: format!("writing {}", path.display()),
        source,
    }))
}

/// `value` with every object's keys in sorted order.
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn turning_a_member_off_and_on_keeps_its_entry_and_settings() {
        let mut inv = json!({"instances": {"i": {"roles": {"r": {"machines": {
            "a": {"settings": {"x": 1}}, "b": {}
        }}}}}});
        let set = |inv: &mut Value, machine: &str, enabled| {
            let edit = Edit::SetEnabled {
                instance: "i".into(),
                role: "r".into(),
                machine: machine.into(),
                enabled,
            };
            apply(inv, &edit).unwrap();
        };
        set(&mut inv, "a", false);
        set(&mut inv, "b", false);
        let machines = &inv["instances"]["i"]["roles"]["r"]["machines"];
        assert_eq!(
            machines["a"],
            json!({"settings": {"x": 1}, "enabled": false})
        );
        assert_eq!(machines["b"], json!({"enabled": false}));
        set(&mut inv, "a", true);
        set(&mut inv, "b", true);
        let machines = &inv["instances"]["i"]["roles"]["r"]["machines"];
        assert_eq!(machines, &json!({"a": {"settings": {"x": 1}}, "b": {}}));
    }

    #[test]
    fn edits_change_only_their_place_and_removals_leave_no_empty_objects() {
        let mut inv = json!({"machines": {"a": {"tags": ["x"]}}, "meta": {"name": "t"}});
        apply(
            &mut inv,
            &Edit::SetMachine {
                machine: "a".into(),
                path: vec!["deploy".into(), "targetHost".into()],
                value: Some(json!("root@a")),
            },
        )
        .unwrap();
        assert_eq!(inv["machines"]["a"]["deploy"]["targetHost"], "root@a");
        apply(
            &mut inv,
            &Edit::CreateInstance {
                instance: "b".into(),
                module: "borgbackup".into(),
                input: None,
            },
        )
        .unwrap();
        for e in [
            Edit::AddMember {
                instance: "b".into(),
                role: "client".into(),
                machine: "a".into(),
            },
            Edit::SetRoleSettings {
                instance: "b".into(),
                role: "client".into(),
                layer: SettingsLayer::Tag("x".into()),
                settings: Some(json!({"keep": 3})),
            },
        ] {
            apply(&mut inv, &e).unwrap();
        }
        assert_eq!(
            inv["instances"]["b"]["roles"]["client"]["machines"]["a"],
            json!({})
        );
        assert_eq!(
            inv["instances"]["b"]["roles"]["client"]["tags"]["x"]["settings"]["keep"],
            3
        );
        apply(
            &mut inv,
            &Edit::SetMachine {
                machine: "a".into(),
                path: vec!["deploy".into(), "targetHost".into()],
                value: None,
            },
        )
        .unwrap();
        assert_eq!(
            inv["machines"]["a"],
            json!({"tags": ["x"]}),
            "deploy went with its last key"
        );
        assert!(
            apply(
                &mut inv,
                &Edit::CreateInstance {
                    instance: "b".into(),
                    module: "m".into(),
                    input: None
                }
            )
            .is_err()
        );
        assert_eq!(
            serde_json::to_string(&sorted(&json!({"b": 1, "a": {"d": 1, "c": 2}}))).unwrap(),
            r#"{"a":{"c":2,"d":1},"b":1}"#
        );
    }
}

/// Edits end to end on a clan in inventory.json (no Nix): checked against the
/// whole clan before anything is written, committed when it holds.
#[cfg(test)]
mod clan_tests {
    use super::*;
    use serde_json::json;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn a_role_edit_that_breaks_the_clan_writes_nothing_and_one_that_holds_is_committed() {
        let tmp = tempfile::tempdir().unwrap();
        let inventory = json!({
            "meta": {"name": "t"},
            "machines": {"a": {"machineClass": "linux"}, "b": {"machineClass": "linux"}},
        });
        let path = tmp.path().join("inventory.json");
        std::fs::write(&path, serde_json::to_string_pretty(&inventory).unwrap()).unwrap();
        git(tmp.path(), &["init", "-q"]);
        git(tmp.path(), &["add", "-A"]);
        git(tmp.path(), &["commit", "-qm", "init"]);
        let open =
            || Clan::open(clan_core::ClanDir::open(tmp.path(), "the test").unwrap()).unwrap();

        let create = [
            Edit::CreateInstance {
                instance: "borg".into(),
                module: "borgbackup".into(),
                input: None,
            },
            Edit::AddMember {
                instance: "borg".into(),
                role: "server".into(),
                machine: "a".into(),
            },
            Edit::AddMember {
                instance: "borg".into(),
                role: "client".into(),
                machine: "b".into(),
            },
        ];
        // A setting the role does not have: refused, nothing written or committed.
        let mut bad = create.to_vec();
        bad.push(Edit::SetRoleSettings {
            instance: "borg".into(),
            role: "server".into(),
            layer: SettingsLayer::Role,
            settings: Some(json!({"directry": "/srv/borg"})),
        });
        let before = std::fs::read_to_string(&path).unwrap();
        let e = edit(&open(), &bad, "instances: borg")
            .unwrap_err()
            .to_string();
        assert!(e.contains("directry"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        assert_eq!(git(tmp.path(), &["log", "--format=%s"]), "init\n");

        let mut good = create.to_vec();
        good.push(Edit::SetRoleSettings {
            instance: "borg".into(),
            role: "server".into(),
            layer: SettingsLayer::Machine("a".into()),
            settings: Some(json!({"directory": "/srv/borg"})),
        });
        let written = edit(&open(), &good, "instances: borg").unwrap();
        assert!(written.committed);
        let clan = open();
        let resolved = clan.resolve(&[]).unwrap();
        let server = resolved.machines["a"]
            .clan_core
            .borgbackup
            .server
            .as_ref()
            .unwrap();
        assert_eq!(server.directory, "/srv/borg");
        assert!(server.clients.as_ref().unwrap().contains_key("b"));
        assert_eq!(
            git(tmp.path(), &["log", "--format=%s"]),
            "instances: borg\ninit\n"
        );
    }
}
