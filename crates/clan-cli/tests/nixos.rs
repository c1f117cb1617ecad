//! NixOS machines' systems, built with real Nix from the clan's modules, clan.core's
//! generated options and the generated settings, by the nixpkgs test double
//! (tests/fixtures/nixpkgs-double: a small module system and a toplevel look-alike
//! built with busybox). Deploying them is tested in the lab (lab.rs).

mod common;
use common::*;

use std::path::{Path, PathBuf};

/// A clan with NixOS machine `m` (not reachable: these tests only build) and
/// `module` as its own module.
fn clan(root: &Path, module: &str) -> PathBuf {
    let dir = root.join("clan");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("clan.nix"),
        format!(
            r#"{{
              meta.name = "nx";
              meta.nixpkgs = "{}";
              inventory.machines.m = {{ machineClass = "nixos"; deploy.targetHost = "root@192.0.2.7"; }};
              machines.m = {module};
            }}"#,
            fixture("nixpkgs-double").display()
        ),
    )
    .unwrap();
    clan_as(root, &dir, &["vars", "keygen"]).ok();
    dir
}

/// `clan ARGS` as the admin whose key is in `root`.
fn clan_as(root: &Path, dir: &Path, args: &[&str]) -> Run {
    let key = root.join("admin-key.txt").display().to_string();
    // This host builds without build users or binary caches.
    let env = [
        ("CLAN_AGE_KEY_FILE", key.as_str()),
        ("NIX_CONFIG", "build-users-group =\nsubstituters ="),
    ];
    clan_env(dir, args, &env)
}

fn dry_run(root: &Path, dir: &Path) -> Run {
    clan_as(root, dir, &["machines", "update", "m", "--dry-run"])
}

#[test]
fn a_nixos_machines_system_is_built_from_its_modules_and_the_resolved_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = clan(
        tmp.path(),
        r#"{ lib, ... }: {
          clan.core.state.app.folders = [ "/srv/app" ];
          clan.core.backups.providers.r = { type = "restic"; repository = "/srv/repo"; passwordFile = "/run/pw"; startAt = "daily"; };
          clan.core.sshd.authorizedKeys.admin = "ssh-ed25519 AAAAadmin admin@x";
          clan.core.users.alice = { groups = [ "wheel" ]; authorizedKeys = [ "ssh-ed25519 AAAAalice alice@x" ]; };
          clan.core.timezone = "Europe/Berlin";
          system.activationScripts.greet = lib.mkDefault "echo hi";
        }"#,
    );
    let run = dry_run(tmp.path(), &dir).ok();
    let out = run.stdout();
    let system = out
        .split_whitespace()
        .find(|w| w.starts_with("/nix/store/") && w.ends_with("-nixos-system-m-double"))
        .unwrap_or_else(|| panic!("a built system in {out}"));
    assert!(
        out.contains("--dry-run: not copied, not activated"),
        "{out}"
    );

    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(system).join("etc/nixos-double/configuration.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["networking"]["hostName"], "m");
    assert_eq!(config["time"]["timeZone"], "Europe/Berlin");
    assert_eq!(config["services"]["openssh"]["enable"], true);
    let users = &config["users"]["users"];
    assert_eq!(
        users["root"]["openssh"]["authorizedKeys"]["keys"],
        serde_json::json!(["ssh-ed25519 AAAAadmin admin@x"])
    );
    assert_eq!(users["alice"]["isNormalUser"], true);
    assert_eq!(users["alice"]["extraGroups"], serde_json::json!(["wheel"]));
    let units = &config["systemd"];
    assert_eq!(
        units["services"]["clan-backup-r"]["serviceConfig"]["ExecStart"],
        "/usr/local/bin/clan __runtime --timer r"
    );
    assert_eq!(
        units["timers"]["clan-backup-r"]["timerConfig"]["OnCalendar"],
        "daily"
    );
    assert_eq!(
        units["services"]["clan-drill-r"]["serviceConfig"]["IOSchedulingClass"],
        "idle"
    );
    // clan.core as NixOS evaluated it, with the generated options' defaults.
    assert_eq!(
        config["clan"]["core"]["state"]["app"]["folders"],
        serde_json::json!(["/srv/app"])
    );
    assert_eq!(config["clan"]["core"]["deployment"]["confirmTimeout"], 30);
    // The runtime's configuration (it may name secrets' places) stays out of the store.
    assert_eq!(config["environment"]["etc"], serde_json::json!({}));
    let activate = std::fs::read_to_string(Path::new(system).join("activate")).unwrap();
    assert!(activate.contains("echo hi"), "{activate}");
    // A real closure: the system, its etc and activation, and busybox.
    let closure = std::process::Command::new("nix-store")
        .args(["--query", "--requisites", system])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&closure.stdout).lines().count(), 4);
}

#[test]
fn a_setting_no_nixos_option_declares_fails_the_build_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = clan(tmp.path(), r#"{ ... }: { services.nginx.enable = true; }"#);
    let run = dry_run(tmp.path(), &dir);
    let out = run.stdout();
    run.fails();
    assert!(
        out.contains("m: FAILED: building the system of m")
            && out.contains("The option `services.nginx' does not exist. Definition in"),
        "{out}"
    );
}

#[test]
fn a_nixos_machine_with_a_wrongly_typed_setting_fails_with_the_option_and_type() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = clan(tmp.path(), r#"{ ... }: { time.timeZone = 42; }"#);
    let run = dry_run(tmp.path(), &dir);
    let out = run.stdout();
    run.fails();
    assert!(
        out.contains("A definition for option `time.timeZone' is not of type `null or string'"),
        "{out}"
    );
}

#[test]
fn a_module_reads_where_a_generated_file_is_deployed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = clan(
        tmp.path(),
        r#"{ config, ... }: {
          clan.core.vars.generators.greeting = {
            files.text = { secret = false; };
            script = "echo hello > $out/text";
          };
          system.activationScripts.greet = "cat ${config.clan.core.vars.generators.greeting.files.text.path}";
        }"#,
    );
    let out = dry_run(tmp.path(), &dir).ok().stdout();
    let system = out
        .split_whitespace()
        .find(|w| w.starts_with("/nix/store/"))
        .unwrap_or_else(|| panic!("a built system in {out}"));
    let activate = std::fs::read_to_string(Path::new(system).join("activate")).unwrap();
    assert!(
        activate.contains("cat /var/lib/clan/secrets/vars/greeting/text"),
        "{activate}"
    );
}

#[test]
fn a_nixpkgs_that_is_none_is_refused_naming_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = clan(tmp.path(), "{ }");
    let text = std::fs::read_to_string(dir.join("clan.nix")).unwrap();
    let double = fixture("nixpkgs-double").display().to_string();
    std::fs::write(
        dir.join("clan.nix"),
        text.replace(&double, "./no-such-nixpkgs"),
    )
    .unwrap();
    let run = dry_run(tmp.path(), &dir);
    let out = run.stdout();
    run.fails();
    assert!(
        out.contains("m: FAILED: meta.nixpkgs = \"./no-such-nixpkgs\":")
            && out.contains("is not a nixpkgs (it has no nixos/ directory)"),
        "{out}"
    );
}
