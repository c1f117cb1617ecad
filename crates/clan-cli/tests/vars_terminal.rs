//! `clan vars` talking to a person: prompts on a real pseudo-terminal (hidden,
//! confirmed), `vars set` from a terminal and from stdin, `vars fix` after a new
//! admin, and `vars upload`.

mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

use rexpect::process::WaitStatus;

/// A JSON-only clan with user alice (prompted password) on machine m, in git, with
/// one admin; returns (clan dir, admin key file).
fn users_clan(tmp: &std::path::Path) -> (std::path::PathBuf, String) {
    let dir = tmp.join("clan");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("inventory.json"),
        r#"{"meta": {"name": "t"}, "machines": {"m": {"machineClass": "linux"}},
            "instances": {"alice": {"module": {"name": "users"},
              "roles": {"default": {"machines": {"m": {"settings": {"user": "alice"}}}}}}}}"#,
    )
    .unwrap();
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "init"]);
    let key = tmp.join("admin-key.txt").to_str().unwrap().to_string();
    clan_env(
        &dir,
        &["vars", "keygen", "--name", "tester"],
        &[("CLAN_AGE_KEY_FILE", &key)],
    )
    .ok();
    (dir, key)
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `clan ARGS` on a fresh pseudo-terminal.
fn on_pty(dir: &std::path::Path, key: &str, args: &[&str]) -> rexpect::session::PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clan"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("CLAN_DIR")
        .env("CLAN_AGE_KEY_FILE", key);
    rexpect::session::spawn_command(cmd, Some(60_000)).expect("a pty")
}

fn get(dir: &std::path::Path, key: &str, var: &str) -> String {
    clan_env(
        dir,
        &["vars", "get", "m", var],
        &[("CLAN_AGE_KEY_FILE", key)],
    )
    .ok()
    .stdout()
}

#[test]
fn prompts_on_a_terminal_are_hidden_and_confirmed() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, key) = users_clan(tmp.path());
    let secret = "typed-on-a-pty-4c1d";

    let mut p = on_pty(&dir, &key, &["vars", "generate"]);
    p.exp_string("m user-password-alice/user-password").unwrap();
    p.exp_string(": ").unwrap();
    p.send_line(secret).unwrap();
    p.exp_string("(again): ").unwrap();
    p.send_line("a-typo").unwrap();
    p.exp_string("The two entries differ; try again.").unwrap();
    p.exp_string("user-password-alice/user-password").unwrap();
    p.exp_string(": ").unwrap();
    p.send_line(secret).unwrap();
    p.exp_string("(again): ").unwrap();
    p.send_line(secret).unwrap();
    let rest = p.exp_string("Generated m/user-password-alice").unwrap();
    let tail = p.exp_eof().unwrap();
    assert!(
        !rest.contains(secret) && !tail.contains(secret),
        "the hidden answer was echoed: {rest}{tail}"
    );
    assert!(matches!(
        p.process.wait().unwrap(),
        WaitStatus::Exited(_, 0)
    ));
    assert_eq!(get(&dir, &key, "user-password-alice/user-password"), secret);

    // `vars set` on a terminal: hidden and confirmed as well, then committed.
    let mut p = on_pty(
        &dir,
        &key,
        &["vars", "set", "m", "user-password-alice/user-password"],
    );
    p.exp_string("m user-password-alice/user-password: ")
        .unwrap();
    p.send_line("changed-on-a-pty").unwrap();
    p.exp_string("(again): ").unwrap();
    p.send_line("changed-on-a-pty").unwrap();
    let out = p.exp_eof().unwrap();
    assert!(
        out.contains("Set user-password-alice/user-password of m (committed)"),
        "{out}"
    );
    assert!(!out.contains("changed-on-a-pty"), "echoed: {out}");
    assert_eq!(
        get(&dir, &key, "user-password-alice/user-password"),
        "changed-on-a-pty"
    );
    assert_eq!(
        git(&dir, &["log", "-1", "--format=%s"]).trim(),
        "vars: set user-password-alice/user-password (machine: m)"
    );
}

#[test]
fn without_a_terminal_prompts_fail_cleanly_and_set_reads_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, key) = users_clan(tmp.path());
    let env = [("CLAN_AGE_KEY_FILE", key.as_str())];
    let err = clan_env(&dir, &["vars", "generate"], &env).fails();
    assert!(
        err.contains("prompt 'user-password'")
            && err.contains("no terminal")
            && err.contains("--prompt user-password-alice/user-password=FILE"),
        "{err}"
    );
    assert!(
        !dir.join("secrets/per-machine").exists(),
        "nothing was written"
    );

    let set = |value: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clan"))
            .args(["vars", "set", "m", "user-password-alice/user-password"])
            .current_dir(&dir)
            .env("CLAN_AGE_KEY_FILE", &key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(value).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = set(b"from-stdin\nsecond line");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        get(&dir, &key, "user-password-alice/user-password"),
        "from-stdin\nsecond line",
        "stdin is taken verbatim"
    );
    let commits = git(&dir, &["rev-list", "--count", "HEAD"]);
    let out = set(b"");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is empty; nothing changed"));
    assert_eq!(git(&dir, &["rev-list", "--count", "HEAD"]), commits);
    assert_eq!(
        get(&dir, &key, "user-password-alice/user-password"),
        "from-stdin\nsecond line"
    );
}

#[test]
fn a_new_admin_reads_secrets_after_fix_and_upload_materialises_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, key) = users_clan(tmp.path());
    let env = [("CLAN_AGE_KEY_FILE", key.as_str())];
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "alices-password").unwrap();
    let arg = format!("user-password-alice/user-password={}", pw.display());
    clan_env(&dir, &["vars", "generate", "--prompt", &arg], &env).ok();

    let bob_key = tmp.path().join("bob.txt").to_str().unwrap().to_string();
    let bob = [("CLAN_AGE_KEY_FILE", bob_key.as_str())];
    clan_env(&dir, &["vars", "keygen", "--name", "bob"], &bob).ok();
    let check = clan_env(&dir, &["vars", "check"], &env);
    let listed = check.stdout();
    let err = check.fails();
    assert!(
        listed.contains(
            "not encrypted to its current readers: m: user-password-alice/user-password-hash"
        ) && listed.contains("m: machine key")
            && err.contains("`clan vars fix`"),
        "{listed}{err}"
    );
    let denied = clan_env(
        &dir,
        &["vars", "get", "m", "user-password-alice/user-password"],
        &bob,
    )
    .fails();
    assert!(denied.contains("cannot decrypt"), "{denied}");
    let fixed = clan_env(&dir, &["vars", "fix"], &env).ok().stdout();
    assert!(
        fixed.contains("re-encrypted: m: user-password-alice/user-password\n"),
        "{fixed}"
    );
    assert_eq!(
        clan_env(
            &dir,
            &["vars", "get", "m", "user-password-alice/user-password"],
            &bob
        )
        .ok()
        .stdout(),
        "alices-password"
    );
    clan_env(&dir, &["vars", "check"], &env).ok();
    let again = clan_env(&dir, &["vars", "fix"], &bob).ok().stdout();
    assert!(
        again.contains("Every secret is encrypted to its current readers"),
        "{again}"
    );

    // Upload: the hash (deployed) is there with its mode, the clear password
    // (deploy = false) is not.
    let out = tmp.path().join("upload");
    let done = clan_env(
        &dir,
        &["vars", "upload", "m", "--directory", out.to_str().unwrap()],
        &bob,
    )
    .ok()
    .stdout();
    assert!(done.contains("Wrote 2 files for m"), "{done}");
    let hash =
        std::fs::read_to_string(out.join("vars/user-password-alice/user-password-hash")).unwrap();
    assert!(hash.starts_with("$6$"), "{hash}");
    assert!(!out.join("vars/user-password-alice/user-password").exists());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["files"][1]["neededFor"], "users");
    assert_eq!(manifest["files"][1]["mode"], "0400");
}
