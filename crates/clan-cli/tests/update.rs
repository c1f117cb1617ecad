//! `clan machines update`: which machines, and how failures are reported. (Updates
//! that reach real machines are in lab.rs.)

mod common;
use common::*;

#[test]
fn update_selects_machines_reports_each_and_fails_if_any_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clan");
    std::fs::create_dir_all(&dir).unwrap();
    // Nothing listens on 127.0.0.2:1: a Linux machine there fails at once.
    std::fs::write(
        dir.join("clan.nix"),
        r#"{
          meta.name = "t";
          inventory.machines = {
            desktop = { };
            gone = { deploy.targetHost = "root@127.0.0.2:1"; machineClass = "linux"; };
            vault = { deploy.targetHost = "root@127.0.0.2:1"; machineClass = "linux"; };
          };
          machines.vault.clan.core.deployment.requireExplicitUpdate = true;
        }"#,
    )
    .unwrap();
    let key = tmp.path().join("admin-key.txt");
    let env = [("CLAN_AGE_KEY_FILE", key.to_str().unwrap())];
    std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(&dir)
        .status()
        .unwrap();
    clan_env(&dir, &["vars", "keygen", "--name", "t"], &env).ok();

    let run = clan_env(&dir, &["machines", "update"], &env);
    let out = run.stdout();
    let err = run.fails();
    // Every machine gets its line; one failing does not stop the others.
    assert!(
        out.contains(
            "desktop: FAILED: NixOS machines are built with the clan's nixpkgs, and the clan names none"
        ),
        "{out}"
    );
    assert!(
        out.contains("gone: FAILED: cannot reach root@127.0.0.2:1 over SSH"),
        "{out}"
    );
    assert!(
        !out.contains("vault"),
        "requireExplicitUpdate is skipped: {out}"
    );
    assert!(
        err.contains("2 of 2 machines failed: desktop, gone"),
        "{err}"
    );

    // Named, it is updated (and here fails to be reached).
    let run = clan_env(&dir, &["machines", "update", "vault"], &env);
    assert!(
        run.stdout().contains("vault: FAILED: cannot reach"),
        "{}",
        run.stdout()
    );
    // Tags select too: only Linux machines, none of them explicit-only.
    let run = clan_env(&dir, &["machines", "update", "--tags", "linux"], &env);
    let out = run.stdout();
    assert!(
        out.contains("gone: FAILED") && !out.contains("desktop") && !out.contains("vault"),
        "{out}"
    );
}

/// The clan is evaluated once per `machines update`: one evaluation of the
/// inventory and one resolution of the machines (it was six: the update, the vars
/// generation and the apply each evaluated it again).
#[test]
fn update_evaluates_the_clan_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clan");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("clan.nix"),
        r#"{
          meta.name = "t";
          inventory.machines.gone = { deploy.targetHost = "root@127.0.0.2:1"; machineClass = "linux"; };
          machines.gone.clan.core.state.app.folders = [ "/srv/app" ];
        }"#,
    )
    .unwrap();
    // nix-instantiate behind a wrapper that counts its runs.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v nix-instantiate"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let log = tmp.path().join("evaluations");
    let wrapper = bin.join("nix-instantiate");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho run >> {}\nexec {} \"$@\"\n",
            log.display(),
            real.trim()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let key = tmp.path().join("admin-key.txt");
    let env = [
        ("CLAN_AGE_KEY_FILE", key.to_str().unwrap()),
        ("PATH", path.as_str()),
    ];
    std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(&dir)
        .status()
        .unwrap();
    clan_env(&dir, &["vars", "keygen", "--name", "t"], &env).ok();
    let _ = std::fs::remove_file(&log);

    let run = clan_env(&dir, &["machines", "update"], &env);
    assert!(
        run.stdout().contains("gone: FAILED: cannot reach"),
        "{}",
        run.stdout()
    );
    let evaluations = std::fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(evaluations, 2, "inventory once, machines once");
}

#[test]
fn machines_list_check_says_which_machines_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clan");
    std::fs::create_dir_all(&dir).unwrap();
    // This machine is reached without SSH; nothing listens on 127.0.0.2:1.
    std::fs::write(
        dir.join("clan.nix"),
        r#"{
          meta.name = "t";
          inventory.machines = {
            here = { deploy.targetHost = "root@localhost"; machineClass = "linux"; };
            gone = { deploy.targetHost = "root@127.0.0.2:1"; machineClass = "linux"; };
          };
        }"#,
    )
    .unwrap();
    let run = clan_env(&dir, &["machines", "list", "--check"], &[]);
    let out = run.stdout();
    let err = run.fails();
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {out}"))
            .to_string()
    };
    assert!(line("here").contains(" yes ("), "{out}");
    assert!(
        line("gone").contains("no: cannot reach root@127.0.0.2:1 over SSH"),
        "{out}"
    );
    assert!(err.contains("1 of 2 machines do not answer: gone"), "{err}");

    let run = clan_env(&dir, &["machines", "list", "--check", "--json"], &[]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    run.fails();
    let errors: Vec<_> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["reachable"]["error"].is_null(),
            )
        })
        .collect();
    assert_eq!(errors, [("gone", false), ("here", true)]);
}
