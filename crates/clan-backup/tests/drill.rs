//! `clan backups drill` with the real restic engine, borg and the local provider:
//! the newest backup restores into a scratch directory and matches what the backup
//! holds; damage in the repository, a failing drillScript, a file changed in the
//! snapshot fail the drill and say where; the live data is never touched and no
//! scratch data stays behind.

mod common;
use common::*;

use std::path::{Path, PathBuf};

use clan_backup::drill::{self, DrillResult};
use clan_backup::event::Silent;
use clan_backup::{Machine, Reason, ops};
use serde_json::{Value, json};

fn restic(root: &Path) -> Value {
    json!({"type": "restic", "repository": root.join("repo").display().to_string(), "passwordFile": secret(root)})
}

fn borg(root: &Path) -> Value {
    json!({"type": "borg", "passphraseFile": secret(root), "destinations": {"disk": {"repo": root.join("borg-repo").display().to_string()}}})
}

fn local(root: &Path) -> Value {
    json!({"type": "local", "directory": root.join("snapshots").display().to_string()})
}

/// A machine with the tricky tree in state `app` (two folders), backed up once.
fn backed_up(root: &Path, provider: &str, config: Value) -> (Machine, PathBuf) {
    let data = root.join("srv/app data");
    nasty_tree(&data);
    let other = root.join("srv/uploads");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("photo.jpg"), random_bytes(3 << 20, 7)).unwrap();
    let m = machine(
        root,
        vec![("app", state(&[&data, &other]))],
        vec![(provider, config)],
    );
    ops::create(&m, None, Reason::Explicit, &Silent)
        .unwrap()
        .pop()
        .unwrap()
        .1
        .unwrap();
    (m, data)
}

fn drill_one(m: &Machine) -> DrillResult {
    let mut results = drill::drill(m, None, None, &Silent).unwrap();
    let (_, r) = results.pop().unwrap();
    let mut r = r.unwrap();
    assert_eq!(r.len(), 1);
    r.pop().unwrap()
}

/// Scratch directories of drills anywhere a drill puts them.
fn scratch_left(m: &Machine) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for base in [
        m.staging_directory.parent().unwrap(),
        Path::new("/var/tmp"),
        Path::new("/tmp"),
    ] {
        for e in std::fs::read_dir(base).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("clan-drill-m-") && e.path().starts_with(base) {
                // Other tests' drills run at the same time: only this machine's.
                let staging = m.staging_directory.display().to_string();
                if is_ours(&name, &staging) {
                    out.push(e.path());
                }
            }
        }
    }
    out
}

fn is_ours(name: &str, staging: &str) -> bool {
    use sha2::Digest;
    let h = sha2::Sha256::digest(staging.as_bytes());
    let hex: String = h.iter().take(4).map(|b| format!("{b:02x}")).collect();
    name.starts_with(&format!("clan-drill-m-{hex}-"))
}

fn passes(provider: &str, config: fn(&Path) -> Value) {
    let tmp = tempfile::tempdir().unwrap();
    let (m, data) = backed_up(tmp.path(), provider, config(tmp.path()));
    let before = picture(&data);
    let r = drill_one(&m);
    assert!(r.ok, "{r:#?}");
    assert_eq!(r.state, "app");
    assert!(
        r.backup
            .as_deref()
            .unwrap()
            .contains(&format!("m-{provider}-")),
        "{r:?}"
    );
    // The tree's files plus the upload (hard links count once per path).
    assert!(r.files >= 10, "{r:?}");
    assert!(r.bytes >= (64 << 20) + (3 << 20), "{r:?}");
    assert_eq!(picture(&data), before, "the live data is untouched");
    assert_eq!(scratch_left(&m), Vec::<PathBuf>::new());
    let health = drill::read_health(&drill::health_path(&m.staging_directory)).unwrap();
    assert_eq!(health.drills, [r]);
}

#[test]
fn a_drill_passes_on_the_tricky_tree_with_the_restic_engine() {
    passes("restic", restic);
}

#[test]
fn a_drill_passes_on_the_tricky_tree_with_borg() {
    passes("borg", borg);
}

#[test]
fn a_drill_passes_on_the_tricky_tree_with_local_snapshots() {
    passes("local", local);
}

/// Flips bytes in the middle of the biggest file below `dir`; returns it.
fn flip_biggest(dir: &Path) -> PathBuf {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                files.push((meta.len(), e.path()));
            }
        }
    }
    files.sort();
    let (len, path) = files.pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = (len / 2) as usize;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0xff;
    }
    let mode = std::fs::metadata(&path).unwrap().permissions();
    let mut writable = mode.clone();
    std::os::unix::fs::PermissionsExt::set_mode(&mut writable, 0o600);
    std::fs::set_permissions(&path, writable).unwrap();
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, mode).unwrap();
    path
}

fn fails_on_damage(
    provider: &str,
    config: fn(&Path) -> Value,
    stored: &str,
) -> (DrillResult, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (m, data) = backed_up(tmp.path(), provider, config(tmp.path()));
    let before = picture(&data);
    let damaged = flip_biggest(&tmp.path().join(stored));
    let r = drill_one(&m);
    assert!(!r.ok, "{r:#?}");
    assert_eq!(picture(&data), before, "the live data is untouched");
    assert_eq!(scratch_left(&m), Vec::<PathBuf>::new());
    let health = drill::read_health(&drill::health_path(&m.staging_directory)).unwrap();
    assert_eq!(health.drills, std::slice::from_ref(&r));
    (r, damaged)
}

#[test]
fn a_damaged_restic_pack_fails_the_drill_and_is_named() {
    let (r, damaged) = fails_on_damage("restic", restic, "repo/data");
    let pack = damaged.file_name().unwrap().to_string_lossy().into_owned();
    let said = format!("{:?} {:?}", r.error, r.mismatches);
    assert!(
        said.contains(&pack[..8]),
        "the damaged pack {pack} is named: {said}"
    );
}

#[test]
fn a_damaged_borg_segment_fails_the_drill_and_is_named() {
    let (r, damaged) = fails_on_damage("borg", borg, "borg-repo/data");
    let segment = damaged.file_name().unwrap().to_string_lossy().into_owned();
    let said = format!("{:?} {:?}", r.error, r.mismatches);
    assert!(
        said.contains(&format!("segment {segment}")) || said.contains(&format!("/{segment}")),
        "the damaged segment {segment} is named: {said}"
    );
}

#[test]
fn a_changed_file_in_a_local_snapshot_fails_the_drill_and_is_named() {
    let (r, _) = fails_on_damage("local", local, "snapshots");
    // The biggest file is the sparse image of the tree.
    assert!(r.error.is_none(), "{r:?}");
    assert!(
        r.mismatches
            .iter()
            .any(|m| m
                .ends_with("/srv/app data/sparse.img: content differs from the backup (SHA-256)")),
        "{r:#?}"
    );
}

#[test]
fn a_failing_drill_script_fails_the_drill_and_a_passing_one_sees_the_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut m, data) = backed_up(tmp.path(), "restic", restic(tmp.path()));
    let deep = format!("$DRILL_DIR{}/a/b/c/deep.txt", data.display());
    m.states.get_mut("app").unwrap().drill_script = Some(format!(
        "test \"$(cat \"{deep}\")\" = deep && echo \"checked $STATE\""
    ));
    let r = drill_one(&m);
    assert!(r.ok, "{r:#?}");

    m.states.get_mut("app").unwrap().drill_script =
        Some("echo 'integrity check: database disk image is malformed' >&2; exit 3".into());
    let r = drill_one(&m);
    assert!(!r.ok);
    let e = r.error.unwrap();
    assert!(e.contains("drillScript of state 'app'"), "{e}");
    assert!(e.contains("malformed"), "{e}");
    assert_eq!(scratch_left(&m), Vec::<PathBuf>::new());
}

#[test]
fn a_scratch_directory_left_by_a_killed_drill_goes_with_the_next_drill() {
    let tmp = tempfile::tempdir().unwrap();
    let (m, _) = backed_up(tmp.path(), "local", local(tmp.path()));
    drill_one(&m);
    // What a SIGKILL leaves: a scratch directory with restored data in it.
    let staging = m.staging_directory.display().to_string();
    use sha2::Digest;
    let h: String = sha2::Sha256::digest(staging.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let left = tmp.path().join(format!("clan-drill-m-{h}-killed"));
    std::fs::create_dir_all(left.join("srv/app data/a")).unwrap();
    std::fs::write(left.join("srv/app data/a/x"), "restored").unwrap();
    // Another machine's scratch, and a link an attacker planted, stay.
    let other = tmp.path().join("clan-drill-m-00000000-other");
    std::fs::create_dir_all(&other).unwrap();
    let victim = tmp.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("keep"), "keep").unwrap();
    std::os::unix::fs::symlink(&victim, tmp.path().join(format!("clan-drill-m-{h}-link"))).unwrap();
    assert_eq!(scratch_left(&m).len(), 2);
    assert!(drill_one(&m).ok);
    assert!(!left.exists());
    assert!(other.exists());
    assert_eq!(
        std::fs::read_to_string(victim.join("keep")).unwrap(),
        "keep"
    );
}

#[test]
fn a_state_without_a_backup_fails_its_drill() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut m, _) = backed_up(tmp.path(), "local", local(tmp.path()));
    let later = tmp.path().join("srv/later");
    std::fs::create_dir_all(&later).unwrap();
    m.states.insert("later".into(), state(&[&later]));
    let mut results = drill::drill(&m, None, Some("later"), &Silent).unwrap();
    let r = results.pop().unwrap().1.unwrap().pop().unwrap();
    assert!(!r.ok);
    assert_eq!(r.error.as_deref(), Some("no backup holds state 'later'"));
}

/// Runs a PostgreSQL client program as the cluster's user, with the cluster's
/// connection.
fn pg_tool(pg: &Cluster, program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--", program, "-h"])
        .arg(&pg.socket)
        .args(["-p", &pg.port.to_string(), "-U", "postgres"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_database_drill_compares_row_counts_and_a_dump_without_a_table_fails() {
    let pg = Cluster::start();
    pg.sql("postgres", "CREATE DATABASE shop");
    pg.sql(
        "shop",
        "CREATE TABLE orders (id int PRIMARY KEY, total numeric); \
         INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 500) g; \
         CREATE SCHEMA audit; CREATE TABLE audit.\"Log Entries\" (at timestamptz DEFAULT now()); \
         INSERT INTO audit.\"Log Entries\" SELECT now() FROM generate_series(1, 3)",
    );
    let tmp = tempfile::tempdir().unwrap();
    let files = tmp.path().join("srv/shop");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("invoice.pdf"), "invoice").unwrap();
    let mut s = state(&[&files]);
    s.postgres_databases = vec!["shop".into()];
    let mut m = machine(
        tmp.path(),
        vec![("shop", s)],
        vec![("local", local(tmp.path()))],
    );
    m.postgresql = pg.config();
    // As on a real machine: the dump tools run as the database's user.
    m.postgresql.run_as = Some("postgres".into());
    ops::create(&m, None, Reason::Explicit, &Silent)
        .unwrap()
        .pop()
        .unwrap()
        .1
        .unwrap();

    // The counts are in the backup, beside the dump, from the dump's snapshot.
    let snapshot = std::fs::read_dir(tmp.path().join("snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("tree").is_dir())
        .unwrap();
    let dumps = clan_backup::tree::under(
        &snapshot.join("tree"),
        &tmp.path().join("staging/postgres/shop"),
    );
    let counts: Value =
        serde_json::from_slice(&std::fs::read(dumps.join("shop.counts.json")).unwrap()).unwrap();
    assert_eq!(
        counts,
        json!({"tables": {"audit.Log Entries": 3, "public.orders": 500}})
    );

    let r = drill_one(&m);
    assert!(r.ok, "{r:#?}");
    let scratch_dbs = || {
        pg.sql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'clan_drill%'",
        )
    };
    assert_eq!(scratch_dbs(), "0", "the scratch database is dropped");
    assert_eq!(
        pg.sql("shop", "SELECT count(*) FROM orders"),
        "500",
        "the live database is untouched"
    );

    // Tamper with the backup: the same dump without the rows of orders (and the
    // snapshot's checksum made to agree, so only the row counts can tell).
    let dump = dumps.join("shop.pgdump");
    pg.sql("postgres", "CREATE DATABASE tamper");
    // The database's user reads the copy (the test's directory is root's).
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let tampered = tmp.path().join("tampered.pgdump");
    std::fs::copy(&dump, &tampered).unwrap();
    std::fs::set_permissions(
        &tampered,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let list = pg_tool(&pg, "pg_restore", &["-l", tampered.to_str().unwrap()]);
    let kept: String = list
        .lines()
        .filter(|l| !l.contains("TABLE DATA public orders"))
        .map(|l| format!("{l}\n"))
        .collect();
    let list_file = tmp.path().join("list");
    std::fs::write(&list_file, kept).unwrap();
    std::fs::set_permissions(
        &list_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    pg_tool(
        &pg,
        "pg_restore",
        &[
            "-L",
            list_file.to_str().unwrap(),
            "-d",
            "tamper",
            tampered.to_str().unwrap(),
        ],
    );
    let bytes = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--", "pg_dump", "-Fc", "-h"])
        .arg(&pg.socket)
        .args(["-p", &pg.port.to_string(), "-U", "postgres", "tamper"])
        .output()
        .unwrap()
        .stdout;
    std::fs::write(&dump, &bytes).unwrap();
    let sums_file = snapshot.join("checksums");
    let sums = std::fs::read(&sums_file).unwrap();
    use sha2::Digest;
    let new_sum: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let rel = dump
        .strip_prefix(snapshot.join("tree"))
        .unwrap()
        .display()
        .to_string();
    let fixed: Vec<u8> = sums
        .split(|b| *b == 0)
        .filter(|l| !l.is_empty())
        .flat_map(|l| {
            let line = String::from_utf8_lossy(l).into_owned();
            let line = if line.ends_with(&rel) {
                format!("{new_sum} {rel}")
            } else {
                line
            };
            line.into_bytes().into_iter().chain([0u8])
        })
        .collect();
    std::fs::write(&sums_file, fixed).unwrap();

    let r = drill_one(&m);
    assert!(!r.ok);
    assert_eq!(
        r.mismatches,
        ["database 'shop': table public.orders has 0 rows in the dump, 500 at backup"],
        "{r:#?}"
    );
    assert_eq!(
        scratch_dbs(),
        "0",
        "the scratch database is dropped after a failure too"
    );
}

#[test]
fn a_repository_that_cannot_be_read_fails_the_drill_of_every_state_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let (m, _) = backed_up(tmp.path(), "restic", restic(tmp.path()));
    // Its key files are gone: nothing can be listed.
    std::fs::remove_dir_all(tmp.path().join("repo/keys")).unwrap();
    let r = drill_one(&m);
    assert!(!r.ok);
    assert_eq!(r.backup, None);
    assert!(
        r.error.as_deref().unwrap().contains("provider 'restic'"),
        "{r:?}"
    );
    let health = drill::read_health(&drill::health_path(&m.staging_directory)).unwrap();
    assert_eq!(health.drills, std::slice::from_ref(&r));
}
