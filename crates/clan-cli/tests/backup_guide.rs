//! The seed's backup guide clan.nix, evaluated unchanged with real Nix.

mod common;
use common::*;
use serde_json::json;

#[test]
fn alice_laptop_has_client_role_users_instance_state_and_tags() {
    let dir = fixture("backup-guide");
    let m = clan_in(&dir, &["inventory", "show", "alice-laptop", "--json"])
        .ok()
        .json();
    assert_eq!(m["name"], "alice-laptop");
    assert_eq!(m["tags"], json!(["all", "nixos"]));
    let roles: Vec<(String, String)> = m["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["instance"].as_str().unwrap().to_string(),
                a["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("borgbackup", "client"),
        ("user-alice", "default"),
        ("user-root", "default"),
        ("sshd", "server"),
    ] {
        assert!(
            roles.contains(&(expected.0.into(), expected.1.into())),
            "{roles:?}"
        );
    }
    assert_eq!(
        m["clanCore"]["state"]["my-documents"]["folders"],
        json!(["/home/alice/documents", "/home/alice/pictures"])
    );
    let alice = m["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["instance"] == "user-alice")
        .unwrap();
    assert_eq!(alice["settings"]["user"], "alice");
    assert_eq!(alice["module"], "users");
    // Declarations the built-in modules make for this machine.
    let gens = &m["clanCore"]["vars"]["generators"];
    assert_eq!(
        gens["user-password-alice"]["prompts"]["user-password"]["type"],
        "hidden"
    );
    assert_eq!(
        gens["user-password-alice"]["files"]["user-password-hash"]["neededFor"],
        "users"
    );
    assert_eq!(
        gens["borgbackup"]["files"]["borgbackup.ssh.pub"]["secret"],
        false
    );
    assert_eq!(
        gens["borgbackup"]["files"]["borgbackup.ssh"]["mode"],
        "0400"
    );
    let provider = &m["clanCore"]["backups"]["providers"]["borgbackup"];
    assert_eq!(provider["type"], "borg");
    assert_eq!(
        provider["destinations"]["backup-server"]["repo"],
        "ssh://borg@10.231.0.12/var/lib/borgbackup/alice-laptop"
    );
    // Other NixOS settings are kept as data.
    assert_eq!(
        m["other"]["systemd"]["tmpfiles"]["rules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn backup_server_has_server_role_with_its_settings() {
    let dir = fixture("backup-guide");
    let m = clan_in(&dir, &["inventory", "show", "backup-server", "--json"])
        .ok()
        .json();
    let server = m["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["instance"] == "borgbackup")
        .unwrap();
    assert_eq!(server["role"], "server");
    assert_eq!(
        server["settings"],
        json!({"address": "10.231.0.12", "directory": "/var/lib/borgbackup", "appendOnly": true})
    );
    assert_eq!(
        m["clanCore"]["borgbackup"]["server"]["clients"]["alice-laptop"]["path"],
        "/var/lib/borgbackup/alice-laptop"
    );
}

#[test]
fn show_and_list_read_the_guide() {
    let dir = fixture("backup-guide");
    let show = clan_in(&dir, &["show"]).ok().stdout();
    assert!(
        show.contains("Name: MY-BACKUP-CLAN") && show.contains("Domain: mybackupclan.lol"),
        "{show}"
    );
    let list = clan_in(&dir, &["machines", "list", "--json"]).ok().json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice-laptop", "backup-server"]);
}
