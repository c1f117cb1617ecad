//! The embedded engine's repository over SFTP (a real OpenSSH server) and on a
//! restic REST server (`rclone serve restic`), both on loopback, started by the test
//! and stopped when it ends.

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Stdio};

use clan_lab::{Server, Sshd, free_port, wait_listening};

use clan_backup::event::Silent;
use clan_backup::{Reason, RestoreOptions, ops};
use serde_json::{Value, json};

fn round_trip(root: &Path, provider: Value) {
    let data = root.join("app");
    nasty_tree(&data);
    let m = machine(
        root,
        vec![("app", state(&[&data]))],
        vec![("restic", provider)],
    );
    let b = ops::create(&m, None, Reason::Explicit, &Silent)
        .unwrap()
        .pop()
        .unwrap()
        .1
        .unwrap();
    let before = picture(&data);
    damage(&data);
    ops::restore(
        &m,
        "restic",
        &b.backup.name,
        &RestoreOptions::default(),
        &Silent,
    )
    .unwrap();
    let after = picture(&data);
    assert!(
        after == before,
        "restore is not exact:\n{}",
        diff(&before, &after)
    );
    assert_eq!(
        ops::list(&m, None).unwrap().pop().unwrap().1.unwrap().len(),
        2,
        "backup and safety backup"
    );
    ops::check(&m, None, true)
        .unwrap()
        .pop()
        .unwrap()
        .1
        .unwrap();
}

#[test]
fn restic_repository_over_sftp() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let ssh = Sshd::start(root);
    let (port, client_key, known) = (ssh.port, ssh.client_key.clone(), ssh.known_hosts.clone());
    let repo_dir = root.join("sftp-repo");
    let provider = json!({
        "type": "restic",
        "repository": format!("sftp://root@127.0.0.1:{port}{}", repo_dir.display()),
        "passwordFile": secret(root),
        "sshKeyFile": client_key,
        "sshKnownHostsFile": known,
    });
    round_trip(root, provider.clone());
    assert!(
        repo_dir.join("config").is_file(),
        "the repository lives on the SFTP server"
    );

    // A server whose host key is not the known one is refused.
    std::fs::write(
        &known,
        format!(
            "[127.0.0.1]:{port} {}",
            std::fs::read_to_string(root.join("client_key.pub")).unwrap()
        ),
    )
    .unwrap();
    let data = root.join("app");
    let m = machine(
        root,
        vec![("app", state(&[&data]))],
        vec![("restic", provider)],
    );
    let err = ops::list(&m, None).unwrap().pop().unwrap().1.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("could not reach the SFTP server")
            && msg.contains(&known.display().to_string()),
        "{msg}"
    );
}

#[test]
fn restic_repository_on_a_rest_server() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let port = free_port();
    let served = root.join("served");
    std::fs::create_dir_all(&served).unwrap();
    let mut server = Server(
        Command::new("rclone")
            .args(["serve", "restic", "--addr", &format!("127.0.0.1:{port}")])
            .arg(&served)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port, &mut server);
    let provider = json!({
        "type": "restic",
        "repository": format!("rest:http://127.0.0.1:{port}/clan-repo/"),
        "passwordFile": secret(root),
    });
    round_trip(root, provider);
    assert!(
        served.join("clan-repo/config").is_file(),
        "the repository lives behind the REST server"
    );
}

/// A destination as Clan's borgbackup README writes one (`repo =
/// "user@host:/path"`, the port and key in `rsh = "ssh -oPort=… -i …"`): borg
/// reaches the server through exactly that command.
#[test]
fn borg_repository_over_ssh() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let ssh = Sshd::start(root);
    let repo = root.join("borg-over-ssh");
    let rsh = format!(
        "ssh -oPort={} -i {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes",
        ssh.port,
        ssh.client_key.display(),
        ssh.known_hosts.display()
    );
    let provider = json!({
        "type": "borg",
        "passphraseFile": secret(root),
        "destinations": {"storagebox": {"repo": format!("root@127.0.0.1:{}", repo.display()), "rsh": rsh}},
    });
    round_trip(root, provider);
    assert!(
        repo.join("config").is_file(),
        "the repository lives behind the SSH server"
    );
}
