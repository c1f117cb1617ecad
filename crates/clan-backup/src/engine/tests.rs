use super::*;

#[test]
fn rustic_backs_up_lists_restores_forgets_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("sub/empty")).unwrap();
    std::fs::write(data.join("sub/a.txt"), "hello").unwrap();
    std::fs::write(data.join("stays.txt"), "the same").unwrap();
    let engine = Rustic::new(RepoSpec {
        repository: tmp.path().join("repo").display().to_string(),
        password_file: pw,
    });
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
        .forget(&Keep {
            last: 1,
            ..Keep::default()
        })
        .unwrap();
    assert_eq!(forgotten, ["m-restic-1"]);
    engine.check(true).unwrap();
    assert_eq!(engine.snapshots().unwrap().len(), 1);
}

#[test]
fn the_restic_cli_reads_what_the_engine_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "from the engine").unwrap();
    let repo = tmp.path().join("repo");
    let engine = Rustic::new(RepoSpec {
        repository: repo.display().to_string(),
        password_file: pw.clone(),
    });
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

    let restic = |args: &[&str]| {
        let out = std::process::Command::new("restic")
            .args(["--no-cache", "-r"])
            .arg(&repo)
            .args(["--password-file"])
            .arg(&pw)
            .args(args)
            .output()
            .expect("restic runs");
        assert!(
            out.status.success(),
            "restic {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
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
