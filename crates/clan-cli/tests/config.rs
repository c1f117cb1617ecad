//! `clan config --machine M [OPTION [VALUE]]`: the seed's option paths and clan's,
//! values checked against the option's type, written to inventory.json or the
//! machine's JSON layer, committed; what clan.nix sets is shown and left alone.

mod common;
use common::*;

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn clan() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    clan_in(tmp.path(), &["init", "c", "--name", "t"]).ok();
    let dir = tmp.path().join("c");
    std::fs::write(
        dir.join("clan.nix"),
        r#"{
          meta.name = "t";
          inventory.machines.fixed = { deploy.targetHost = "root@from-nix"; machineClass = "linux"; };
          machines.fixed.clan.core.deployment.requireExplicitUpdate = true;
        }"#,
    )
    .unwrap();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-qm", "clan.nix"]);
    clan_in(
        &dir,
        &["machines", "create", "my-machine", "--class", "linux"],
    )
    .ok();
    tmp
}

#[test]
fn the_seeds_option_paths_are_set_checked_and_committed() {
    let tmp = clan();
    let dir = tmp.path().join("c");
    for (option, value) in [
        ("clan.networking.targetHost", "root@host_or_ip"),
        ("clan.networking.buildHost", "root@builder"),
        ("clan.deployment.requireExplicitUpdate", "true"),
        ("tags", r#"["web","eu"]"#),
    ] {
        let out = clan_in(&dir, &["config", "--machine", "my-machine", option, value])
            .ok()
            .stdout();
        assert!(out.contains("(committed)"), "{out}");
    }
    let inventory: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("inventory.json")).unwrap())
            .unwrap();
    let m = &inventory["machines"]["my-machine"];
    assert_eq!(m["deploy"]["targetHost"], "root@host_or_ip");
    assert_eq!(m["deploy"]["buildHost"], "root@builder");
    assert_eq!(m["tags"], serde_json::json!(["web", "eu"]));
    let text = std::fs::read_to_string(dir.join("inventory.json")).unwrap();
    assert!(
        text.find("\"buildHost\"").unwrap() < text.find("\"targetHost\"").unwrap(),
        "keys are sorted:\n{text}"
    );
    let layer =
        std::fs::read_to_string(dir.join("machines/my-machine/configuration.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&layer).unwrap(),
        serde_json::json!({"clan": {"core": {"deployment": {"requireExplicitUpdate": true}}}})
    );
    let log = git(&dir, &["log", "--format=%s"]);
    assert!(
        log.contains("machines: set my-machine clan.core.deployment.requireExplicitUpdate"),
        "{log}"
    );
    assert!(git(&dir, &["status", "--porcelain"]).is_empty());

    // The resolved configuration has the values: `machines update` now needs the
    // machine named, and `config` shows value and place.
    let shown = clan_in(
        &dir,
        &[
            "config",
            "--machine",
            "my-machine",
            "clan.core.deployment.requireExplicitUpdate",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(shown["value"], true);
    assert_eq!(
        shown["set_in"],
        serde_json::json!(["machines/my-machine/configuration.json"])
    );
    let all = clan_in(&dir, &["config", "--machine", "my-machine", "--json"])
        .ok()
        .json();
    let target = all
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["option"] == "deploy.targetHost")
        .unwrap();
    assert_eq!(target["type"], "nullOr (str)");
    assert_eq!(target["value"], "root@host_or_ip");
    assert_eq!(target["default"], serde_json::Value::Null);
    let inv = clan_in(&dir, &["inventory", "show", "my-machine", "--json"])
        .ok()
        .stdout();
    assert!(inv.contains("root@host_or_ip"), "{inv}");
}

#[test]
fn bad_values_and_what_clan_nix_sets_change_nothing() {
    let tmp = clan();
    let dir = tmp.path().join("c");
    let head = git(&dir, &["rev-parse", "HEAD"]);
    let before = std::fs::read_to_string(dir.join("inventory.json")).unwrap();

    let err = clan_in(
        &dir,
        &[
            "config",
            "--machine",
            "my-machine",
            "clan.deployment.requireExplicitUpdate",
            "maybe",
        ],
    )
    .fails();
    assert!(
        err.contains("clan.core.deployment.requireExplicitUpdate = \"maybe\"")
            && err.contains("boolean"),
        "names the option, the value and the rule: {err}"
    );
    let err = clan_in(
        &dir,
        &["config", "--machine", "my-machine", "machineClass", "plan9"],
    )
    .fails();
    assert!(
        err.contains("machineClass") && err.contains("plan9") && err.contains("linux"),
        "{err}"
    );
    let err = clan_in(
        &dir,
        &[
            "config",
            "--machine",
            "my-machine",
            "clan.core.state.app.folders",
            r#"["srv/app"]"#,
        ],
    )
    .fails();
    assert!(
        err.contains("no '.' or '..'") || err.contains("does not match"),
        "{err}"
    );
    let err = clan_in(
        &dir,
        &[
            "config",
            "--machine",
            "my-machine",
            "clan.networking.targetHots",
            "x",
        ],
    )
    .fails();
    assert!(
        err.contains("Did you mean: clan.networking.targetHost"),
        "{err}"
    );

    // clan.nix sets these: shown with their place, and not changed from here.
    let out = clan_in(&dir, &["config", "--machine", "fixed", "deploy.targetHost"]).ok();
    assert_eq!(out.stdout().trim(), "\"root@from-nix\"");
    assert!(out.stderr().contains("set in clan.nix"), "{}", out.stderr());
    for (option, value) in [
        ("clan.networking.targetHost", "root@elsewhere"),
        ("clan.deployment.requireExplicitUpdate", "false"),
    ] {
        let err = clan_in(&dir, &["config", "--machine", "fixed", option, value]).fails();
        assert!(
            err.contains("set in") && err.contains("clan.nix") && err.contains("cannot change it"),
            "{err}"
        );
    }

    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), head, "nothing committed");
    assert_eq!(
        std::fs::read_to_string(dir.join("inventory.json")).unwrap(),
        before
    );
    assert!(!dir.join("machines/my-machine/configuration.json").exists());
    assert!(!dir.join("machines/fixed/configuration.json").exists());
    assert!(git(&dir, &["status", "--porcelain"]).is_empty());
}
