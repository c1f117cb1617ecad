//! The `inventory.instances` examples of Clan's own documentation (service READMEs
//! and the inventory guide; tests/fixtures/clan-examples, each crediting its
//! source) evaluate unchanged: what they configure is what each machine gets, and
//! what clan does not implement is an error that names it.

use std::path::Path;

use clan_core::{Clan, ClanDir, Resolution};
use serde_json::{Value, json};

/// The machines the examples name, for a clan around each example.
const MACHINES: &str = r#"{
  jon = { }; sara = { };
  sally-laptop.tags = [ "laptop" ]; fred-laptop.tags = [ "laptop" ];
  backup-server.tags = [ "server" ]; office-desktop = { }; bobs-laptop = { };
  admin-laptop = { }; ci-runner-1 = { };
}"#;

/// Resolves a clan made of `example` (its machines added to [`MACHINES`]).
fn resolve(example: &str) -> Result<Resolution, String> {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/clan-examples")
        .join(format!("{example}.nix"));
    std::fs::copy(&fixture, tmp.path().join("example.nix")).unwrap();
    std::fs::write(
        tmp.path().join("clan.nix"),
        format!(
            r#"let example = import ./example.nix; inventory = example.inventory or {{ }}; in
            example // {{
              meta = {{ name = "examples"; }} // (example.meta or {{ }});
              inventory = inventory // {{ machines = {MACHINES} // (inventory.machines or {{ }}); }};
            }}"#
        ),
    )
    .unwrap();
    open(tmp.path())
}

fn open(dir: &Path) -> Result<Resolution, String> {
    let clan = Clan::open(ClanDir::open(dir, "the test").unwrap()).map_err(|e| e.to_string())?;
    clan.resolve(&[]).map_err(|e| e.to_string())
}

/// Resolves a clan whose clan.nix is `text`.
fn resolve_nix(text: &str) -> Result<Resolution, String> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("clan.nix"), text).unwrap();
    open(tmp.path())
}

/// The settings machine `m` has in `instance`/`role`.
fn settings(r: &Resolution, m: &str, instance: &str, role: &str) -> Value {
    r.machines[m]
        .instances
        .iter()
        .find(|a| a.instance == instance && a.role == role)
        .unwrap_or_else(|| panic!("{m} has no role {role} in {instance}"))
        .settings
        .clone()
}

fn members(r: &Resolution, instance: &str, role: &str) -> Vec<String> {
    r.machines
        .iter()
        .filter(|(_, m)| {
            m.instances
                .iter()
                .any(|a| a.instance == instance && a.role == role)
        })
        .map(|(n, _)| n.clone())
        .collect()
}

fn provider(r: &Resolution, m: &str, name: &str) -> Value {
    serde_json::to_value(&r.machines[m].clan_core.backups.providers[name]).unwrap()
}

#[test]
fn borgbackup_readme_a_destination_with_its_own_repository_and_ssh_command() {
    let r = resolve("borgbackup-readme").unwrap();
    let p = provider(&r, "jon", "borgbackup");
    let d = &p["destinations"]["storagebox"];
    assert_eq!(d["repo"], "username@hostname:/./borgbackup");
    assert_eq!(
        d["rsh"],
        "ssh -oPort=23 -i /run/secrets/vars/per-machine/jon/borgbackup/borgbackup.ssh"
    );
    assert_eq!(p["destinations"].as_object().unwrap().len(), 1, "{p}");
}

#[test]
fn inventory_guide_borgbackup_by_tags_names_and_settings() {
    let r = resolve("inventory-borgbackup-tags").unwrap();
    assert_eq!(
        members(&r, "borgbackup", "client"),
        ["fred-laptop", "sally-laptop"]
    );
    assert_eq!(members(&r, "borgbackup", "server"), ["backup-server"]);
    let p = provider(&r, "sally-laptop", "borgbackup");
    assert_eq!(
        p["destinations"]["backup-server"]["repo"],
        "ssh://borg@backup-server/var/lib/borgbackup/sally-laptop"
    );
    let r = resolve("inventory-borgbackup-tags-and-names").unwrap();
    assert_eq!(
        members(&r, "borgbackup", "client"),
        ["fred-laptop", "office-desktop", "sally-laptop"]
    );
    let r = resolve("inventory-borgbackup-settings").unwrap();
    assert_eq!(
        settings(&r, "fred-laptop", "borgbackup", "client")["startAt"],
        "*-*-* 02:00:00"
    );
    assert_eq!(
        provider(&r, "fred-laptop", "borgbackup")["startAt"],
        "*-*-* 02:00:00"
    );
}

#[test]
fn users_readme_everyone_carol_with_one_password_and_bob_on_his_laptop() {
    let r = resolve("users-readme").unwrap();
    for m in r.machines.values() {
        assert!(m.clan_core.users.contains_key("alice"), "{}", m.name);
        assert!(m.clan_core.users.contains_key("carol"), "{}", m.name);
        assert_eq!(
            m.clan_core.users.contains_key("bob"),
            m.name.as_str() == "bobs-laptop"
        );
    }
    let jon = &r.machines["jon"];
    assert_eq!(
        jon.clan_core.users["carol"].authorized_keys,
        ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ..."]
    );
    // alice: generated, not prompted; carol: one password for every machine.
    assert!(
        jon.clan_core.vars.generators["user-password-alice"]
            .prompts
            .is_empty()
    );
    assert!(jon.clan_core.vars.generators["user-password-carol"].share);
    let r = resolve("inventory-users").unwrap();
    assert!(
        r.machines["sally-laptop"]
            .clan_core
            .users
            .contains_key("sally")
    );
    assert!(
        !r.machines["sally-laptop"]
            .clan_core
            .users
            .contains_key("fred")
    );
}

#[test]
fn users_with_extra_modules_and_roots_password_are_resolved_and_the_modules_named() {
    let r = resolve("users-extra-modules").unwrap();
    assert_eq!(
        r.machines["jon"].clan_core.users["alice"].groups,
        ["wheel", "networkmanager"]
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("alice-user") && w.contains("extraModules")),
        "{:?}",
        r.warnings
    );
    let r = resolve("users-root-migration").unwrap();
    assert!(r.machines["jon"].clan_core.users.contains_key("root"));
    assert_eq!(
        settings(&r, "jon", "users-root", "default")["prompt"],
        false
    );
}

#[test]
fn sshd_basic_runs_and_certificates_are_named_as_not_supported() {
    let r = resolve("sshd-basic").unwrap();
    assert_eq!(
        r.machines["sara"].clan_core.sshd.authorized_keys["admin-key"],
        "ssh-ed25519 AAAA..."
    );
    for example in ["sshd-with-certs", "sshd-env-scoped"] {
        let e = resolve(example).unwrap_err();
        assert!(
            e.contains("setting certificate.searchDomains of module 'sshd' is not supported"),
            "{example}: {e}"
        );
    }
}

#[test]
fn hello_world_greets_as_clans_own_eval_test_expects() {
    let r = resolve("hello-world-eval-test").unwrap();
    assert_eq!(
        r.machines["jon"].other["environment"]["etc"]["hello"]["text"],
        json!("Good evening World!")
    );
}

#[test]
fn the_guides_complete_example_names_the_module_clan_does_not_ship() {
    let e = resolve("inventory-complete").unwrap_err();
    assert!(e.contains("instance 'wifi' uses module 'wifi'"), "{e}");
    assert!(e.contains("sshd (built-in)"), "{e}");
}

#[test]
fn the_older_services_format_is_refused_with_the_same_configuration_as_instances() {
    let old = r#"{
      meta.name = "old";
      inventory.machines = { jon = { }; sara = { }; };
      inventory.services.borgbackup.instance_1 = {
        roles.client.machines = [ "jon" ];
        roles.server.machines = [ "sara" ];
        config.exclude = [ "*.tmp" ];
        machines.jon.config.startAt = "hourly";
      };
    }"#;
    let e = resolve_nix(old).unwrap_err();
    assert!(
        e.contains("inventory.services is Clan's older format"),
        "{e}"
    );
    // What it shows is what to write: the same clan with it resolves.
    let suggested = &e[e.find("inventory.instances = ").expect("a suggestion")..];
    let new = old.replace(
        &old[old.find("inventory.services").unwrap()..old.rfind('}').unwrap()],
        &format!("{suggested}\n"),
    );
    let r = resolve_nix(&new).unwrap_or_else(|e| panic!("{new}\n{e}"));
    let jon = settings(&r, "jon", "instance_1", "client");
    assert_eq!(
        (jon["exclude"].clone(), jon["startAt"].clone()),
        (json!(["*.tmp"]), json!("hourly"))
    );
    assert_eq!(members(&r, "instance_1", "server"), ["sara"]);
}

#[test]
fn clans_machine_level_names_for_where_a_machine_is_deployed_work() {
    let r = resolve_nix(
        r#"{
          meta.name = "t";
          inventory.machines = { jon = { }; sara.deploy.targetHost = "root@sara"; };
          machines.jon = { clan.core.networking.targetHost = "root@10.0.0.1"; clan.core.networking.buildHost = "root@builder"; clan.core.deployment.requireExplicitUpdate = true; };
        }"#,
    )
    .unwrap();
    let jon = &r.machines["jon"];
    assert_eq!(jon.deploy.target_host.as_deref(), Some("root@10.0.0.1"));
    assert_eq!(jon.deploy.build_host.as_deref(), Some("root@builder"));
    assert!(jon.clan_core.deployment.require_explicit_update);
    assert_eq!(
        r.machines["sara"].deploy.target_host.as_deref(),
        Some("root@sara")
    );
    let e = resolve_nix(
        r#"{
          meta.name = "t";
          inventory.machines.jon.deploy.targetHost = "root@a";
          machines.jon.clan.core.networking.targetHost = "root@b";
        }"#,
    )
    .unwrap_err();
    assert!(e.contains("deploy.targetHost is \"root@a\" in the inventory but clan.core.networking.targetHost is \"root@b\""), "{e}");
}

#[test]
fn module_inputs_clan_core_and_clan_are_the_built_ins_and_others_are_named() {
    for input in ["clan-core", "clan"] {
        let r = resolve_nix(&format!(
            r#"{{ meta.name = "t"; inventory.machines.jon = {{ }};
               inventory.instances.hi = {{ module = {{ name = "hello-world"; input = "{input}"; }}; roles.morning.machines.jon = {{ }}; }}; }}"#
        ))
        .unwrap();
        assert_eq!(
            r.machines["jon"].other["environment"]["etc"]["hello"]["text"],
            "Good morning World!"
        );
    }
    let e = resolve_nix(
        r#"{ meta.name = "t"; inventory.machines.jon = { };
           inventory.instances.hi = { module = { name = "hello-world"; input = "my-flake"; }; roles.morning.machines.jon = { }; }; }"#,
    )
    .unwrap_err();
    assert!(e.contains("Input 'my-flake' is not one clan knows"), "{e}");
    assert!(
        e.contains("\"clan-core\" or \"clan\" (the built-ins)"),
        "{e}"
    );
}
