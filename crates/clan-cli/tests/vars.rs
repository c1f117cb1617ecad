//! `clan vars` on the seed's backup guide: every var the four instances need, a
//! no-op second run, a passing check, and a prompted secret that appears nowhere in
//! the clan in the clear.

mod common;
use common::*;
use std::process::Command;

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_backup_guide_gets_every_var_and_secrets_stay_encrypted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clan");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture("backup-guide/clan.nix"), dir.join("clan.nix")).unwrap();
    git(&dir, &["init", "-q"]);
    git(
        &dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
    );
    let key = tmp.path().join("admin-key.txt");
    let env = [("CLAN_AGE_KEY_FILE", key.to_str().unwrap())];
    clan_env(&dir, &["vars", "keygen", "--name", "tester"], &env).ok();
    assert!(dir.join("secrets/admins/tester.pub").is_file());

    // Without answers, nothing runs and the error says how to answer.
    let err = clan_env(&dir, &["vars", "generate"], &env).fails();
    assert!(
        err.contains("prompt 'user-password'") && err.contains("--prompt user-password-"),
        "{err}"
    );
    assert!(
        !dir.join("vars").exists() && !dir.join("secrets/per-machine").exists(),
        "nothing was generated"
    );

    let marker = "poison-marker-7f3a9c1e";
    let alice_pw = tmp.path().join("alice-pw");
    std::fs::write(&alice_pw, marker).unwrap();
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let alice_arg = format!("user-password-alice/user-password={}", alice_pw.display());
    let root_arg = format!("user-password-root/user-password={}", empty.display());
    let run = clan_env(
        &dir,
        &[
            "vars", "generate", "--prompt", &alice_arg, "--prompt", &root_arg,
        ],
        &env,
    )
    .ok();
    for out in [run.stdout(), run.stderr()] {
        assert!(
            !out.contains(marker),
            "the secret leaked into clan's output"
        );
    }

    let check = clan_env(&dir, &["vars", "check"], &env).ok().stdout();
    assert!(check.contains("All vars are present"), "{check}");
    let commits = git(&dir, &["rev-list", "--count", "HEAD"]);
    let again = clan_env(&dir, &["vars", "generate"], &env).ok().stdout();
    assert!(again.contains("Every var is up to date"), "{again}");
    assert_eq!(
        git(&dir, &["rev-list", "--count", "HEAD"]),
        commits,
        "a second run makes no commit"
    );

    let list = clan_env(&dir, &["vars", "list", "alice-laptop"], &env)
        .ok()
        .stdout();
    for line in [
        "borgbackup/borgbackup.ssh.pub: ssh-ed25519 ",
        "borgbackup/borgbackup.repokey: ********",
        "user-password-alice/user-password: ********",
        "openssh/ssh.id_ed25519: ********",
    ] {
        assert!(list.contains(line), "{line} in\n{list}");
    }
    assert!(!list.contains(marker));
    let got = clan_env(
        &dir,
        &[
            "vars",
            "get",
            "alice-laptop",
            "user-password-alice/user-password",
        ],
        &env,
    )
    .ok()
    .stdout();
    assert_eq!(got, marker);
    let hash = clan_env(
        &dir,
        &[
            "vars",
            "get",
            "alice-laptop",
            "user-password-alice/user-password-hash",
        ],
        &env,
    )
    .ok()
    .stdout();
    let salt = hash.split('$').nth(2).expect("a $6$salt$hash");
    let again = Command::new("mkpasswd")
        .args(["-m", "sha-512", "-S", salt, marker])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        hash,
        "the hash is the password's"
    );
    let root_pw = clan_env(
        &dir,
        &[
            "vars",
            "get",
            "backup-server",
            "user-password-root/user-password",
        ],
        &env,
    )
    .ok()
    .stdout();
    assert_eq!(
        root_pw.split('-').count(),
        4,
        "an empty answer generated a password: {root_pw}"
    );

    let typo = clan_env(
        &dir,
        &[
            "vars",
            "get",
            "alice-laptop",
            "user-password-alice/user-pasword",
        ],
        &env,
    )
    .fails();
    assert!(
        typo.contains("Did you mean: user-password-alice/user-password"),
        "{typo}"
    );

    // The marker is nowhere in the working tree or history in the clear.
    let grep = Command::new("grep")
        .args(["-r", "-l", marker])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "in the working tree: {}",
        String::from_utf8_lossy(&grep.stdout)
    );
    let history = git(&dir, &["log", "-p", "--all", "--binary"]);
    assert!(
        history.len() > 1000 && !history.contains(marker),
        "the marker is in git history"
    );
}
