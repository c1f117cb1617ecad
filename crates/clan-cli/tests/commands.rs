//! Point 2 and 8: `clan init`, finding the clan, machines create/delete, completions.

mod common;
use common::*;
use std::process::Command;

fn git_log(dir: &std::path::Path) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["log", "--format=%s"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn init_create_list_delete_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("home-clan");
    clan_in(
        tmp.path(),
        &[
            "init",
            dir.to_str().unwrap(),
            "--name",
            "home",
            "--domain",
            "home.example",
        ],
    )
    .ok();
    for f in ["clan.nix", "inventory.json", "machines", "modules", ".git"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    assert_eq!(git_log(&dir), "clan: init home\n");
    let again = clan_in(tmp.path(), &["init", dir.to_str().unwrap()]).fails();
    assert!(again.contains("already holds a clan"), "{again}");

    // Found from a subdirectory.
    let show = clan_in(&dir.join("machines"), &["show"]).ok().stdout();
    assert!(
        show.contains("Name: home") && show.contains("Domain: home.example"),
        "{show}"
    );

    clan_in(
        &dir,
        &[
            "machines",
            "create",
            "alice-laptop",
            "--tags",
            "laptop",
            "--target-host",
            "root@192.0.2.1",
            "--class",
            "linux",
        ],
    )
    .ok();
    assert_eq!(
        git_log(&dir).lines().next(),
        Some("machines: add alice-laptop")
    );
    let list = clan_in(&dir, &["machines", "list", "--json"]).ok().json();
    assert_eq!(list[0]["name"], "alice-laptop");
    assert_eq!(list[0]["machineClass"], "linux");
    assert_eq!(list[0]["deploy"]["targetHost"], "root@192.0.2.1");
    let dup = clan_in(&dir, &["machines", "create", "alice-laptop"]).fails();
    assert!(dup.contains("already exists"), "{dup}");
    let bad = clan_in(&dir, &["machines", "create", "my/machine"]).fails();
    assert!(bad.contains("invalid machine name 'my/machine'"), "{bad}");

    let typo = clan_in(&dir, &["machines", "delete", "alice-lapotp"]).fails();
    assert!(typo.contains("Did you mean: alice-laptop?"), "{typo}");
    clan_in(&dir, &["machines", "delete", "alice-laptop"]).ok();
    assert_eq!(
        git_log(&dir).lines().next(),
        Some("machines: delete alice-laptop")
    );
    assert_eq!(
        clan_in(&dir, &["machines", "list", "--json"]).ok().json(),
        serde_json::json!([])
    );
}

#[test]
fn outside_a_clan_the_error_says_how_to_fix_it() {
    let tmp = tempfile::tempdir().unwrap();
    let err = clan_in(tmp.path(), &["machines", "list"]).fails();
    assert!(
        err.contains("no clan found") && err.contains("clan init") && err.contains("--dir"),
        "{err}"
    );
    let err = clan_env(
        tmp.path(),
        &["show"],
        &[("CLAN_DIR", tmp.path().to_str().unwrap())],
    )
    .fails();
    assert!(err.contains("(given by CLAN_DIR)"), "{err}");
}

#[test]
fn help_and_completions() {
    let tmp = tempfile::tempdir().unwrap();
    let help = clan_in(tmp.path(), &["--help"]).ok().stdout();
    for cmd in [
        "init",
        "show",
        "machines",
        "inventory",
        "modules",
        "schema",
        "completions",
    ] {
        assert!(help.contains(cmd), "{help}");
    }
    let bash = clan_in(tmp.path(), &["completions", "bash"]).ok().stdout();
    assert!(bash.contains("_clan()"), "{}", &bash[..200.min(bash.len())]);
}

/// Deleting a machine removes all it owns in the clan (its directory, vars,
/// secrets and key), and is refused, changing nothing, while clan.nix still names it.
#[test]
fn delete_removes_what_the_machine_owns_and_refuses_while_clan_nix_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    clan_in(tmp.path(), &["init", dir.to_str().unwrap(), "--name", "t"]).ok();
    for m in ["gone", "named"] {
        clan_in(&dir, &["machines", "create", m, "--class", "linux"]).ok();
        for owned in [
            format!("machines/{m}/configuration.nix"),
            format!("vars/per-machine/{m}/gen/file/value"),
            format!("secrets/per-machine/{m}/gen/secret.age"),
            format!("secrets/machines/{m}/key.pub"),
        ] {
            let p = dir.join(owned);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "{ }\n").unwrap();
        }
    }
    std::fs::write(
        dir.join("clan.nix"),
        r#"{
          meta.name = "t";
          inventory.instances.hi = { module.name = "hello-world"; roles.greeter.machines.named = { }; };
        }"#,
    )
    .unwrap();
    Command::new("git")
        .args(["add", "-A"])
        .current_dir(&dir)
        .status()
        .unwrap();
    Command::new("git")
        .args(["commit", "-qm", "files"])
        .current_dir(&dir)
        .status()
        .unwrap();

    clan_in(&dir, &["machines", "delete", "gone"]).ok();
    for owned in [
        "machines/gone",
        "vars/per-machine/gone",
        "secrets/per-machine/gone",
        "secrets/machines/gone",
    ] {
        assert!(!dir.join(owned).exists(), "{owned} is left");
    }
    assert_eq!(git_log(&dir).lines().next(), Some("machines: delete gone"));
    let status = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(status.stdout.is_empty(), "all committed");

    let before = git_log(&dir);
    let err = clan_in(&dir, &["machines", "delete", "named"]).fails();
    assert!(
        err.contains("instance 'hi', role 'greeter' names machine 'named'"),
        "{err}"
    );
    assert_eq!(git_log(&dir), before);
    for owned in ["machines/named", "secrets/machines/named"] {
        assert!(dir.join(owned).exists(), "{owned} was removed");
    }
}
