use super::*;

/// An engine on `dir/repo` whose password file is `dir/pw`.
fn engine_in(dir: &std::path::Path) -> Rustic {
    let pw = dir.join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    Rustic::new(RepoSpec {
        repository: dir.join("repo").display().to_string(),
        password_file: pw,
    })
}

/// The restic CLI on the repository of [`engine_in`]`(dir)`: its standard output.
fn restic_cli(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("restic")
        .args(["--no-cache", "-r"])
        .arg(dir.join("repo"))
        .arg("--password-file")
        .arg(dir.join("pw"))
        .args(args)
        .output()
        .expect("restic runs");
    assert!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn rustic_backs_up_lists_restores_forgets_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("sub/empty")).unwrap();
    std::fs::write(data.join("sub/a.txt"), "hello").unwrap();
    std::fs::write(data.join("stays.txt"), "the same").unwrap();
    let engine = engine_in(tmp.path());
    engine.ensure_initialized().unwrap();
    engine.ensure_initialized().unwrap();
    let first = engine
        .backup(
            std::slice::from_ref(&data),
            "m-restic-1",
            "m",
            &["state:docs".into()],
            &[],
            None,
        )
        .unwrap();
    assert_eq!(first.label, "m-restic-1");
    assert!(first.tags.contains(&"state:docs".to_string()));
    std::fs::write(data.join("sub/a.txt"), "changed").unwrap();
    let second = engine
        .backup(
            std::slice::from_ref(&data),
            "m-restic-2",
            "m",
            &[],
            &[],
            None,
        )
        .unwrap();
    assert_eq!(
        second.unchanged_files,
        Some(1),
        "the previous snapshot is the parent: unchanged files are not read again"
    );
    let snaps = engine.snapshots().unwrap();
    assert_eq!(
        snaps.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(),
        ["m-restic-1", "m-restic-2"]
    );

    let dest = tmp.path().join("restored");
    engine.restore(&first.id, &data, &dest, None).unwrap();
    assert_eq!(
        std::fs::read_to_string(dest.join("sub/a.txt")).unwrap(),
        "hello"
    );
    assert!(dest.join("sub/empty").is_dir());

    let forgotten = engine
        .forget(
            "m",
            &Keep {
                last: 1,
                ..Keep::default()
            },
        )
        .unwrap();
    assert_eq!(forgotten, ["m-restic-1"]);
    engine.check(true).unwrap();
    assert_eq!(engine.snapshots().unwrap().len(), 1);
}

#[test]
fn the_restic_cli_reads_what_the_engine_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "from the engine").unwrap();
    let engine = engine_in(tmp.path());
    engine.ensure_initialized().unwrap();
    let snap = engine
        .backup(
            std::slice::from_ref(&data),
            "m-restic-x",
            "m",
            &["state:docs".into()],
            &[],
            None,
        )
        .unwrap();

    let restic = |args: &[&str]| restic_cli(tmp.path(), args);
    let listed: serde_json::Value =
        serde_json::from_str(&restic(&["snapshots", "--json"])).unwrap();
    assert_eq!(listed[0]["id"], snap.id);
    assert_eq!(listed[0]["hostname"], "m");
    assert_eq!(listed[0]["tags"], serde_json::json!(["state:docs"]));
    let target = tmp.path().join("by-restic");
    restic(&["restore", &snap.id, "--target", target.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(crate::tree::under(&target, &data).join("a.txt")).unwrap(),
        "from the engine"
    );
    restic(&["check", "--read-data"]);
}

#[test]
fn keys_cost_32_mib_and_errors_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    let repo = tmp.path().join("repo");
    let spec = |password_file| RepoSpec {
        repository: repo.display().to_string(),
        password_file,
    };
    Rustic::new(spec(pw)).ensure_initialized().unwrap();
    let keys: Vec<_> = std::fs::read_dir(repo.join("keys")).unwrap().collect();
    assert_eq!(keys.len(), 1);
    let key: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keys[0].as_ref().unwrap().path()).unwrap()).unwrap();
    assert_eq!(
        (&key["N"], &key["r"], &key["p"]),
        (&32768.into(), &8.into(), &5.into())
    );

    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "not the password\n").unwrap();
    let e = Rustic::new(spec(wrong))
        .snapshots()
        .unwrap_err()
        .to_string();
    assert!(e.contains("password"), "{e}");
    assert!(!e.contains('\n') && !e.contains("Backtrace"), "{e}");
}

#[test]
fn restores_large_sparse_and_hard_linked_files_exactly() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("d")).unwrap();
    // 24 MiB of noise: many chunks, restored blob by blob.
    let big = noise(24 << 20);
    std::fs::write(data.join("big.bin"), &big).unwrap();
    let sparse = std::fs::File::create(data.join("sparse.img")).unwrap();
    sparse.set_len(32 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&sparse, b"in the middle", 16 << 20).unwrap();
    drop(sparse);
    std::fs::write(data.join("one"), "linked").unwrap();
    std::fs::hard_link(data.join("one"), data.join("d/two")).unwrap();
    let engine = engine_in(tmp.path());
    engine.ensure_initialized().unwrap();
    let snap = engine
        .backup(std::slice::from_ref(&data), "m-1", "m", &[], &[], None)
        .unwrap();
    let dest = tmp.path().join("restored");
    engine.restore(&snap.id, &data, &dest, None).unwrap();

    assert!(std::fs::read(dest.join("big.bin")).unwrap() == big);
    let restored = std::fs::read(dest.join("sparse.img")).unwrap();
    assert_eq!(restored.len(), 32 << 20);
    assert_eq!(&restored[16 << 20..(16 << 20) + 13], b"in the middle");
    assert_eq!(restored.iter().filter(|b| **b != 0).count(), 13);
    let m = std::fs::metadata(dest.join("sparse.img")).unwrap();
    assert!(
        m.blocks() * 512 < 4 << 20,
        "zeros stay holes: {} blocks",
        m.blocks()
    );
    let (one, two) = (
        std::fs::metadata(dest.join("one")).unwrap(),
        std::fs::metadata(dest.join("d/two")).unwrap(),
    );
    assert_eq!((one.ino(), one.nlink()), (two.ino(), 2));
    for name in ["big.bin", "sparse.img", "one", "d"] {
        let (a, b) = (
            std::fs::metadata(data.join(name)).unwrap(),
            std::fs::metadata(dest.join(name)).unwrap(),
        );
        assert_eq!(
            (a.mtime(), a.mtime_nsec(), a.mode()),
            (b.mtime(), b.mtime_nsec(), b.mode()),
            "{name}"
        );
    }
}

/// Special files, set-id bits under another owner (a change of owner clears
/// them), a folder's time after its entries, link owners and times; and only the
/// recorded extended attributes, though the destination passes a default ACL on.
#[test]
fn restores_special_files_owners_and_set_id_bits_exactly() {
    use rustix::fs::{self as rfs, AtFlags, Mode, Timespec, Timestamps};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("shared")).unwrap();
    std::fs::write(data.join("shared/f"), "in a set-group-id folder").unwrap();
    std::fs::write(data.join("tool"), "#!/bin/sh\n").unwrap();
    rfs::mknodat(
        rfs::CWD,
        data.join("pipe"),
        rfs::FileType::Fifo,
        Mode::empty(),
        0,
    )
    .unwrap();
    std::os::unix::fs::symlink("tool", data.join("link")).unwrap();
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 1_500_000_000,
            tv_nsec: 5,
        },
        last_modification: Timespec {
            tv_sec: 1_500_000_000,
            tv_nsec: 7,
        },
    };
    for (name, mode) in [
        ("shared", 0o2775),
        ("tool", 0o4750),
        ("pipe", 0o640),
        ("link", 0),
    ] {
        let p = data.join(name);
        rfs::chownat(
            rfs::CWD,
            &p,
            Some(rfs::Uid::from_raw(4242)),
            Some(rfs::Gid::from_raw(4343)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
        if mode != 0 {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        rfs::utimensat(rfs::CWD, &p, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
    }
    let engine = engine_in(tmp.path());
    engine.ensure_initialized().unwrap();
    let snap = engine
        .backup(std::slice::from_ref(&data), "m-1", "m", &[], &[], None)
        .unwrap();
    let dest = tmp.path().join("restored");
    std::fs::create_dir_all(&dest).unwrap();
    // Default ACL: user::rw-, user:nobody:r--, group::---, mask::r--, other::---.
    let acl = [
        2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255, 2, 0, 4, 0, 254, 255, 0, 0, 4, 0, 0, 0, 255,
        255, 255, 255, 16, 0, 4, 0, 255, 255, 255, 255, 32, 0, 0, 0, 255, 255, 255, 255,
    ];
    xattr::set(&dest, "system.posix_acl_default", &acl).unwrap();
    engine.restore(&snap.id, &data, &dest, None).unwrap();

    for name in ["shared", "shared/f", "tool", "pipe", "link"] {
        let (a, b) = (
            std::fs::symlink_metadata(data.join(name)).unwrap(),
            std::fs::symlink_metadata(dest.join(name)).unwrap(),
        );
        assert_eq!(
            (a.mode(), a.uid(), a.gid(), a.mtime(), a.mtime_nsec()),
            (b.mode(), b.uid(), b.gid(), b.mtime(), b.mtime_nsec()),
            "{name}"
        );
        if name != "link" {
            let attrs: Vec<_> = xattr::list(dest.join(name)).unwrap().collect();
            assert!(attrs.is_empty(), "{name}: {attrs:?}");
        }
    }
    assert_eq!(
        std::fs::read_link(dest.join("link")).unwrap(),
        std::path::Path::new("tool")
    );
}

#[test]
fn a_file_that_cannot_be_written_fails_the_restore_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..300 {
        std::fs::write(data.join(format!("f{i:03}")), format!("file {i}")).unwrap();
    }
    let engine = engine_in(tmp.path());
    engine.ensure_initialized().unwrap();
    let snap = engine
        .backup(std::slice::from_ref(&data), "m-1", "m", &[], &[], None)
        .unwrap();
    // A directory where the snapshot has the file f100.
    let dest = tmp.path().join("restored");
    std::fs::create_dir_all(dest.join("f100")).unwrap();
    let e = engine
        .restore(&snap.id, &data, &dest, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("restoring {}", dest.join("f100").display())),
        "{e}"
    );
}

/// A damaged blob in a large file fails the restore and names the file (each
/// blob's authentication tag is checked as it is read).
#[test]
fn a_damaged_blob_fails_the_restore_and_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("big.bin"), noise(24 << 20)).unwrap();
    let engine = engine_in(tmp.path());
    engine.ensure_initialized().unwrap();
    let snap = engine
        .backup(std::slice::from_ref(&data), "m-1", "m", &[], &[], None)
        .unwrap();
    // The largest pack holds some of the file's blobs.
    flip_a_byte_of_the_largest_pack(tmp.path());
    let dest = tmp.path().join("restored");
    let e = engine
        .restore(&snap.id, &data, &dest, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("restoring {}", dest.join("big.bin").display())),
        "{e}"
    );
    assert!(e.contains("failed its authentication"), "{e}");
}

#[test]
fn check_read_data_finds_one_flipped_byte_in_a_data_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Incompressible, so that the data pack is the largest file of the repository.
    std::fs::write(data.join("a"), noise(200_000)).unwrap();
    let engine = engine_in(tmp.path());
    engine.ensure_initialized().unwrap();
    engine
        .backup(std::slice::from_ref(&data), "m-1", "m", &[], &[], None)
        .unwrap();
    engine.check(true).unwrap();
    // The largest pack holds the file's contents.
    flip_a_byte_of_the_largest_pack(tmp.path());
    engine.check(false).unwrap();
    let e = engine.check(true).unwrap_err().to_string();
    assert!(e.contains("the repository has errors"), "{e}");
}

/// Damages the first blob of the largest data pack of the repository of
/// [`engine_in`]`(dir)`: byte 40 is in it (blobs are far larger).
fn flip_a_byte_of_the_largest_pack(dir: &std::path::Path) {
    let mut packs = walk(&dir.join("repo/data"));
    packs.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let pack = packs.pop().unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&pack, bytes).unwrap();
}

/// `len` incompressible bytes (xorshift), the same every run; for the engine's
/// tests.
pub(crate) fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
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

/// What a backup killed on a full disk leaves: packs no index names. Prune (even
/// with nothing to forget) removes them at once, under its exclusive lock.
#[test]
fn prune_reclaims_packs_a_killed_backup_left() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a"), "contents").unwrap();
    let engine = engine_in(tmp.path());
    engine.ensure_initialized().unwrap();
    engine
        .backup(std::slice::from_ref(&data), "m-1", "m", &[], &[], None)
        .unwrap();
    let pack = walk(&tmp.path().join("repo/data")).pop().unwrap();
    let orphan_id = "ab".repeat(32);
    let orphan = tmp.path().join("repo/data/ab").join(&orphan_id);
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::copy(&pack, &orphan).unwrap();
    let forgotten = engine
        .forget(
            "m",
            &Keep {
                last: 5,
                ..Keep::default()
            },
        )
        .unwrap();
    assert!(forgotten.is_empty());
    assert!(!orphan.exists(), "the unindexed pack is gone");
    assert!(pack.exists());
    engine.check(true).unwrap();
}

/// A repository the restic CLI made sets no pack size: the engine writes restic's
/// 16 MiB data packs there, not rustic_core's 32 MiB and growing (the packers hold
/// up to three at once).
#[test]
fn packs_in_a_repository_the_restic_cli_made_have_restics_size() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("noise.bin"), noise(40 << 20)).unwrap();
    let engine = engine_in(tmp.path());
    restic_cli(tmp.path(), &["init"]);
    engine
        .backup(
            std::slice::from_ref(&data),
            "m-restic-1",
            "m",
            &[],
            &[],
            None,
        )
        .unwrap();
    let packs: Vec<u64> = walk(&tmp.path().join("repo/data"))
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok().filter(|m| m.is_file()))
        .map(|m| m.len())
        .collect();
    // 40 MiB of noise: at least three packs, none past 16 MiB and the last blob.
    assert!(packs.len() >= 3, "{packs:?}");
    assert!(packs.iter().all(|&n| n < 25 << 20), "{packs:?}");
}
