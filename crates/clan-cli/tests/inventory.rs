//! Point 4: inventory resolution, settings merge, and its errors.

mod common;
use common::*;
use serde_json::json;

fn settings_of(clan: &tempfile::TempDir, machine: &str, instance: &str) -> serde_json::Value {
    let m = clan_in(clan.path(), &["inventory", "show", machine, "--json"])
        .ok()
        .json();
    m["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["instance"] == instance)
        .unwrap()["settings"]
        .clone()
}

#[test]
fn tags_classes_and_inventory_tags_combine() {
    let clan = clan_with(&[(
        "inventory.json",
        r#"{"meta": {"name": "t"}, "tags": {"backup": ["b"]},
            "machines": {"a": {"tags": ["laptop"], "machineClass": "linux"}, "b": {"tags": ["laptop", "home"]}, "c": {}}}"#,
    )]);
    let list = clan_in(clan.path(), &["machines", "list", "--json"])
        .ok()
        .json();
    assert_eq!(list[0]["tags"], json!(["all", "laptop", "linux"]));
    assert_eq!(
        list[1]["tags"],
        json!(["all", "backup", "home", "laptop", "nixos"])
    );
    let filtered = clan_in(
        clan.path(),
        &["machines", "list", "--tags", "laptop", "home", "--json"],
    )
    .ok()
    .json();
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    assert_eq!(filtered[0]["name"], "b");
}

#[test]
fn settings_merge_across_role_tag_and_machine_with_priorities() {
    let clan = clan_with(&[(
        "clan.nix",
        r#"{ lib, ... }: {
          meta.name = "t";
          inventory.machines = { jon = { tags = [ "special" ]; }; sara = { }; };
          inventory.instances.hi = {
            module.name = "hello-world";
            roles.greeter.tags.all = { };
            roles.greeter.settings.greeting = "Hi";
            roles.greeter.tags.special.settings.greeting = lib.mkForce "Howdy";
            roles.listener.machines.sara.settings.name = "Sara";
          };
        }"#,
    )]);
    assert_eq!(
        settings_of(&clan, "jon", "hi"),
        json!({"greeting": "Howdy"})
    );
    assert_eq!(settings_of(&clan, "sara", "hi")["greeting"], "Hi");
    let jon = clan_in(clan.path(), &["inventory", "show", "jon", "--json"])
        .ok()
        .json();
    assert_eq!(
        jon["other"]["environment"]["etc"]["hello-world/hi"]["text"],
        "Howdy, Sara!\n"
    );
}

#[test]
fn equal_priority_conflicts_name_both_places() {
    let clan = clan_with(&[
        (
            "clan.nix",
            r#"{ meta.name = "t"; inventory.machines.jon = {};
                 inventory.instances.hi = { module.name = "hello-world"; roles.greeter.settings.greeting = "Hi"; }; }"#,
        ),
        (
            "inventory.json",
            r#"{"instances": {"hi": {"roles": {"greeter": {"machines": {"jon": {"settings": {"greeting": "Yo"}}}}}}}}"#,
        ),
    ]);
    let err = clan_in(clan.path(), &["inventory", "show", "jon"]).fails();
    assert!(err.contains("'greeting' is defined twice"), "{err}");
    assert!(
        err.contains("\"Hi\" in clan.nix: instances.hi.roles.greeter.settings (role-wide)"),
        "{err}"
    );
    assert!(err.contains("\"Yo\" in inventory.json: instances.hi.roles.greeter.machines.jon.settings (machine 'jon')"), "{err}");
}

#[test]
fn json_overrides_and_list_concatenation() {
    let clan = clan_with(&[(
        "inventory.json",
        r#"{"meta": {"name": "t"}, "machines": {"a": {"tags": ["x"]}},
            "instances": {"bb": {"module": {"name": "borgbackup"}, "roles": {"client": {
              "tags": ["x"],
              "settings": {"exclude": ["*.bak"], "startAt": "daily"},
              "machines": {"a": {"settings": {"exclude": ["*.tmp"], "startAt": {"_type": "override", "priority": 50, "content": "hourly"}}}}
            }}}}}"#,
    )]);
    let s = settings_of(&clan, "a", "bb");
    assert_eq!(s["exclude"], json!(["*.bak", "*.tmp"]));
    assert_eq!(s["startAt"], "hourly");
}

#[test]
fn unknown_module_lists_the_available_ones() {
    let clan = clan_with(&[(
        "inventory.json",
        r#"{"meta": {"name": "t"}, "machines": {"a": {}}, "instances": {"vpn": {"module": {"name": "zerotier"}}}}"#,
    )]);
    let err = clan_in(clan.path(), &["inventory", "show"]).fails();
    assert!(
        err.contains("instance 'vpn' uses module 'zerotier', which does not exist"),
        "{err}"
    );
    assert!(
        err.contains("borgbackup (built-in)") && err.contains("hello-world (built-in)"),
        "{err}"
    );
}

#[test]
fn unknown_role_lists_the_roles() {
    let clan = clan_with(&[(
        "inventory.json",
        r#"{"meta": {"name": "t"}, "machines": {"a": {}}, "instances": {"borgbackup": {"roles": {"clinet": {"machines": {"a": {}}}}}}}"#,
    )]);
    let err = clan_in(clan.path(), &["inventory", "show"]).fails();
    assert!(
        err.contains("module 'borgbackup' has no role 'clinet'. Its roles: client, server"),
        "{err}"
    );
}

#[test]
fn undefined_machine_is_an_error_and_unmatched_tag_a_warning() {
    let clan = clan_with(&[(
        "inventory.json",
        r#"{"meta": {"name": "t"}, "machines": {"alice": {}}, "instances": {"sshd": {"roles": {"server": {"machines": {"alcie": {}}}}}}}"#,
    )]);
    let err = clan_in(clan.path(), &["inventory", "show"]).fails();
    assert!(
        err.contains("names machine 'alcie', which is not defined"),
        "{err}"
    );
    assert!(err.contains("Did you mean: alice?"), "{err}");

    let clan = clan_with(&[(
        "inventory.json",
        r#"{"meta": {"name": "t"}, "machines": {"alice": {}}, "instances": {"sshd": {"roles": {"server": {"tags": ["servers"]}}}}}"#,
    )]);
    let run = clan_in(clan.path(), &["inventory", "show", "--json"]).ok();
    assert!(
        run.stderr()
            .contains("warning: instance 'sshd', role 'server': no machine has tag 'servers'"),
        "{}",
        run.stderr()
    );
}

#[test]
fn bad_inventory_names_the_file_and_path() {
    let clan = clan_with(&[(
        "inventory.json",
        r#"{"meta": {"name": "t"}, "machines": {"a": {"tagz": []}}}"#,
    )]);
    let err = clan_in(clan.path(), &["machines", "list"]).fails();
    assert!(
        err.contains("at 'machines.a'")
            && err.contains("tagz")
            && err.contains("(set in inventory.json)"),
        "{err}"
    );

    let clan = clan_with(&[(
        "inventory.json",
        r#"{"meta": {"name": "t"}, "machines": {"a": {"machineClass": "windows"}}}"#,
    )]);
    let err = clan_in(clan.path(), &["machines", "list"]).fails();
    assert!(
        err.contains("machines.a.machineClass") && err.contains("windows"),
        "{err}"
    );

    let clan = clan_with(&[(
        "inventory.json",
        r#"{"meta": {"name": "t"}, "machines": {"my_machine": {}}}"#,
    )]);
    let err = clan_in(clan.path(), &["machines", "list"]).fails();
    assert!(err.contains("my_machine"), "{err}");

    let clan = clan_with(&[(
        "inventory.json",
        "{\"meta\": {\"name\": \"t\"},\n \"machines\": {,}}",
    )]);
    let err = clan_in(clan.path(), &["machines", "list"]).fails();
    assert!(
        err.contains("inventory.json: not valid JSON") && err.contains("line 2"),
        "{err}"
    );
}

/// Instance names become provider names, systemd unit names and paths: a name with
/// a space or a '/' is refused when the clan is read, naming it and the rule.
#[test]
fn instance_names_are_checked() {
    let clan = clan_with(&[(
        "inventory.json",
        r#"{"meta": {"name": "t"}, "machines": {"a": {}},
            "instances": {"my backup": {"module": {"name": "restic"}, "roles": {}}}}"#,
    )]);
    let err = clan_in(clan.path(), &["machines", "list"]).fails();
    assert!(
        err.contains("instances.my backup") && err.contains("letters, digits, '_' and '-'"),
        "{err}"
    );
}
