//! Every provider that restores into a directory restores exactly: after damage,
//! the folder matches the backup in content and metadata. Real restic engine, real
//! borg, the local provider.

mod common;
use common::*;

use clan_backup::event::Silent;
use clan_backup::{Reason, RestoreOptions, ops};
use serde_json::{Value, json};

fn round_trip(provider: &str, config: impl FnOnce(&std::path::Path) -> Value) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("srv/app data");
    nasty_tree(&data);
    let m = machine(
        tmp.path(),
        vec![("app", state(&[&data]))],
        vec![(provider, config(tmp.path()))],
    );

    let created = ops::create(&m, None, Reason::Explicit, &Silent).unwrap();
    let backup = created.into_iter().next().unwrap().1.unwrap();
    assert!(
        backup.backup.name.starts_with(&format!("m-{provider}-")),
        "{}",
        backup.backup.name
    );
    let before = picture(&data);
    let allocated = |p: &std::path::Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().blocks()
    };
    let sparse_blocks = allocated(&data.join("sparse.img"));

    damage(&data);
    assert_ne!(picture(&data), before);

    let listed = ops::list(&m, None).unwrap().pop().unwrap().1.unwrap();
    let name = listed
        .iter()
        .find(|b| b.backup.name.ends_with(&backup.backup.name))
        .unwrap()
        .backup
        .name
        .clone();
    assert_eq!(
        listed
            .iter()
            .find(|b| b.backup.name == name)
            .unwrap()
            .backup
            .states,
        ["app"]
    );

    let report = ops::restore(&m, provider, &name, &RestoreOptions::default(), &Silent).unwrap();
    let after = picture(&data);
    assert!(
        after == before,
        "{provider}: restore is not exact:\n{}",
        diff(&before, &after)
    );
    // Holes stay holes: a 64 MiB file with 20 bytes of data, allowing for the
    // filesystem's rounding (blocks of 512 bytes). borg makes holes per chunk of
    // its own (up to 8 MiB around data).
    let restored_blocks = allocated(&data.join("sparse.img"));
    let slack = if provider == "borg" { 8 * 2048 } else { 128 };
    assert!(
        restored_blocks <= sparse_blocks + slack,
        "{provider}: sparse file restored with {restored_blocks} blocks, was {sparse_blocks}"
    );

    // The safety backup holds the damaged state and can be restored too.
    let safety = report.safety_backup.expect("a safety backup");
    assert!(safety.contains("pre-restore"), "{safety}");
    ops::restore(
        &m,
        provider,
        &safety,
        &RestoreOptions {
            no_safety_backup: true,
            ..Default::default()
        },
        &Silent,
    )
    .unwrap();
    assert!(data.join("created-after-backup").exists());
    assert!(!data.join("empty").exists());

    // --target restores beside, leaving the folder alone.
    let target = tmp.path().join("elsewhere");
    ops::restore(
        &m,
        provider,
        &name,
        &RestoreOptions {
            into: Some(target.clone()),
            ..Default::default()
        },
        &Silent,
    )
    .unwrap();
    let beside = picture(&clan_backup::tree::under(&target, &data));
    assert!(
        beside == before,
        "{provider} --target:\n{}",
        diff(&before, &beside)
    );
    assert!(data.join("created-after-backup").exists());

    let checked = ops::check(&m, None, true)
        .unwrap()
        .pop()
        .unwrap()
        .1
        .unwrap();
    assert!(!checked.is_empty());
}

#[test]
fn restic_engine_restores_exactly() {
    round_trip(
        "restic",
        |root| json!({"type": "restic", "repository": root.join("repo").display().to_string(), "passwordFile": secret(root)}),
    );
}

#[test]
fn borg_restores_exactly() {
    round_trip(
        "borg",
        |root| json!({"type": "borg", "passphraseFile": secret(root), "destinations": {"disk": {"repo": root.join("borg-repo").display().to_string()}}}),
    );
}

#[test]
fn local_snapshots_restore_exactly() {
    round_trip(
        "local",
        |root| json!({"type": "local", "directory": root.join("snapshots").display().to_string()}),
    );
}

/// State excludes mean the same in every provider: a name at any depth, or an
/// absolute path.
fn excludes_apply(provider: &str, config: impl FnOnce(&std::path::Path) -> Value) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for f in [
        "keep.txt",
        "old.bak",
        "sub/also.bak",
        "sub/keep.bak.txt",
        "cache/blob",
        "sub/cache/blob",
        "tmp/scratch",
        "sub/tmp/kept",
    ] {
        let p = data.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, f).unwrap();
    }
    let mut s = state(&[&data]);
    s.exclude = vec![
        "*.bak".into(),
        "cache".into(),
        format!("{}/tmp", data.display()),
    ];
    let m = machine(
        tmp.path(),
        vec![("app", s)],
        vec![(provider, config(tmp.path()))],
    );
    let b = ops::create(&m, None, Reason::Explicit, &Silent)
        .unwrap()
        .pop()
        .unwrap()
        .1
        .unwrap();
    let name = ops::list(&m, None)
        .unwrap()
        .pop()
        .unwrap()
        .1
        .unwrap()
        .into_iter()
        .find(|x| x.backup.name.ends_with(&b.backup.name))
        .unwrap()
        .backup
        .name;
    let restored = restore_into(&m, provider, &name, &tmp.path().join("out"), &data);
    let mut files: Vec<String> = walk_files(&restored)
        .into_iter()
        .map(|p| p.strip_prefix(&restored).unwrap().display().to_string())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["keep.txt", "sub/keep.bak.txt", "sub/tmp/kept"],
        "{provider}"
    );
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn excludes_in_every_provider() {
    excludes_apply(
        "restic",
        |root| json!({"type": "restic", "repository": root.join("repo").display().to_string(), "passwordFile": secret(root)}),
    );
    excludes_apply(
        "borg",
        |root| json!({"type": "borg", "passphraseFile": secret(root), "destinations": {"disk": {"repo": root.join("borg-repo").display().to_string()}}}),
    );
    excludes_apply(
        "local",
        |root| json!({"type": "local", "directory": root.join("snapshots").display().to_string()}),
    );
}

/// Files that were one inode in two folders of a state come back as one inode, in
/// place and with --target; contents and modes as backed up.
fn links_across_folders(provider: &str, config: impl FnOnce(&std::path::Path) -> Value) {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("srv/a"), tmp.path().join("srv/b"));
    fs::create_dir_all(b.join("sub")).unwrap();
    fs::create_dir_all(&a).unwrap();
    fs::write(a.join("x"), "one file, two folders").unwrap();
    fs::set_permissions(a.join("x"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::hard_link(a.join("x"), b.join("sub/y")).unwrap();
    fs::write(a.join("p"), "three names").unwrap();
    fs::hard_link(a.join("p"), a.join("q")).unwrap();
    fs::hard_link(a.join("p"), b.join("r")).unwrap();
    fs::write(a.join("alone"), "no links").unwrap();
    let m = machine(
        tmp.path(),
        vec![("app", state(&[&a, &b]))],
        vec![(provider, config(tmp.path()))],
    );
    let name = ops::create(&m, None, Reason::Explicit, &Silent)
        .unwrap()
        .pop()
        .unwrap()
        .1
        .unwrap()
        .backup
        .name;

    let before = [picture(&a), picture(&b)];
    // Damage: one name gone, one link broken into a copy with other contents.
    fs::remove_file(b.join("sub/y")).unwrap();
    fs::remove_file(b.join("r")).unwrap();
    fs::write(b.join("r"), "changed").unwrap();

    let check = |a: &std::path::Path, b: &std::path::Path, how: &str| {
        let st = |p: std::path::PathBuf| fs::symlink_metadata(&p).unwrap();
        let (x, y) = (st(a.join("x")), st(b.join("sub/y")));
        assert_eq!(
            (x.dev(), x.ino(), x.nlink()),
            (y.dev(), y.ino(), 2),
            "{provider} {how}: a/x and b/sub/y are not one file"
        );
        assert_eq!(x.mode() & 0o7777, 0o640, "{provider} {how}");
        assert_eq!(
            fs::read_to_string(b.join("sub/y")).unwrap(),
            "one file, two folders"
        );
        let (p, q, r) = (st(a.join("p")), st(a.join("q")), st(b.join("r")));
        assert_eq!(
            [p.ino(), q.ino(), p.nlink()],
            [r.ino(), r.ino(), 3],
            "{provider} {how}: a/p, a/q and b/r are not one file"
        );
        assert_eq!(fs::read_to_string(b.join("r")).unwrap(), "three names");
        assert_eq!(st(a.join("alone")).nlink(), 1, "{provider} {how}");
    };
    ops::restore(&m, provider, &name, &RestoreOptions::default(), &Silent).unwrap();
    check(&a, &b, "in place");
    for (was, now) in before.iter().zip([picture(&a), picture(&b)]) {
        assert!(*was == now, "{provider}:\n{}", diff(was, &now));
    }

    let target = tmp.path().join("elsewhere");
    let beside_a = restore_into(&m, provider, &name, &target, &a);
    check(
        &beside_a,
        &clan_backup::tree::under(&target, &b),
        "--target",
    );
}

#[test]
fn hard_links_across_the_folders_of_a_state_come_back_in_every_provider() {
    links_across_folders(
        "restic",
        |root| json!({"type": "restic", "repository": root.join("repo").display().to_string(), "passwordFile": secret(root)}),
    );
    links_across_folders(
        "borg",
        |root| json!({"type": "borg", "passphraseFile": secret(root), "destinations": {"disk": {"repo": root.join("borg-repo").display().to_string()}}}),
    );
    links_across_folders(
        "local",
        |root| json!({"type": "local", "directory": root.join("snapshots").display().to_string()}),
    );
}
