//! `clan backups drill` and `clan backups status` through the real binary on a
//! machine that is this one (target root@localhost), and what the backup and drill
//! timers do when something fails (`onFailure`). The systemd side of the timers is
//! in the lab (lab.rs).

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A clan whose machine `m` is this one, with state `app` in `root/srv/app`,
/// restic and local providers, and `extra` Nix inside the machine's module.
fn clan(root: &Path, extra: &str) -> PathBuf {
    let app = root.join("srv/app");
    std::fs::create_dir_all(app.join("sub")).unwrap();
    std::fs::write(app.join("sub/data.txt"), "precious\n").unwrap();
    std::fs::write(app.join("big.bin"), vec![7u8; 3 << 20]).unwrap();
    std::fs::write(root.join("pw"), "drill test password\n").unwrap();
    let r = root.display();
    let dir = root.join("clan");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("clan.nix"),
        format!(
            r#"{{
              meta.name = "d";
              inventory.machines.m = {{ machineClass = "linux"; deploy.targetHost = "root@localhost"; }};
              # Backs nothing up: `backups status` does not connect to it.
              inventory.machines.idle = {{ machineClass = "linux"; deploy.targetHost = "root@203.0.113.9"; }};
              machines.m = {{ ... }}: {{
                clan.core.state.app.folders = [ "{r}/srv/app" ];
                clan.core.backups.stagingDirectory = "{r}/lib/staging";
                clan.core.backups.providers.r = {{ type = "restic"; repository = "{r}/repo"; passwordFile = "{r}/pw"; }};
                clan.core.backups.providers.l = {{ type = "local"; directory = "{r}/snapshots"; }};
                {extra}
              }};
            }}"#
        ),
    )
    .unwrap();
    dir
}

#[test]
fn drill_and_status_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = clan(tmp.path(), "");
    // Nothing backed up yet: status fails and says why.
    let run = clan_in(&dir, &["backups", "status"]);
    let out = run.stdout();
    let err = run.fails();
    assert!(out.contains("FAILING: no backup yet"), "{out}");
    assert!(err.contains("2 of 2 backups are failing"), "{err}");
    assert!(!out.contains("idle"), "{out}");

    clan_in(&dir, &["backups", "create", "m"]).ok();
    let run = clan_in(&dir, &["backups", "drill", "m", "--json"]).ok();
    let drills = run.json();
    let summary: Vec<_> = drills
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["provider"].as_str().unwrap(),
                d["state"].as_str().unwrap(),
                d["ok"].as_bool().unwrap(),
                d["files"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary, [("l", "app", true, 2), ("r", "app", true, 2)]);

    let run = clan_in(&dir, &["backups", "status", "m", "--json"]).ok();
    let lines = run.json();
    for line in lines.as_array().unwrap() {
        assert_eq!(line["verdict"], "ok", "{line}");
        assert_eq!(line["lastDrillOk"], true, "{line}");
        assert!(
            line["lastBackupName"].as_str().unwrap().starts_with("m-"),
            "{line}"
        );
    }

    // A repository that cannot be written: the backup fails, status says so.
    let repo = tmp.path().join("repo");
    std::fs::rename(&repo, tmp.path().join("repo.moved")).unwrap();
    std::fs::write(&repo, "not a repository").unwrap();
    clan_in(&dir, &["backups", "create", "m", "--provider", "r"]).fails();
    let run = clan_in(&dir, &["backups", "status"]);
    let out = run.stdout();
    run.fails();
    let r_line = out
        .lines()
        .find(|l| l.starts_with("m  ") && l.contains(" r "))
        .unwrap();
    assert!(r_line.contains("FAILING: the last backup failed"), "{out}");
    let l_line = out
        .lines()
        .find(|l| l.starts_with("m  ") && l.contains(" l "))
        .unwrap();
    assert!(l_line.ends_with(" ok"), "{out}");
}

/// The scratch directory a drill reported through its drillScript.
fn wait_for(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s.trim().to_string();
        }
        assert!(Instant::now() < deadline, "{} never came", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_drill_killed_mid_way_leaves_scratch_data_that_the_next_drill_removes() {
    let tmp = tempfile::tempdir().unwrap();
    let hand = tmp.path().join("hand");
    std::fs::create_dir_all(&hand).unwrap();
    let h = hand.display();
    // The script says where the restored copy is, then waits until told to go on.
    let dir = clan(
        tmp.path(),
        &format!(
            r#"clan.core.state.app.drillScript = ''
                 if [ ! -e {h}/released ]; then
                   echo "$DRILL_DIR" > {h}/scratch
                   while [ ! -e {h}/go ]; do sleep 0.05; done
                 fi
               '';"#
        ),
    );
    clan_in(&dir, &["backups", "create", "m"]).ok();
    let live_before = std::fs::read(tmp.path().join("srv/app/big.bin")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_clan"))
        .args(["backups", "drill", "m", "--provider", "r"])
        .current_dir(&dir)
        .env_remove("CLAN_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let scratch = PathBuf::from(wait_for(&hand.join("scratch")));
    let restored = scratch
        .join(tmp.path().strip_prefix("/").unwrap())
        .join("srv/app/big.bin");
    assert!(
        restored.is_file(),
        "{} holds the restored copy",
        scratch.display()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // Let the orphaned script end; the scratch directory stays.
    std::fs::write(hand.join("released"), "").unwrap();
    std::fs::write(hand.join("go"), "").unwrap();
    assert!(scratch.is_dir());

    let run = clan_in(&dir, &["backups", "drill", "m", "--provider", "r"]).ok();
    assert!(
        run.stdout().contains("r: state 'app' from m-r-"),
        "{}",
        run.stdout()
    );
    assert!(!scratch.exists(), "{} is gone", scratch.display());
    assert!(
        run.stderr().contains("left by an interrupted drill"),
        "{}",
        run.stderr()
    );
    assert_eq!(
        std::fs::read(tmp.path().join("srv/app/big.bin")).unwrap(),
        live_before
    );
}

#[test]
fn timers_run_on_failure_when_a_backup_or_a_drill_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let alerts = tmp.path().join("alerts");
    let a = alerts.display();
    let dir = clan(
        tmp.path(),
        &format!(
            r#"clan.core.backups.onFailure = ''
                 printf '%s|%s|%s|%s\n' "$CLAN_MACHINE" "$CLAN_PROVIDER" "$CLAN_STATE" "$CLAN_MESSAGE" >> {a}
               '';
               clan.core.state.app.drillScript = "test -s $DRILL_DIR{r}/srv/app/sub/data.txt";"#,
            r = tmp.path().display()
        ),
    );
    let fleet = clan_ops::Fleet::load(
        clan_core::ClanDir::open(&dir, "t").unwrap(),
        &[],
        &clan_core::event::Silent,
    )
    .unwrap();
    let m = fleet.machine("m").unwrap();
    let silent = clan_backup::event::Silent;

    // All is well: nothing is sent.
    clan_runtime::serve::run_timer(m, "r", &silent).unwrap();
    clan_runtime::serve::run_drill_timer(m, "r", &silent).unwrap();
    assert!(!alerts.exists());

    // The repository's data is damaged: the drill fails and says so.
    for e in walk(&tmp.path().join("repo/data")) {
        let mut bytes = std::fs::read(&e).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::set_permissions(&e, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        std::fs::write(&e, bytes).unwrap();
    }
    let e = clan_runtime::serve::run_drill_timer(m, "r", &silent).unwrap_err();
    assert!(e.contains("state 'app'"), "{e}");
    let sent = std::fs::read_to_string(&alerts).unwrap();
    assert!(sent.starts_with("m|r|app|"), "{sent}");

    // The repository is gone and its place taken: the backup fails.
    std::fs::remove_dir_all(tmp.path().join("repo")).unwrap();
    std::fs::write(tmp.path().join("repo"), "").unwrap();
    std::fs::remove_file(&alerts).unwrap();
    clan_runtime::serve::run_timer(m, "r", &silent).unwrap_err();
    let sent = std::fs::read_to_string(&alerts).unwrap();
    assert!(sent.starts_with("m|r||"), "{sent}");
    assert_eq!(sent.lines().count(), 1, "{sent}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn overdue_backups_are_told_once_per_stretch() {
    let tmp = tempfile::tempdir().unwrap();
    let alerts = tmp.path().join("alerts");
    let dir = clan(
        tmp.path(),
        &format!(
            r#"clan.core.backups.providers.r.startAt = "daily";
               clan.core.backups.onFailure = "echo \"$CLAN_PROVIDER: $CLAN_MESSAGE\" >> {}";"#,
            alerts.display()
        ),
    );
    let fleet = clan_ops::Fleet::load(
        clan_core::ClanDir::open(&dir, "t").unwrap(),
        &[],
        &clan_core::event::Silent,
    )
    .unwrap();
    let m = fleet.machine("m").unwrap();
    let silent = clan_backup::event::Silent;
    clan_runtime::serve::run_timer(m, "r", &silent).unwrap();
    clan_runtime::serve::run_drill_timer(m, "r", &silent).unwrap();
    assert!(!alerts.exists(), "a fresh backup is not overdue");

    // The newest backup is from long ago (the timer stopped firing).
    let health = tmp.path().join("lib/health.json");
    let mut h: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&health).unwrap()).unwrap();
    for b in h["backups"].as_array_mut().unwrap() {
        b["time"] = "2026-01-01T01:00:00Z".into();
    }
    std::fs::write(&health, serde_json::to_vec(&h).unwrap()).unwrap();
    clan_runtime::serve::run_drill_timer(m, "r", &silent).unwrap();
    clan_runtime::serve::run_drill_timer(m, "r", &silent).unwrap();
    let sent = std::fs::read_to_string(&alerts).unwrap();
    assert_eq!(
        sent,
        "r: backups of provider 'r' are overdue: the newest is from 2026-01-01T01:00:00Z, more than twice its schedule ago\n"
    );
    // (Provider l has never backed up: failing.)
    let run = clan_in(&dir, &["backups", "status", "m"]);
    let out = run.stdout();
    run.fails();
    let r = out.lines().find(|l| l.starts_with("m        r")).unwrap();
    assert!(
        r.ends_with("warning: the last backup is older than twice its schedule (daily)"),
        "{out}"
    );
}

/// `clan backups drill ARGS --json` (the binary copied to `binary`) where every
/// place a scratch directory may go (beside the staging directory `lib`, /var/tmp,
/// /tmp) is a tmpfs of `size` in the drill's own mount namespace: its exit code
/// and its drills.
fn drill_in_small_filesystems(
    binary: &Path,
    dir: &Path,
    lib: &Path,
    size: &str,
    args: &[&str],
) -> (Option<i32>, Vec<serde_json::Value>) {
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            r#"for d in "$0" /var/tmp /tmp; do mount -t tmpfs -o size={size} drill-test "$d" || exit 9; done
               shift; exec "$@""#
        ))
        .arg(lib)
        .arg("-")
        .arg(binary)
        .args(["backups", "drill"])
        .args(args)
        .arg("--json")
        .current_dir(dir)
        .env_remove("CLAN_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let drills: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (out.status.code(), drills.as_array().unwrap().clone())
}

/// A copy of the clan binary outside /tmp and /var/tmp, which the drills of
/// [`drill_in_small_filesystems`] do not see.
fn binary_in(dir: &Path) -> PathBuf {
    let binary = dir.join("clan-under-test");
    std::fs::copy(env!("CARGO_BIN_EXE_clan"), &binary).unwrap();
    binary
}

#[test]
#[ignore = "needs root (a mount namespace with small filesystems); ./test.sh runs it as root"]
fn a_drill_without_room_is_refused_and_restores_nothing() {
    // Outside /tmp and /var/tmp (a checkout may be below /tmp).
    let tmp = tempfile::tempdir_in("/var/lib").unwrap();
    let binary = binary_in(tmp.path());
    let dir = clan(tmp.path(), "");
    clan_in(&dir, &["backups", "create", "m"]).ok();
    let live_before = std::fs::read(tmp.path().join("srv/app/big.bin")).unwrap();
    let lib = tmp.path().join("lib");
    let (code, drills) = drill_in_small_filesystems(&binary, &dir, &lib, "4m", &["m"]);
    assert_eq!(code, Some(1), "{drills:?}");
    for d in &drills {
        assert_eq!(d["ok"], false, "{d}");
        assert_eq!(d["files"], 0, "{d}");
        let error = d["error"].as_str().unwrap();
        assert!(
            error.starts_with(
                "not enough space for the drill: the backup of state 'app' holds 3.0 MiB more"
            ) && error.contains("free some space or drill another state (--state)"),
            "{error}"
        );
    }
    assert_eq!(drills.len(), 2);
    assert_eq!(
        std::fs::read(tmp.path().join("srv/app/big.bin")).unwrap(),
        live_before
    );
}

/// borg's drill checks the room against the whole archive first (cheap), then,
/// when that does not fit, against the drilled state's own files.
#[test]
#[ignore = "needs root (a mount namespace with small filesystems); ./test.sh runs it as root"]
fn a_borg_drill_needs_room_for_its_state_not_for_the_whole_archive() {
    let tmp = tempfile::tempdir_in("/var/lib").unwrap();
    let binary = binary_in(tmp.path());
    let r = tmp.path().display();
    let bulk = tmp.path().join("srv/bulk");
    std::fs::create_dir_all(&bulk).unwrap();
    // borg records sizes before compression: zeros count in full.
    std::fs::write(bulk.join("zeros.bin"), vec![0u8; 12 << 20]).unwrap();
    let dir = clan(
        tmp.path(),
        &format!(
            r#"clan.core.state.bulk.folders = [ "{r}/srv/bulk" ];
               clan.core.backups.providers.b = {{ type = "borg"; destinations.d.repo = "{r}/borg"; passphraseFile = "{r}/pw"; }};"#
        ),
    );
    clan_in(&dir, &["backups", "create", "m", "--provider", "b"]).ok();
    let lib = tmp.path().join("lib");
    // 24 MiB free: the archive (15 MiB and a margin of 16) does not fit, state
    // app (3 MiB) does.
    let [(app_code, app), (bulk_code, bulk)] = ["app", "bulk"].map(|state| {
        drill_in_small_filesystems(
            &binary,
            &dir,
            &lib,
            "24m",
            &["m", "--provider", "b", "--state", state],
        )
    });
    assert_eq!(app_code, Some(0), "{app:?}");
    assert_eq!(app.len(), 1);
    assert_eq!(app[0]["ok"], true, "{}", app[0]);
    assert_eq!(app[0]["files"], 2, "{}", app[0]);
    assert_eq!(bulk_code, Some(1), "{bulk:?}");
    let error = bulk[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "not enough space for the drill: the backup of state 'bulk' holds 12.0 MiB more"
        ),
        "{error}"
    );
}
