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
    // A mistyped prompt name is refused, not ignored.
    let typo = format!("user-password-alice/user-pasword={}", alice_pw.display());
    let err = clan_env(&dir, &["vars", "generate", "--prompt", &typo], &env).fails();
    assert!(
        err.contains("--prompt user-password-alice/user-pasword")
            && err.contains("Did you mean: user-password-alice/user-password"),
        "{err}"
    );
    assert!(!dir.join("vars").exists(), "nothing was generated");
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

    // A damaged secret (emptied, or overwritten with garbage) is named by `check`,
    // and `get` says it is damaged and what to do, not that the key is wrong.
    let secret = |rel: &str| {
        walk(&dir.join("secrets"))
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(rel))
            .unwrap()
    };
    let password = secret("user-password-alice/user-password.age");
    std::fs::write(&password, "").unwrap();
    std::fs::write(secret("borgbackup/borgbackup.repokey.age"), "garbage\n").unwrap();
    let run = clan_env(&dir, &["vars", "check"], &env);
    let out = run.stdout();
    run.fails();
    assert!(
        out.contains("damaged: ") && out.contains("user-password.age (the file is empty)"),
        "{out}"
    );
    assert!(
        out.contains("borgbackup.repokey.age (not a valid age file"),
        "{out}"
    );
    let err = clan_env(
        &dir,
        &[
            "vars",
            "get",
            "alice-laptop",
            "user-password-alice/user-password",
        ],
        &env,
    )
    .fails();
    assert!(
        err.contains("is damaged: the file is empty") && err.contains("git log"),
        "{err}"
    );

    // A private key others can read is refused, as ssh refuses one.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = clan_env(
        &dir,
        &[
            "vars",
            "get",
            "backup-server",
            "user-password-root/user-password",
        ],
        &env,
    )
    .fails();
    assert!(err.contains("chmod 600"), "{err}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Every command line in the process table that contains `needle`.
fn command_lines_with(needle: &str) -> (usize, Vec<String>) {
    let mut seen = 0;
    let mut hits = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        seen += 1;
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        if line.contains(needle) {
            hits.push(line);
        }
    }
    (seen, hits)
}

#[test]
fn a_prompted_secret_is_on_no_command_line_while_generators_run() {
    use std::sync::atomic::{AtomicBool, Ordering};
    // Handshake FIFOs outside /tmp (the sandbox gives generators a /tmp of their
    // own, and the checkout itself may be under /tmp).
    let hand = tempfile::tempdir_in("/var/tmp").unwrap();
    for f in ["started", "go"] {
        assert!(
            Command::new("mkfifo")
                .arg(hand.path().join(f))
                .status()
                .unwrap()
                .success()
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clan");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("clan.nix"),
        format!(
            r#"{{ ... }}: {{
  meta.name = "poison";
  inventory.machines.m = {{ machineClass = "linux"; }};
  machines.m = {{ ... }}: {{
    clan.core.vars.generators.token = {{
      prompts.secret = {{ description = "A secret"; type = "hidden"; }};
      files.digest = {{ }};
      files.copy = {{ }};
      runtimeInputs = [ "sha256sum" ];
      script = ''
        echo started > {hand}/started
        read -r _ < {hand}/go
        sha256sum < "$prompts/secret" > "$out/digest"
        cat "$prompts/secret" > "$out/copy"
      '';
    }};
  }};
}}"#,
            hand = hand.path().display()
        ),
    )
    .unwrap();
    git(&dir, &["init", "-q"]);
    let key = tmp.path().join("admin-key.txt");
    let env = [("CLAN_AGE_KEY_FILE", key.to_str().unwrap())];
    clan_env(&dir, &["vars", "keygen", "--name", "tester"], &env).ok();
    let marker = "poison-on-the-command-line-93be";
    let answer = tmp.path().join("answer");
    std::fs::write(&answer, marker).unwrap();

    // A watcher reads every command line for as long as clan runs; the handshake
    // below also checks at a moment when the generator is certainly running.
    let done = AtomicBool::new(false);
    // Nothing in the scope may panic before `done` is set: the watcher would spin.
    let (early_end, at_handshake, generator_seen, success, samples, leaks) =
        std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                let (mut samples, mut leaks) = (0usize, Vec::new());
                while !done.load(Ordering::Relaxed) {
                    leaks.extend(command_lines_with(marker).1);
                    samples += 1;
                }
                (samples, leaks)
            });
            let out_file = std::fs::File::create(tmp.path().join("out")).unwrap();
            let err_file = std::fs::File::create(tmp.path().join("err")).unwrap();
            let mut child = Command::new(env!("CARGO_BIN_EXE_clan"))
                .args(["vars", "generate", "--prompt"])
                .arg(format!("token/secret={}", answer.display()))
                .current_dir(&dir)
                .env_remove("CLAN_DIR")
                .env("CLAN_AGE_KEY_FILE", &key)
                .stdout(out_file)
                .stderr(err_file)
                .spawn()
                .unwrap();
            // Opening the FIFO blocks until the generator writes it; a helper thread
            // does that while we watch that clan has not ended first.
            let started = s.spawn(|| std::fs::read_to_string(hand.path().join("started")));
            let mut early_end = None;
            while !started.is_finished() {
                if let Some(status) = child.try_wait().unwrap() {
                    early_end = Some(status);
                    let _ = std::fs::write(hand.path().join("started"), "");
                    break;
                }
                std::thread::yield_now();
            }
            let _ = started.join();
            let (mut at_handshake, mut generator_seen) = (Vec::new(), false);
            if early_end.is_none() {
                at_handshake = command_lines_with(marker).1;
                generator_seen = !command_lines_with("script.sh").1.is_empty();
                std::fs::write(hand.path().join("go"), "go\n").unwrap();
            }
            let success = child.wait().unwrap().success();
            done.store(true, Ordering::Relaxed);
            let (samples, leaks) = watcher.join().unwrap();
            (
                early_end,
                at_handshake,
                generator_seen,
                success,
                samples,
                leaks,
            )
        });
    let err = std::fs::read_to_string(tmp.path().join("err")).unwrap();
    assert!(
        early_end.is_none(),
        "clan ended before the generator ran: {err}"
    );
    assert!(generator_seen, "the generator is in the process table");
    assert!(
        at_handshake.is_empty(),
        "on a command line: {at_handshake:?}"
    );
    assert!(leaks.is_empty(), "on a command line: {leaks:?}");
    assert!(success && samples > 0, "{err}");
    for f in ["out", "err"] {
        let text = std::fs::read_to_string(tmp.path().join(f)).unwrap();
        assert!(!text.contains(marker), "in clan's {f}: {text}");
    }
    let copy = clan_env(&dir, &["vars", "get", "m", "token/copy"], &env)
        .ok()
        .stdout();
    assert_eq!(copy, marker, "the generator got the answer");
    let history = git(&dir, &["log", "-p", "--all", "--binary"]);
    assert!(!history.contains(marker));
}
