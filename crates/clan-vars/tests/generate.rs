//! Generators run for real (bash, bubblewrap when installed), with a real git repo
//! and real age encryption.

use std::collections::BTreeMap;

use clan_core::machine::{Generator, GeneratorFile, Prompt};
use clan_vars::generate::{MachineVars, Prompter, generate, plan};
use clan_vars::store::{Scope, Store};
use clan_vars::{VarsError, keys};

fn file(secret: bool) -> GeneratorFile {
    GeneratorFile {
        secret,
        deploy: true,
        owner: "root".into(),
        group: "root".into(),
        mode: "0400".into(),
        needed_for: "services".into(),
    }
}

fn generator(files: &[(&str, bool)], deps: &[&str], script: &str) -> Generator {
    Generator {
        share: false,
        dependencies: deps.iter().map(|d| d.to_string()).collect(),
        files: files
            .iter()
            .map(|(n, s)| (n.to_string(), file(*s)))
            .collect(),
        prompts: BTreeMap::new(),
        runtime_inputs: vec![],
        script: script.into(),
        validation: serde_json::Value::Null,
    }
}

struct Answers(BTreeMap<String, String>);

impl Prompter for Answers {
    fn ask(&self, _m: &str, g: &str, p: &str, _d: &str, _h: bool) -> clan_vars::Result<Vec<u8>> {
        Ok(self
            .0
            .get(&format!("{g}/{p}"))
            .cloned()
            .unwrap_or_default()
            .into_bytes())
    }
}

fn no_prompts() -> Answers {
    Answers(BTreeMap::new())
}

/// A clan git repo with one admin; returns the admin identity.
fn setup() -> (tempfile::TempDir, age::x25519::Identity) {
    let dir = tempfile::tempdir().unwrap();
    clan_core::git::init(dir.path()).unwrap();
    std::fs::write(dir.path().join("inventory.json"), "{}").unwrap();
    clan_core::git::commit_all(dir.path(), "init").unwrap();
    let id = keys::ensure_admin_identity(&dir.path().join("admin-key.txt")).unwrap();
    Store::new(dir.path())
        .add_admin("alice", &id.to_public())
        .unwrap();
    (dir, id)
}

fn commits(dir: &std::path::Path) -> usize {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-list", "--count", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn dependencies_run_first_and_see_their_inputs_secrets_are_encrypted_and_rerun_is_a_noop() {
    let (dir, admin) = setup();
    let store = Store::new(dir.path());
    let gens = BTreeMap::from([
        (
            "key".to_string(),
            generator(
                &[("secret", true), ("pub", false)],
                &[],
                "echo s3cr3t-poison > $out/secret; echo public > $out/pub",
            ),
        ),
        (
            "derived".to_string(),
            generator(
                &[("combined", false)],
                &["key"],
                "cat $in/key/secret $in/key/pub > $out/combined",
            ),
        ),
    ]);
    let m = [MachineVars {
        name: "m",
        generators: &gens,
    }];
    let ran = generate(&store, &m, &[], false, &admin, &no_prompts(), &|_, _| {}).unwrap();
    assert_eq!(
        ran,
        [("m".into(), "key".into()), ("m".into(), "derived".into())]
    );
    let combined = std::fs::read_to_string(store.public_path(
        &Scope::Machine("m".into()),
        "derived",
        "combined",
    ))
    .unwrap();
    assert_eq!(combined, "s3cr3t-poison\npublic\n");
    let secret_file = store.secret_path(&Scope::Machine("m".into()), "key", "secret");
    let raw = std::fs::read(&secret_file).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("s3cr3t-poison"));
    assert_eq!(
        store
            .read_secret(&Scope::Machine("m".into()), "key", "secret", &admin)
            .unwrap(),
        b"s3cr3t-poison\n"
    );
    // The machine can read its own secret with its own key.
    let machine_id = store.machine_identity("m", &admin).unwrap();
    assert_eq!(
        store
            .read_secret(&Scope::Machine("m".into()), "key", "secret", &machine_id)
            .unwrap(),
        b"s3cr3t-poison\n"
    );

    let before = commits(dir.path());
    assert!(
        generate(&store, &m, &[], false, &admin, &no_prompts(), &|_, _| {})
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        commits(dir.path()),
        before,
        "a second run changes nothing and commits nothing"
    );

    // Regenerating a dependency regenerates what depends on it.
    let ran = generate(
        &store,
        &m,
        &["key".into()],
        true,
        &admin,
        &no_prompts(),
        &|_, _| {},
    )
    .unwrap();
    assert_eq!(ran.len(), 2);
}

#[test]
fn a_changed_validation_makes_the_generator_run_again() {
    let (dir, admin) = setup();
    let store = Store::new(dir.path());
    let mut g = generator(&[("v", false)], &[], "date +%s%N > $out/v");
    g.validation = serde_json::json!({"length": 16});
    let mut gens = BTreeMap::from([("pw".to_string(), g)]);
    let run = |gens: &BTreeMap<String, Generator>| {
        generate(
            &store,
            &[MachineVars {
                name: "m",
                generators: gens,
            }],
            &[],
            false,
            &admin,
            &no_prompts(),
            &|_, _| {},
        )
        .unwrap()
    };
    assert_eq!(run(&gens).len(), 1);
    assert_eq!(run(&gens).len(), 0);
    gens.get_mut("pw").unwrap().validation = serde_json::json!({"length": 32});
    assert_eq!(run(&gens).len(), 1);
}

#[test]
fn missing_outputs_failing_scripts_cycles_and_missing_programs_are_named() {
    let (dir, admin) = setup();
    let store = Store::new(dir.path());
    let run = |gens: BTreeMap<String, Generator>| {
        generate(
            &store,
            &[MachineVars {
                name: "m",
                generators: &gens,
            }],
            &[],
            false,
            &admin,
            &no_prompts(),
            &|_, _| {},
        )
        .unwrap_err()
    };
    let err = run(BTreeMap::from([(
        "g".into(),
        generator(
            &[("a", false), ("b", true)],
            &[],
            "echo > $out/a; echo > $out/other",
        ),
    )]));
    assert!(
        err.to_string()
            .contains("did not produce b (declared in files); it produced: a, other"),
        "{err}"
    );
    let err = run(BTreeMap::from([(
        "g".into(),
        generator(&[("a", false)], &[], "echo 'no entropy' >&2; exit 3"),
    )]));
    let msg = err.to_string();
    assert!(
        msg.contains("generator 'g' of machine 'm'")
            && msg.contains("exit code 3")
            && msg.contains("no entropy"),
        "{msg}"
    );
    let err = run(BTreeMap::from([
        ("a".into(), generator(&[("x", false)], &["b"], "")),
        ("b".into(), generator(&[("x", false)], &["c"], "")),
        ("c".into(), generator(&[("x", false)], &["a"], "")),
    ]));
    assert!(matches!(err, VarsError::Cycle(_)), "{err}");
    assert!(err.to_string().contains("a -> b -> c -> a"), "{err}");
    let mut g = generator(&[("a", false)], &[], "");
    g.runtime_inputs = vec!["no-such-tool".into()];
    let err = run(BTreeMap::from([("g".into(), g)]));
    assert!(
        err.to_string().contains("needs no-such-tool on PATH"),
        "{err}"
    );
}

#[test]
fn prompts_and_shared_generators() {
    let (dir, admin) = setup();
    let store = Store::new(dir.path());
    let mut g = generator(
        &[("password", true)],
        &[],
        "cat $prompts/pw > $out/password",
    );
    g.prompts.insert(
        "pw".into(),
        Prompt {
            description: Some("Password".into()),
            kind: "hidden".into(),
            persist: false,
        },
    );
    let mut shared = generator(&[("token", true)], &[], "echo shared-token > $out/token");
    shared.share = true;
    let gens = BTreeMap::from([("login".to_string(), g), ("cluster".to_string(), shared)]);
    let answers = Answers(BTreeMap::from([(
        "login/pw".to_string(),
        "hunter2".to_string(),
    )]));
    let machines = [
        MachineVars {
            name: "a",
            generators: &gens,
        },
        MachineVars {
            name: "b",
            generators: &gens,
        },
    ];
    let ran = generate(&store, &machines, &[], false, &admin, &answers, &|_, _| {}).unwrap();
    assert_eq!(
        ran.iter().filter(|(_, g)| g == "cluster").count(),
        1,
        "a shared generator runs once"
    );
    assert_eq!(
        store
            .read_secret(&Scope::Machine("b".into()), "login", "password", &admin)
            .unwrap(),
        b"hunter2"
    );
    for m in ["a", "b"] {
        let id = store.machine_identity(m, &admin).unwrap();
        assert_eq!(
            store
                .read_secret(&Scope::Shared, "cluster", "token", &id)
                .unwrap(),
            b"shared-token\n",
            "{m} reads the shared secret"
        );
    }
    assert!(plan(&gens, &[], false, |_| true).unwrap().is_empty());
}
