//! A restore killed (SIGKILL) or interrupted (SIGINT) at every fault point loses
//! nothing: right after the kill every entry of the live folder and of the backup
//! is either in the folder or in clan's scratch directory; the next operation rolls
//! the folder back to exactly what it was; a rerun restores the backup exactly.
//! Fault points are reached with the test-only `CLAN_TEST_FAULT_AT` (see
//! clan-backup's fault.rs); each provider runs through all of them.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

type Picture = BTreeMap<PathBuf, String>;

/// Every entry below `dir` (relative path -> type, mode, owner, mtime, content).
fn picture(dir: &Path) -> Picture {
    fn walk(root: &Path, p: &Path, out: &mut Picture) {
        let m = fs::symlink_metadata(p).unwrap();
        let mut desc = format!(
            "{:o} {}:{} {}.{}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.mtime(),
            m.mtime_nsec()
        );
        if m.is_dir() {
            for e in fs::read_dir(p).unwrap() {
                walk(root, &e.unwrap().path(), out);
            }
        } else if m.is_file() {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            fs::read(p).unwrap().hash(&mut h);
            desc += &format!(" {:x}", h.finish());
        }
        out.insert(p.strip_prefix(root).unwrap().to_path_buf(), desc);
    }
    let mut out = Picture::new();
    walk(dir, dir, &mut out);
    out
}

/// The entries of `p` below the top-level name `top`.
fn subtree(p: &Picture, top: &str) -> Picture {
    p.iter()
        .filter(|(k, _)| k.starts_with(top))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn differences(want: &Picture, got: &Picture) -> String {
    let mut out = String::new();
    for k in want
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if want.get(k) != got.get(k) {
            out += &format!("{}: {:?} -> {:?}\n", k.display(), want.get(k), got.get(k));
        }
    }
    out
}

fn tops(p: &Picture) -> Vec<String> {
    p.keys()
        .filter(|k| k.components().count() == 1)
        .map(|k| k.display().to_string())
        .collect()
}

/// The backup's contents: 10 directories of 30 files and 5 files.
fn fill(dir: &Path) {
    for d in 0..10 {
        let sub = dir.join(format!("dir{d}"));
        fs::create_dir_all(&sub).unwrap();
        for f in 0..30 {
            fs::write(
                sub.join(format!("f{f}")),
                format!("{d}/{f} in the backup\n"),
            )
            .unwrap();
        }
    }
    for f in 0..5 {
        fs::write(dir.join(format!("top{f}.txt")), format!("top {f}\n")).unwrap();
    }
}

/// The live folder later: two directories gone, some files changed, new entries.
fn change(dir: &Path) {
    fs::remove_dir_all(dir.join("dir3")).unwrap();
    fs::remove_dir_all(dir.join("dir7")).unwrap();
    for d in [0, 1, 2] {
        fs::write(dir.join(format!("dir{d}/f0")), "changed after the backup").unwrap();
    }
    fs::create_dir(dir.join("new-dir")).unwrap();
    fs::write(dir.join("new-dir/x"), "new").unwrap();
    fs::write(dir.join("new-file"), "new").unwrap();
    fs::write(dir.join("top0.txt"), "changed").unwrap();
}

fn scratch_dirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".clan-restore-")
        })
        .collect()
}

fn clan_text(root: &Path, provider: &str) -> PathBuf {
    let dir = root.join("clan");
    fs::create_dir_all(&dir).unwrap();
    fs::write(root.join("pw"), "fault password\n").unwrap();
    let r = root.display();
    fs::write(
        dir.join("clan.nix"),
        format!(
            r#"{{
              meta.name = "t";
              inventory.machines.m = {{ deploy.targetHost = "root@localhost"; machineClass = "linux"; }};
              machines.m = {{ ... }}: {{
                clan.core.backups.providers.{provider}
                clan.core.state.data.folders = [ "{r}/data" "{r}/more" ];
                clan.core.backups.stagingDirectory = "{r}/staging";
              }};
            }}"#
        ),
    )
    .unwrap();
    dir
}

fn last_name(dir: &Path) -> String {
    let listed = clan_in(dir, &["backups", "list", "m", "--json"])
        .ok()
        .json();
    listed.as_array().unwrap().last().unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `declaration`: `NAME = { ... };` of clan.core.backups.providers, ROOT standing
/// for the test's directory.
fn faults(provider: &str, declaration: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let declaration = declaration.replace("ROOT", &tmp.path().display().to_string());
    let dir = clan_text(tmp.path(), &declaration);
    let data = tmp.path().join("data");
    fill(&data);
    // A second folder of the state, with a hard link into the first.
    let more = tmp.path().join("more");
    fs::create_dir(&more).unwrap();
    fs::write(more.join("own.txt"), "more in the backup\n").unwrap();
    fs::hard_link(data.join("top1.txt"), more.join("shared")).unwrap();
    let folders = [&data, &more];
    let pictures = || folders.map(|f| picture(f));
    clan_in(&dir, &["backups", "create", "m"]).ok();
    let backup_name = last_name(&dir);
    let backup = pictures();
    change(&data);
    fs::write(more.join("own.txt"), "changed").unwrap();
    fs::write(more.join("new"), "new").unwrap();
    clan_in(&dir, &["backups", "create", "m"]).ok();
    let live_name = last_name(&dir);
    let live = pictures();
    let restore = |name: &str, fault: Option<String>| {
        let mut env = vec![];
        if let Some(f) = &fault {
            env.push(("CLAN_TEST_FAULT_AT", f.as_str()));
        }
        clan_env(
            &dir,
            &[
                "backups",
                "restore",
                "m",
                provider,
                name,
                "--no-safety-backup",
            ],
            &env,
        )
    };

    let mut killed = 0;
    for at in 1.. {
        let run = restore(&backup_name, Some(at.to_string()));
        if run.out.status.success() {
            // Past the last fault point: the restore finished.
            assert_eq!(pictures(), backup, "{provider}: finished restore");
            let inode = |p: PathBuf| fs::metadata(p).unwrap().ino();
            assert_eq!(
                inode(data.join("top1.txt")),
                inode(more.join("shared")),
                "{provider}: the link across the folders"
            );
            break;
        }
        assert_eq!(
            run.out.status.signal(),
            Some(9),
            "{provider} at {at}: {}",
            run.stderr()
        );
        killed += 1;

        // Nothing lost, in each folder: each top-level entry of the live folder is in
        // the folder or in the scratch directory's old/, each of the backup's in the
        // folder or in tree/.
        for ((folder, backup), live) in folders.iter().zip(&backup).zip(&live) {
            let now = picture(folder);
            let scratch = scratch_dirs(folder);
            assert!(scratch.len() <= 1, "{provider} at {at}: {scratch:?}");
            let (old, tree) = match scratch.first() {
                Some(s) if s.join("old").is_dir() => (picture(&s.join("old")), {
                    if s.join("tree").is_dir() {
                        picture(&s.join("tree"))
                    } else {
                        Picture::new()
                    }
                }),
                _ => (Picture::new(), Picture::new()),
            };
            let in_folder_or = |expected: &Picture, other: &Picture, what: &str| {
                for top in tops(expected) {
                    let want = subtree(expected, &top);
                    assert!(
                        subtree(&now, &top) == want || subtree(other, &top) == want,
                        "{provider} at {at}: {what} entry {top} of {} is lost",
                        folder.display()
                    );
                }
            };
            if !old.is_empty() || !tree.is_empty() {
                in_folder_or(live, &old, "live");
                in_folder_or(backup, &tree, "backup");
            } else if scratch.is_empty() && now == *backup {
                // This folder's swap finished (the state's other may not have).
            } else {
                // Before its swap began: the folder is untouched.
                let mut seen = now.clone();
                seen.retain(|k, _| !k.to_string_lossy().starts_with(".clan-restore-"));
                seen.remove(Path::new(""));
                let mut want = live.clone();
                want.remove(Path::new(""));
                assert_eq!(
                    seen,
                    want,
                    "{provider} at {at}: {} changed before the swap",
                    folder.display()
                );
            }
        }

        // The next operation (here a backup) first rolls each folder back exactly.
        if at % 4 == 0 {
            clan_in(&dir, &["backups", "create", "m"]).ok();
            let back = pictures();
            for i in 0..2 {
                assert!(
                    back[i] == live[i] || back[i] == backup[i],
                    "{provider} at {at}: after recovery {} is neither before nor the backup:\n{}",
                    folders[i].display(),
                    differences(&live[i], &back[i])
                );
                assert!(scratch_dirs(folders[i]).is_empty(), "{provider} at {at}");
            }
        }
        // A rerun restores the backup exactly; then the live state is put back.
        restore(&backup_name, None).ok();
        assert_eq!(pictures(), backup, "{provider} at {at}: rerun");
        restore(&live_name, None).ok();
        assert_eq!(pictures(), live, "{provider} at {at}: back to live");
    }
    assert!(killed > 20, "{provider}: only {killed} fault points");

    // Ctrl-C before the swap: the restore stops, the folder is as it was, no scratch.
    restore(&live_name, None).ok();
    assert_eq!(pictures(), live);
    let run = restore(&backup_name, Some("1:INT".into()));
    let err = run.fails();
    assert!(err.contains("interrupted"), "{provider}: {err}");
    assert_eq!(pictures(), live, "{provider}: after Ctrl-C");
    assert!(folders.iter().all(|f| scratch_dirs(f).is_empty()));
}

#[test]
fn restic_restore_killed_at_every_step() {
    faults(
        "restic",
        r#"restic = { type = "restic"; repository = "ROOT/repo"; passwordFile = "ROOT/pw"; };"#,
    );
}

#[test]
fn borg_restore_killed_at_every_step() {
    faults(
        "borg",
        r#"borg = { type = "borg"; passphraseFile = "ROOT/pw"; destinations.disk.repo = "ROOT/borg"; };"#,
    );
}

#[test]
fn local_restore_killed_at_every_step() {
    faults(
        "local",
        r#"local = { type = "local"; directory = "ROOT/snapshots"; };"#,
    );
}

/// A clan killed while a script (or pg_restore) of its runs takes the program
/// with it: nothing goes on working on the folder without clan's lock.
#[test]
fn a_killed_restore_leaves_no_program_running() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = clan_text(
        tmp.path(),
        &format!(
            r#"local = {{ type = "local"; directory = "{}/snapshots"; }};
               clan.core.state.data.preRestoreScript = "echo $$ > {}/script.pid; exec sleep 300";"#,
            tmp.path().display(),
            tmp.path().display()
        ),
    );
    fill(&tmp.path().join("data"));
    clan_in(&dir, &["backups", "create", "m"]).ok();
    let name = last_name(&dir);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_clan"))
        .args([
            "backups",
            "restore",
            "m",
            "local",
            &name,
            "--no-safety-backup",
        ])
        .current_dir(&dir)
        .env_remove("CLAN_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = tmp.path().join("script.pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let pid = loop {
        if let Ok(p) = fs::read_to_string(&pid_file)
            && !p.trim().is_empty()
        {
            break p.trim().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "the script never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let proc = PathBuf::from(format!("/proc/{pid}"));
    assert!(proc.exists());
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while proc.exists() {
        // A zombie is gone as a program; it only waits for its parent to reap it.
        let state = fs::read_to_string(proc.join("stat")).unwrap_or_default();
        if state.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the script's program outlived clan"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
