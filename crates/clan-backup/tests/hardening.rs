//! Ways a careless user or an attacker could make a restore lose data or write
//! where it must not, each tried with every provider that restores exactly (the
//! restic engine, borg, local snapshots) and checked on the data itself.

mod common;
use common::*;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use clan_backup::event::{Event, Silent};
use clan_backup::{BackupError, Reason, RestoreOptions, ops};
use serde_json::{Value, json};

const PROVIDERS: [&str; 3] = ["restic", "borg", "local"];

fn config(provider: &str, root: &Path) -> Value {
    match provider {
        "restic" => json!({"type": "restic", "repository": root.join("repo").display().to_string(),
                           "passwordFile": secret(root)}),
        "borg" => json!({"type": "borg", "passphraseFile": secret(root),
                         "destinations": {"disk": {"repo": root.join("borg-repo").display().to_string()}}}),
        _ => json!({"type": "local", "directory": root.join("snapshots").display().to_string()}),
    }
}

fn backup(m: &clan_backup::Machine) -> String {
    let created = ops::create(m, None, Reason::Explicit, &Silent).unwrap();
    let (_, r) = created.into_iter().next().unwrap();
    let name = r.unwrap().backup.name;
    // borg lists `destination::archive`.
    ops::list(m, None).unwrap()[0]
        .1
        .as_ref()
        .unwrap()
        .iter()
        .map(|b| b.backup.name.clone())
        .find(|n| n.ends_with(&name))
        .unwrap()
}

fn restore(m: &clan_backup::Machine, provider: &str, name: &str) -> ops::RestoreReport {
    ops::restore(m, provider, name, &RestoreOptions::default(), &Silent).unwrap()
}
/// A restore that must succeed, and the warnings it gave.
fn restore_warning(
    m: &clan_backup::Machine,
    provider: &str,
    name: &str,
    opts: RestoreOptions,
) -> (ops::RestoreReport, Vec<String>) {
    let warnings = std::sync::Mutex::new(Vec::new());
    let report = ops::restore(m, provider, name, &opts, &|e: Event| {
        if let Event::Warning { message } = e {
            warnings.lock().unwrap().push(message)
        }
    })
    .unwrap();
    (report, warnings.into_inner().unwrap())
}

#[test]
fn a_deleted_folder_its_parent_or_a_file_in_its_place_is_restored() {
    for provider in PROVIDERS {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("srv/docs");
        nasty_tree(&data);
        let keep = tmp.path().join("keep");
        fs::create_dir(&keep).unwrap();
        fs::write(keep.join("a"), "other state").unwrap();
        let m = machine(
            tmp.path(),
            vec![("docs", state(&[&data])), ("keep", state(&[&keep]))],
            vec![(provider, config(provider, tmp.path()))],
        );
        let name = backup(&m);
        let before = picture(&data);

        // The folder and its parent are gone: the safety backup holds what exists.
        fs::remove_dir_all(tmp.path().join("srv")).unwrap();
        let (report, warnings) = restore_warning(&m, provider, &name, RestoreOptions::default());
        let after = picture(&data);
        assert!(after == before, "{provider}: {}", diff(&before, &after));
        // The safety backup records the folder that was missing.
        let safety = report.safety_backup.clone().expect("a safety backup");
        let listed = ops::list(&m, None).unwrap().pop().unwrap().1.unwrap();
        let entry = listed
            .iter()
            .find(|b| b.backup.name.ends_with(&safety))
            .unwrap();
        assert_eq!(
            entry.backup.missing,
            [data.display().to_string()],
            "{provider}"
        );
        // Restoring it leaves the folder it records as missing as it is, and says why.
        let (_, said) = restore_warning(
            &m,
            provider,
            &safety,
            RestoreOptions {
                no_safety_backup: true,
                ..Default::default()
            },
        );
        assert!(
            said.iter()
                .any(|w| w.contains("did not exist when the backup was made")),
            "{provider}: {said:?}"
        );
        let after = picture(&data);
        assert!(after == before, "{provider}: {}", diff(&before, &after));
        assert!(
            warnings.iter().any(|w| w.contains("does not exist")),
            "{provider}: {warnings:?}"
        );

        // A file took the folder's place: it is moved aside, never deleted.
        fs::remove_dir_all(&data).unwrap();
        fs::write(&data, "a file where the folder was").unwrap();
        restore(&m, provider, &name);
        let after = picture(&data);
        assert!(after == before, "{provider}: {}", diff(&before, &after));
        let moved: Vec<_> = fs::read_dir(tmp.path().join("srv"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("docs.clan-moved-"))
            .collect();
        assert_eq!(moved.len(), 1, "{provider}");
        assert_eq!(
            fs::read_to_string(&moved[0]).unwrap(),
            "a file where the folder was"
        );
    }
}

#[test]
fn a_users_own_scratch_like_directories_are_kept_and_clans_are_never_backed_up() {
    for provider in PROVIDERS {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        fs::create_dir_all(data.join(".clan-restore/tree")).unwrap();
        fs::write(data.join(".clan-restore/tree/mine"), "the user's").unwrap();
        fs::create_dir_all(data.join(".clan-restore-x")).unwrap();
        fs::write(data.join("file"), "v1").unwrap();
        let m = machine(
            tmp.path(),
            vec![("data", state(&[&data]))],
            vec![(provider, config(provider, tmp.path()))],
        );
        let name = backup(&m);
        let before = picture(&data);
        fs::write(data.join("file"), "v2").unwrap();
        restore(&m, provider, &name);
        let after = picture(&data);
        assert!(after == before, "{provider}: {}", diff(&before, &after));
        // No scratch directory of clan's is left, and no backup holds one.
        let names: Vec<_> = fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [".clan-restore", ".clan-restore-x", "file"],
            "{provider}"
        );
        let target = tmp.path().join("beside");
        for b in ops::list(&m, None).unwrap()[0].1.as_ref().unwrap() {
            let _ = fs::remove_dir_all(&target);
            ops::restore(
                &m,
                provider,
                &b.backup.name,
                &RestoreOptions {
                    into: Some(target.clone()),
                    ..Default::default()
                },
                &Silent,
            )
            .unwrap();
            let inside = clan_backup::tree::under(&target, &data);
            let got = picture(&inside);
            assert!(
                got.keys()
                    .all(|k| !String::from_utf8_lossy(k).contains(clan_backup::scratch::MARKER)),
                "{provider}: {} holds a scratch directory",
                b.backup.name
            );
        }
    }
}

#[test]
fn a_states_excludes_apply_to_its_own_folders_only() {
    for provider in PROVIDERS {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("n/app");
        let logs = tmp.path().join("n/logs");
        let other = tmp.path().join("n/other");
        for d in [&app, &logs, &other] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(app.join("run.log"), "excluded").unwrap();
        fs::write(app.join("app.db"), "kept").unwrap();
        fs::write(logs.join("audit.log"), "must be kept").unwrap();
        fs::write(other.join("x"), "everything else").unwrap();
        let mut a = state(&[&app]);
        a.exclude = vec!["*.log".into()];
        let mut everything = state(&[&tmp.path().join("n/none")]);
        everything.exclude = vec!["*".into()];
        let m = machine(
            tmp.path(),
            vec![
                ("a", a),
                ("b", state(&[&logs])),
                ("c", state(&[&other])),
                ("d", everything),
            ],
            vec![(provider, config(provider, tmp.path()))],
        );
        let name = backup(&m);
        fs::remove_file(logs.join("audit.log")).unwrap();
        fs::remove_file(other.join("x")).unwrap();
        ops::restore(
            &m,
            provider,
            &name,
            &RestoreOptions {
                state: Some("b".into()),
                ..Default::default()
            },
            &Silent,
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(logs.join("audit.log")).unwrap(),
            "must be kept",
            "{provider}"
        );
        restore(&m, provider, &name);
        assert_eq!(
            fs::read_to_string(other.join("x")).unwrap(),
            "everything else"
        );
        assert!(
            !app.join("run.log").exists(),
            "{provider}: excluded in its own state"
        );
        assert_eq!(fs::read_to_string(app.join("app.db")).unwrap(), "kept");
    }
}

#[test]
fn overlapping_folders_and_backups_inside_a_state_are_refused_before_anything_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    let err = |states: Vec<(&str, clan_core::machine::State)>, provider: Value| {
        let m = machine(tmp.path(), states, vec![("p", provider)]);
        let e = ops::create(&m, None, Reason::Explicit, &Silent).unwrap_err();
        assert!(!tmp.path().join("staging").exists(), "nothing was made");
        e.to_string()
    };
    let e = err(
        vec![("a", state(&[&data])), ("b", state(&[&data.join("sub")]))],
        config("local", tmp.path()),
    );
    assert!(
        e.contains("clan.core.state.a.folders") && e.contains("clan.core.state.b.folders"),
        "{e}"
    );
    assert!(e.contains("inside"), "{e}");
    let e = err(
        vec![("a", state(&[&data]))],
        json!({"type": "restic", "repository": data.join("backup/repo").display().to_string(),
               "passwordFile": "/nonexistent"}),
    );
    assert!(
        e.contains("clan.core.backups.providers.p.repository"),
        "{e}"
    );
    let e = err(
        vec![("a", state(&[&data]))],
        json!({"type": "restic", "repository": "relative/repo", "passwordFile": "/x"}),
    );
    assert!(e.contains("relative path"), "{e}");
    let e = err(
        vec![("a", state(&[Path::new("/proc/1")]))],
        config("local", tmp.path()),
    );
    assert!(e.contains("/proc"), "{e}");
}

#[test]
fn machines_sharing_a_repository_see_prune_and_restore_only_their_own_backups() {
    for provider in PROVIDERS {
        let tmp = tempfile::tempdir().unwrap();
        // The same folder on both (a service that moves from mb to ma).
        let d = tmp.path().join("d");
        fs::create_dir_all(&d).unwrap();
        let cfg = config(provider, tmp.path());
        let mut ma = machine(
            tmp.path(),
            vec![("s", state(&[&d]))],
            vec![(provider, cfg.clone())],
        );
        ma.name = "ma".into();
        ma.staging_directory = tmp.path().join("staging-a");
        let mut mb = machine(tmp.path(), vec![("s", state(&[&d]))], vec![(provider, cfg)]);
        mb.name = "mb".into();
        mb.staging_directory = tmp.path().join("staging-b");
        let write = |v: &str| fs::write(d.join("f"), v).unwrap();
        write("a1");
        backup(&ma);
        write("b1");
        let b1 = backup(&mb);
        write("b2");
        let b2 = backup(&mb);
        write("a2");
        backup(&ma);

        let names = |m: &clan_backup::Machine| -> Vec<String> {
            ops::list(m, None).unwrap()[0]
                .1
                .as_ref()
                .unwrap()
                .iter()
                .map(|b| b.backup.name.clone())
                .collect()
        };
        let own = names(&ma);
        assert_eq!(own.len(), 2, "{provider}: {own:?}");
        assert!(own.iter().all(|n| n.contains("ma-")), "{provider}: {own:?}");
        assert_eq!(names(&mb), [b1.clone(), b2.clone()], "{provider}");

        let keep_one = clan_backup::engine::Keep {
            last: 1,
            ..Default::default()
        };
        let pruned = ops::prune(&ma, None, Some(keep_one)).unwrap();
        pruned[0].1.as_ref().unwrap();
        assert_eq!(names(&ma).len(), 1, "{provider}");
        assert_eq!(
            names(&mb),
            [b1.clone(), b2.clone()],
            "{provider}: mb's backups stay"
        );

        // Another machine's backup is not restored by accident...
        let e = ops::restore(&ma, provider, &b2, &RestoreOptions::default(), &Silent).unwrap_err();
        assert!(
            matches!(e, BackupError::NoSuchBackup { .. }),
            "{provider}: {e}"
        );
        assert!(e.to_string().contains("--from-machine"), "{e}");
        assert_eq!(fs::read_to_string(d.join("f")).unwrap(), "a2");
        // ...only when asked for.
        ops::restore(
            &ma,
            provider,
            &b2,
            &RestoreOptions {
                from_machine: Some("mb".into()),
                ..Default::default()
            },
            &Silent,
        )
        .unwrap();
        assert_eq!(fs::read_to_string(d.join("f")).unwrap(), "b2", "{provider}");
    }
}

/// Under `root`: `home/alice` and her `documents` (uid 4242: she may replace her
/// folder with a link at any time), and what she must not reach, a root-only `etc`.
fn alice_and_a_victim(root: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
    let home = root.join("home/alice");
    let docs = home.join("documents");
    fs::create_dir_all(&docs).unwrap();
    fs::write(docs.join("letter.txt"), "dear bob").unwrap();
    for p in [&home, &docs] {
        std::os::unix::fs::chown(p, Some(4242), Some(4242)).unwrap();
    }
    let victim = root.join("etc");
    fs::create_dir(&victim).unwrap();
    fs::write(victim.join("shadow"), "root:secret").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(victim.join("shadow"), fs::Permissions::from_mode(0o600)).unwrap();
    (home, docs, victim)
}

#[test]
#[ignore = "needs root (files owned by another user); ./test.sh runs it as root"]
fn a_symlink_planted_in_place_of_a_state_folder_or_in_a_target_is_never_followed() {
    for provider in PROVIDERS {
        let tmp = tempfile::tempdir().unwrap();
        let (home, docs, victim) = alice_and_a_victim(tmp.path());
        let victim_before = picture(&victim);

        let m = machine(
            tmp.path(),
            vec![("docs", state(&[&docs]))],
            vec![(provider, config(provider, tmp.path()))],
        );
        let name = backup(&m);

        // Alice replaces her documents with a link to the victim.
        fs::rename(&docs, home.join("moved")).unwrap();
        symlink(&victim, &docs).unwrap();
        std::os::unix::fs::lchown(&docs, Some(4242), Some(4242)).unwrap();
        let e = ops::restore(&m, provider, &name, &RestoreOptions::default(), &Silent).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{provider}: {e}");
        assert!(
            picture(&victim) == victim_before,
            "{provider}: the victim changed"
        );
        assert_eq!(fs::metadata(&victim).unwrap().mode() & 0o7777, 0o700);

        // A link in a --target's path is refused the same way.
        let target_home = tmp.path().join("restore-here");
        fs::create_dir(&target_home).unwrap();
        std::os::unix::fs::chown(&target_home, Some(4242), Some(4242)).unwrap();
        symlink(&victim, target_home.join("t")).unwrap();
        std::os::unix::fs::lchown(target_home.join("t"), Some(4242), Some(4242)).unwrap();
        let e = ops::restore(
            &m,
            provider,
            &name,
            &RestoreOptions {
                into: Some(target_home.join("t")),
                ..Default::default()
            },
            &Silent,
        )
        .unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{provider}: {e}");
        assert!(
            picture(&victim) == victim_before,
            "{provider}: the victim changed"
        );
    }
}

#[test]
fn the_lock_is_root_only_and_local_snapshots_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("f"), "x").unwrap();
    let m = machine(
        tmp.path(),
        vec![("s", state(&[&data]))],
        vec![("local", config("local", tmp.path()))],
    );
    let name = backup(&m);
    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&tmp.path().join("staging/lock")), 0o600);
    assert_eq!(mode(&tmp.path().join("staging")), 0o711);
    assert_eq!(mode(&tmp.path().join("snapshots").join(&name)), 0o700);
}

#[test]
fn local_snapshots_keep_fifos_sockets_and_one_inode_for_links_between_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(a.join("fifo"))
            .status()
            .unwrap()
            .success()
    );
    let _socket = std::os::unix::net::UnixListener::bind(a.join("socket")).unwrap();
    fs::write(a.join("one"), "linked").unwrap();
    fs::hard_link(a.join("one"), b.join("two")).unwrap();
    let m = machine(
        tmp.path(),
        vec![("s", state(&[&a, &b]))],
        vec![("local", config("local", tmp.path()))],
    );
    let name = backup(&m);
    let snap = tmp.path().join("snapshots").join(&name).join("tree");
    let inode = |p: &Path| fs::metadata(p).unwrap().ino();
    assert_eq!(
        inode(&clan_backup::tree::under(&snap, &a.join("one"))),
        inode(&clan_backup::tree::under(&snap, &b.join("two"))),
        "one inode in the snapshot"
    );
    fs::remove_file(a.join("fifo")).unwrap();
    restore(&m, "local", &name);
    assert_eq!(fs::read_to_string(a.join("one")).unwrap(), "linked");
    use std::os::unix::fs::FileTypeExt;
    assert!(
        fs::symlink_metadata(a.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(
        fs::symlink_metadata(a.join("socket"))
            .unwrap()
            .file_type()
            .is_socket()
    );
}

/// The race: the user (her own unprivileged process) swaps her folder for a link
/// to a root-only directory and back, as fast as she can, while restores run.
/// Whatever the timing, nothing outside her folder changes (restores may fail;
/// they must not write elsewhere).
#[test]
#[ignore = "needs root (files owned by another user); ./test.sh runs it as root"]
fn a_user_swapping_her_folder_for_a_link_during_restores_never_reaches_outside() {
    for provider in PROVIDERS {
        let tmp = tempfile::tempdir().unwrap();
        let (home, docs, victim) = alice_and_a_victim(tmp.path());
        fs::create_dir(docs.join("sub")).unwrap();
        for i in 0..20 {
            fs::write(docs.join(format!("f{i}")), format!("letter {i}")).unwrap();
        }
        let victim_before = picture(&victim);
        let m = machine(
            tmp.path(),
            vec![("docs", state(&[&docs]))],
            vec![(provider, config(provider, tmp.path()))],
        );
        let name = backup(&m);

        // What alice can do in her home, as her own process: move the folder away,
        // put a link in its place, and back (to a new name each time, so that a
        // folder the restore made meanwhile cannot stop her), as fast as she can.
        let script = format!(
            "i=0; while [ ! -e stop ]; do i=$((i+1)); \
             if mv -T documents real$i 2>/dev/null; then \
               ln -s {victim} documents 2>/dev/null && rm -f documents; \
               mv -T real$i documents 2>/dev/null; echo >> flips; \
             fi; done",
            victim = victim.display()
        );
        let mut alice = std::process::Command::new("setpriv")
            .args(["--reuid=4242", "--regid=4242", "--clear-groups", "sh", "-c"])
            .arg(&script)
            .current_dir(&home)
            .spawn()
            .unwrap();
        let flips = || fs::read(home.join("flips")).map_or(0, |f| f.len());
        let mut restored = 0;
        for round in 0.. {
            if round >= 6 && flips() > 50 && restored >= 3 || round > 400 {
                break;
            }
            let done = ops::restore(
                &m,
                provider,
                &name,
                &RestoreOptions {
                    no_safety_backup: true,
                    ..Default::default()
                },
                &Silent,
            );
            restored += usize::from(done.is_ok());
        }
        fs::write(home.join("stop"), "").unwrap();
        let _ = alice.wait();
        assert!(flips() > 10, "{provider}: the race ran");
        // Restores that all failed would prove nothing.
        assert!(restored > 0, "{provider}: no restore completed");
        let after = picture(&victim);
        assert!(
            after == victim_before,
            "{provider}: the victim changed:\n{}",
            diff(&victim_before, &after)
        );
        assert_eq!(fs::metadata(&victim).unwrap().mode() & 0o7777, 0o700);
    }
}

/// borg extract names what it writes by absolute paths made from its working
/// directory's name, which runs through the user's folder. The folder is swapped
/// for a link while borg is inside a large file (256 MiB, so that a poll of the scratch
/// directory finds it even on a busy machine): the files after it still land in the
/// restore, never behind the link.
#[test]
#[ignore = "needs root (files owned by another user); ./test.sh runs it as root"]
fn borg_writes_nothing_behind_a_folder_swapped_while_it_extracts() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, docs, victim) = alice_and_a_victim(tmp.path());
    // Incompressible, so that borg spends a while writing it.
    let big = random_bytes(256 << 20, 0x9e37_79b9_7f4a_7c15);
    fs::write(docs.join("big"), &big).unwrap();
    fs::write(docs.join("zz-after-big"), "written last").unwrap();
    let victim_before = picture(&victim);
    let m = machine(
        tmp.path(),
        vec![("docs", state(&[&docs]))],
        vec![("borg", config("borg", tmp.path()))],
    );
    let name = backup(&m);
    fs::remove_file(docs.join("zz-after-big")).unwrap();

    let moved = home.join("moved");
    let swapped = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let rel = docs.strip_prefix("/").unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while std::time::Instant::now() < deadline {
                let in_extract = fs::read_dir(&docs)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|s| {
                        fs::read_dir(s.path())
                            .into_iter()
                            .flatten()
                            .flatten()
                            .any(|w| {
                                w.file_name()
                                    .to_string_lossy()
                                    .starts_with(".borg-extract-")
                                    && w.path().join(rel).join("big").exists()
                            })
                    });
                if in_extract {
                    fs::rename(&docs, &moved).unwrap();
                    symlink(&victim, &docs).unwrap();
                    return true;
                }
                std::thread::yield_now();
            }
            false
        });
        restore(&m, "borg", &name);
        watcher.join().unwrap()
    });
    assert!(swapped, "the folder was swapped while borg extracted");
    let after = picture(&victim);
    assert!(
        after == victim_before,
        "the victim changed:\n{}",
        diff(&victim_before, &after)
    );
    assert_eq!(
        fs::read_to_string(moved.join("zz-after-big")).unwrap(),
        "written last"
    );
    assert!(fs::read(moved.join("big")).unwrap() == big);
}

/// A backup checks each folder, then the provider reads it. A user who swaps a
/// parent of her folder for a link in between (here, deterministically, from the
/// state's preBackupScript, which runs after the check) must not make root read
/// the link's target into the backup: the folders are checked again after the
/// scripts, and borg reads only the directories that clan opened.
#[test]
#[ignore = "needs root (files owned by another user); ./test.sh runs it as root"]
fn a_parent_swapped_for_a_link_after_the_check_fails_the_backup() {
    for provider in PROVIDERS {
        let tmp = tempfile::tempdir().unwrap();
        let (home, docs, victim) = alice_and_a_victim(tmp.path());
        let work = docs.join("work");
        fs::create_dir(&work).unwrap();
        fs::write(work.join("plan.txt"), "alice's plan").unwrap();
        fs::create_dir(victim.join("work")).unwrap();
        fs::write(victim.join("work/key"), "root's key").unwrap();
        let mut s = state(&[&work]);
        s.pre_backup_script = Some(format!(
            "mv {docs} {real} && ln -s {victim} {docs}",
            docs = docs.display(),
            real = home.join("real").display(),
            victim = victim.display()
        ));
        let m = machine(
            tmp.path(),
            vec![("work", s)],
            vec![(provider, config(provider, tmp.path()))],
        );
        let created = ops::create(&m, None, Reason::Explicit, &Silent).unwrap();
        let e = created
            .into_iter()
            .next()
            .unwrap()
            .1
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("documents is a symbolic link that user 4242"),
            "{provider}: {e}"
        );
        // Nothing of the link's target went into the repository.
        let listed = ops::list(&m, None).unwrap().pop().unwrap().1;
        assert!(listed.map_or(true, |l| l.is_empty()), "{provider}");
    }
}

/// Local snapshots read the folder through descriptors: the folder swapped for a
/// link while the copy is inside a large file (found by polling the snapshot
/// directory) sends nothing of the link's target into the snapshot.
#[test]
#[ignore = "needs root (files owned by another user); ./test.sh runs it as root"]
fn local_snapshots_copy_the_folder_clan_opened_when_it_is_swapped_during_the_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, docs, victim) = alice_and_a_victim(tmp.path());
    fs::write(docs.join("big"), vec![7u8; 256 << 20]).unwrap();
    fs::write(docs.join("zz"), "alice's").unwrap();
    fs::write(victim.join("zz"), "root's").unwrap();
    let m = machine(
        tmp.path(),
        vec![("docs", state(&[&docs]))],
        vec![("local", config("local", tmp.path()))],
    );
    let snapshots = tmp.path().join("snapshots");
    fn find(dir: &Path, name: &str) -> bool {
        fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
            let p = e.path();
            (e.file_name() == name && fs::metadata(&p).is_ok_and(|m| m.len() > 0))
                || (fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) && find(&p, name))
        })
    }
    let (name, swapped) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while std::time::Instant::now() < deadline {
                if find(&snapshots, "big") {
                    fs::rename(&docs, home.join("moved")).unwrap();
                    symlink(&victim, &docs).unwrap();
                    return true;
                }
                std::thread::yield_now();
            }
            false
        });
        let name = backup(&m);
        (name, watcher.join().unwrap())
    });
    assert!(swapped, "the folder was swapped during the copy");
    let copy = clan_backup::tree::under(&snapshots.join(&name).join("tree"), &docs);
    assert_eq!(fs::read_to_string(copy.join("zz")).unwrap(), "alice's");
}

/// The embedded engine reads folders by path: pinned for its threads, the folder
/// swapped for a link while the engine reads large files (at its first progress
/// report) sends nothing of the link's target into the snapshot.
#[test]
#[ignore = "needs root (files owned by another user); ./test.sh runs it as root"]
fn the_engine_backs_up_the_folder_clan_opened_when_it_is_swapped_during_the_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, docs, victim) = alice_and_a_victim(tmp.path());
    // Large files first, so that the engine's threads are still reading them at
    // its first progress report, and `zz` is opened after the swap.
    let big = random_bytes(32 << 20, 0x2545_f491_4f6c_dd1d);
    for i in 0..8 {
        fs::write(docs.join(format!("big{i}")), &big).unwrap();
    }
    drop(big);
    fs::write(docs.join("zz"), "alice's").unwrap();
    fs::write(victim.join("zz"), "root's").unwrap();
    let m = machine(
        tmp.path(),
        vec![("docs", state(&[&docs]))],
        vec![("restic", config("restic", tmp.path()))],
    );
    let swapped = std::sync::atomic::AtomicBool::new(false);
    let swap = |e: Event| {
        if let Event::Progress {
            done, bytes: true, ..
        } = e
            && done > 0
            && !swapped.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            fs::rename(&docs, home.join("moved")).unwrap();
            symlink(&victim, &docs).unwrap();
        }
    };
    let created = ops::create(&m, None, Reason::Explicit, &swap).unwrap();
    let name = created.into_iter().next().unwrap().1.unwrap().backup.name;
    assert!(swapped.load(std::sync::atomic::Ordering::SeqCst), "swapped");
    // Back in place, then restored elsewhere: the snapshot holds alice's file.
    fs::remove_file(&docs).unwrap();
    fs::rename(home.join("moved"), &docs).unwrap();
    let got = restore_into(&m, "restic", &name, &tmp.path().join("restored"), &docs);
    assert_eq!(fs::read_to_string(got.join("zz")).unwrap(), "alice's");
}

/// Local snapshots record a checksum of every file at backup: `check --read-data`
/// finds a byte changed in a snapshot later (bit rot, tampering).
#[test]
fn local_snapshot_checksums_find_a_changed_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::write(data.join("sub/a"), "first file").unwrap();
    fs::write(data.join("b"), "second file").unwrap();
    let m = machine(
        tmp.path(),
        vec![("s", state(&[&data]))],
        vec![("local", config("local", tmp.path()))],
    );
    backup(&m);
    fs::write(data.join("b"), "second file, changed").unwrap();
    let second = backup(&m);
    let check = |read_data| ops::check(&m, None, read_data).unwrap().pop().unwrap().1;
    assert!(check(true).unwrap().contains("files read"));
    // `sub/a` is unchanged: a link to the first snapshot's copy, its sum reused.
    let file = clan_backup::tree::under(
        &tmp.path().join("snapshots").join(&second).join("tree"),
        &data.join("sub/a"),
    );
    assert!(fs::metadata(&file).unwrap().nlink() > 1);
    let mut bytes = fs::read(&file).unwrap();
    bytes[0] ^= 1;
    fs::write(&file, bytes).unwrap();
    check(false).unwrap();
    let e = check(true).unwrap_err().to_string();
    assert!(e.contains("does not match the checksum"), "{e}");
}
