//! A state with a real PostgreSQL database; hooks; failures that must leave
//! everything usable.

mod common;
use common::*;

use clan_backup::event::Silent;
use clan_backup::{BackupError, Reason, RestoreOptions, ops};
use serde_json::json;

fn restic(root: &std::path::Path) -> serde_json::Value {
    json!({"type": "restic", "repository": root.join("repo").display().to_string(), "passwordFile": secret(root)})
}

#[test]
fn database_rows_come_back_after_a_dropped_table() {
    let pg = Cluster::start();
    pg.sql("postgres", "CREATE DATABASE app");
    pg.sql("app", "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 500) g");
    let tmp = tempfile::tempdir().unwrap();
    let files = tmp.path().join("app-files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("upload.bin"), "user upload").unwrap();
    let mut s = state(&[&files]);
    s.postgres_databases = vec!["app".into()];
    let mut m = machine(
        tmp.path(),
        vec![("app", s)],
        vec![("restic", restic(tmp.path()))],
    );
    m.postgresql = pg.config();

    let b = ops::create(&m, None, Reason::Explicit, &Silent)
        .unwrap()
        .pop()
        .unwrap()
        .1
        .unwrap();
    // The dump is in the snapshot only: nothing is left to read beside it.
    use std::os::unix::fs::MetadataExt;
    let dumps = tmp.path().join("staging/postgres/app");
    assert_eq!(
        std::fs::read_dir(&dumps).unwrap().count(),
        0,
        "dumps removed"
    );
    assert_eq!(std::fs::metadata(&dumps).unwrap().mode() & 0o777, 0o700);
    pg.sql("app", "DROP TABLE notes");
    pg.sql("app", "CREATE TABLE intruder (x int)");
    std::fs::remove_file(files.join("upload.bin")).unwrap();

    ops::restore(
        &m,
        "restic",
        &b.backup.name,
        &RestoreOptions::default(),
        &Silent,
    )
    .unwrap();
    assert_eq!(
        pg.sql("app", "SELECT count(*), sum(id) FROM notes"),
        "500|125250"
    );
    assert_eq!(
        pg.sql(
            "app",
            "SELECT count(*) FROM pg_tables WHERE tablename = 'intruder'"
        ),
        "0"
    );
    assert_eq!(
        std::fs::read_to_string(files.join("upload.bin")).unwrap(),
        "user upload"
    );
    assert_eq!(
        std::fs::read_dir(&dumps).unwrap().count(),
        0,
        "dumps removed"
    );
}

#[test]
fn a_failing_post_restore_script_names_the_step_and_the_safety_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "v1").unwrap();
    let mut s = state(&[&data]);
    s.post_restore_script = Some("echo 'migrating schema'\necho 'disk full' >&2\nexit 7\n".into());
    let m = machine(
        tmp.path(),
        vec![("app", s)],
        vec![("restic", restic(tmp.path()))],
    );
    let b = ops::create(&m, None, Reason::Explicit, &Silent)
        .unwrap()
        .pop()
        .unwrap()
        .1
        .unwrap();
    std::fs::write(data.join("f"), "v2").unwrap();

    let err = ops::restore(
        &m,
        "restic",
        &b.backup.name,
        &RestoreOptions::default(),
        &Silent,
    )
    .unwrap_err();
    let BackupError::RestoreFailed { step, safety, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(step, "postRestoreScript of state 'app'");
    let msg = err.to_string();
    assert!(
        msg.contains("exit code 7")
            && msg.contains("disk full")
            && msg.contains("services were started again"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("clan backups restore m restic {safety}")),
        "{msg}"
    );
    // The folders were restored before the script ran, and the safety backup holds v2.
    assert_eq!(std::fs::read_to_string(data.join("f")).unwrap(), "v1");
    let names: Vec<String> = ops::list(&m, None)
        .unwrap()
        .pop()
        .unwrap()
        .1
        .unwrap()
        .into_iter()
        .map(|b| b.backup.name)
        .collect();
    assert!(names.contains(safety), "{names:?}");
    let mut m2 = m.clone();
    m2.states.get_mut("app").unwrap().post_restore_script = None;
    ops::restore(
        &m2,
        "restic",
        safety,
        &RestoreOptions {
            no_safety_backup: true,
            ..Default::default()
        },
        &Silent,
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(data.join("f")).unwrap(), "v2");
}

#[test]
fn hooks_run_in_order_and_post_backup_runs_even_after_a_failed_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let log = tmp.path().join("log");
    let mut s = state(&[&data]);
    s.pre_backup_script = Some(format!("echo pre-$STATE >> {}", log.display()));
    s.post_backup_script = Some(format!("echo post-$STATE >> {}", log.display()));
    // A repository whose password file is missing: the snapshot fails.
    let broken = json!({"type": "restic", "repository": tmp.path().join("repo").display().to_string(), "passwordFile": tmp.path().join("missing")});
    let m = machine(
        tmp.path(),
        vec![("app", s.clone())],
        vec![("broken", broken)],
    );
    let err = ops::create(&m, None, Reason::Explicit, &Silent)
        .unwrap()
        .pop()
        .unwrap()
        .1
        .unwrap_err();
    assert!(err.to_string().contains("password file"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "pre-app\npost-app\n"
    );

    s.pre_backup_script = Some("echo 'cannot flush cache' >&2; false".into());
    let m = machine(
        tmp.path(),
        vec![("app", s)],
        vec![("restic", restic(tmp.path()))],
    );
    let err = ops::create(&m, None, Reason::Explicit, &Silent)
        .unwrap()
        .pop()
        .unwrap()
        .1
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("preBackupScript of state 'app' failed") && msg.contains("cannot flush cache"),
        "{msg}"
    );
}

#[test]
fn prune_keeps_the_newest_and_unknown_names_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let m = machine(
        tmp.path(),
        vec![("app", state(&[&data]))],
        vec![(
            "local",
            json!({"type": "local", "directory": tmp.path().join("snaps")}),
        )],
    );
    for i in 0..3 {
        std::fs::write(data.join("f"), format!("{i}")).unwrap();
        ops::create(&m, None, Reason::Explicit, &Silent)
            .unwrap()
            .pop()
            .unwrap()
            .1
            .unwrap();
    }
    let all = ops::list(&m, None).unwrap().pop().unwrap().1.unwrap();
    assert_eq!(all.len(), 3);
    let gone = ops::prune(
        &m,
        None,
        Some(clan_backup::engine::Keep {
            last: 1,
            ..Default::default()
        }),
    )
    .unwrap()
    .pop()
    .unwrap()
    .1
    .unwrap();
    assert_eq!(gone.len(), 2);
    let left = ops::list(&m, None).unwrap().pop().unwrap().1.unwrap();
    assert_eq!(left[0].backup.name, all[2].backup.name);

    let err = ops::restore(&m, "local", "nope", &RestoreOptions::default(), &Silent).unwrap_err();
    assert!(err.to_string().contains("no backup named 'nope'"), "{err}");
    let err = ops::restore(&m, "lcoal", "x", &RestoreOptions::default(), &Silent).unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown provider 'lcoal'. Providers of this machine: local"),
        "{err}"
    );
    let err = ops::restore(
        &m,
        "local",
        &all[2].backup.name,
        &RestoreOptions {
            state: Some("db".into()),
            ..Default::default()
        },
        &Silent,
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown state 'db'"), "{err}");
}
