//! Generators run for real (bash, bubblewrap when installed), with a real git repo
//! and real age encryption.

use std::collections::BTreeMap;

use age::x25519::Identity;
use clan_core::machine::{Generator, GeneratorFile, Prompt};
use clan_vars::generate::{MachineVars, PromptRequest, Prompter, generate, plan};
use clan_vars::recipients::{Readers, fix, stale};
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

/// Generates for `machines`, which are the whole clan.
fn run_generators(
    store: &Store,
    machines: &[MachineVars<'_>],
    only: &[String],
    regenerate: bool,
    admin: &Identity,
    prompter: &dyn Prompter,
) -> clan_vars::Result<Vec<(String, String)>> {
    let readers = Readers::new(store, machines)?;
    generate(
        store,
        &readers,
        machines,
        only,
        regenerate,
        admin,
        prompter,
        &clan_core::event::Silent,
    )
}

struct Answers(BTreeMap<String, String>);

impl Prompter for Answers {
    fn ask(&self, r: &PromptRequest<'_>) -> clan_vars::Result<Vec<u8>> {
        Ok(self
            .0
            .get(&format!("{}/{}", r.generator, r.prompt))
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
    let ran = run_generators(&store, &m, &[], false, &admin, &no_prompts()).unwrap();
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
        run_generators(&store, &m, &[], false, &admin, &no_prompts())
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        commits(dir.path()),
        before,
        "a second run changes nothing and commits nothing"
    );

    // Regenerating a dependency regenerates what depends on it.
    let ran = run_generators(&store, &m, &["key".into()], true, &admin, &no_prompts()).unwrap();
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
        run_generators(
            &store,
            &[MachineVars {
                name: "m",
                generators: gens,
            }],
            &[],
            false,
            &admin,
            &no_prompts(),
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
        run_generators(
            &store,
            &[MachineVars {
                name: "m",
                generators: &gens,
            }],
            &[],
            false,
            &admin,
            &no_prompts(),
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
    let ran = run_generators(&store, &machines, &[], false, &admin, &answers).unwrap();
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

fn secret_of(store: &Store, scope: Scope, g: &str, f: &str, id: &Identity) -> Option<Vec<u8>> {
    store.read_secret(&scope, g, f, id).ok()
}

#[test]
fn a_machine_added_to_a_shared_generator_gets_it_re_encrypted() {
    let (dir, admin) = setup();
    let store = Store::new(dir.path());
    let mut shared = generator(&[("token", true)], &[], "echo shared-token > $out/token");
    shared.share = true;
    let gens = BTreeMap::from([("cluster".to_string(), shared)]);
    let a = MachineVars {
        name: "a",
        generators: &gens,
    };
    let b = MachineVars {
        name: "b",
        generators: &gens,
    };
    run_generators(
        &store,
        std::slice::from_ref(&a),
        &[],
        false,
        &admin,
        &no_prompts(),
    )
    .unwrap();

    // b now declares the shared generator too: its value exists, so nothing runs,
    // but b cannot read it until it is re-encrypted.
    let both = [a, b];
    let readers = Readers::new(&store, &both).unwrap();
    let found = stale(&store, &readers, &both[1..]);
    assert_eq!(found.describe(), ["shared: cluster/token"]);
    let before = commits(dir.path());
    let fixed = fix(&store, &readers, &both[1..], &admin).unwrap();
    assert_eq!(fixed.len(), 1);
    assert_eq!(commits(dir.path()), before + 1, "one commit");
    for m in ["a", "b"] {
        let id = store.machine_identity(m, &admin).unwrap();
        assert_eq!(
            secret_of(&store, Scope::Shared, "cluster", "token", &id).as_deref(),
            Some(&b"shared-token\n"[..]),
            "{m} reads the shared secret"
        );
    }
    assert!(stale(&store, &readers, &both).is_empty());
    assert!(fix(&store, &readers, &both, &admin).unwrap().is_empty());
    assert_eq!(commits(dir.path()), before + 1, "nothing left to fix");
}

#[test]
fn a_new_admin_can_read_everything_once_an_admin_fixes() {
    let (dir, alice) = setup();
    let store = Store::new(dir.path());
    let gens = BTreeMap::from([(
        "k".to_string(),
        generator(&[("s", true)], &[], "echo machine-secret > $out/s"),
    )]);
    let m = [MachineVars {
        name: "m",
        generators: &gens,
    }];
    run_generators(&store, &m, &[], false, &alice, &no_prompts()).unwrap();

    let bob = Identity::generate();
    store.add_admin("bob", &bob.to_public()).unwrap();
    let readers = Readers::new(&store, &m).unwrap();
    let found = stale(&store, &readers, &m);
    assert_eq!(
        found.describe(),
        ["m: k/s", "m: machine key (secrets/machines/m/key.age)"]
    );
    assert!(secret_of(&store, Scope::Machine("m".into()), "k", "s", &bob).is_none());
    // Bob is registered but cannot decrypt yet: he cannot fix it himself.
    let err = fix(&store, &readers, &m, &bob).unwrap_err();
    assert!(matches!(err, VarsError::Decrypt(..)), "{err}");

    fix(&store, &readers, &m, &alice).unwrap();
    assert_eq!(
        secret_of(&store, Scope::Machine("m".into()), "k", "s", &bob).as_deref(),
        Some(&b"machine-secret\n"[..])
    );
    let machine_key = store.machine_identity("m", &bob).unwrap();
    assert_eq!(
        secret_of(&store, Scope::Machine("m".into()), "k", "s", &machine_key).as_deref(),
        Some(&b"machine-secret\n"[..]),
        "the machine's key stayed the same"
    );
    assert!(stale(&store, &readers, &m).is_empty());
}

#[test]
fn upload_writes_the_machine_key_and_its_deployable_secrets_with_modes() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (dir, admin) = setup();
    let store = Store::new(dir.path());
    let mut g = generator(
        &[("deployed", true), ("public", false), ("admins-only", true)],
        &[],
        "echo d > $out/deployed; echo p > $out/public; echo a > $out/admins-only",
    );
    g.files.get_mut("deployed").unwrap().mode = "0440".into();
    g.files.get_mut("admins-only").unwrap().deploy = false;
    let mut other = generator(&[("tok", true)], &[], "echo t > $out/tok");
    other.files.get_mut("tok").unwrap().owner = "no-such-user-anywhere".into();
    let gens = BTreeMap::from([("g".to_string(), g), ("other".to_string(), other)]);
    let m = MachineVars {
        name: "m",
        generators: &gens,
    };
    run_generators(
        &store,
        std::slice::from_ref(&m),
        &[],
        false,
        &admin,
        &no_prompts(),
    )
    .unwrap();

    let target = dir.path().join("out/secrets");
    let done = clan_vars::upload::upload(&store, &m, &admin, &target).unwrap();
    let paths: Vec<&str> = done
        .manifest
        .files
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(paths, ["key.txt", "vars/g/deployed", "vars/other/tok"]);
    assert_eq!(
        std::fs::read_to_string(target.join("vars/g/deployed")).unwrap(),
        "d\n"
    );
    let meta = std::fs::metadata(target.join("vars/g/deployed")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o440);
    let key = keys::read_identity(&target.join("key.txt")).unwrap();
    assert_eq!(
        key.to_public().to_string(),
        store
            .machine_identity("m", &admin)
            .unwrap()
            .to_public()
            .to_string()
    );
    assert_eq!(
        std::fs::metadata(target.join("key.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o400
    );
    assert!(!target.join("vars/g/public").exists() && !target.join("vars/g/admins-only").exists());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(target.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["files"][2]["owner"], "no-such-user-anywhere");
    assert!(
        done.ownership_deferred
            .contains(&"vars/other/tok".to_string())
    );
    if meta.uid() == 0 {
        assert_eq!(done.ownership_deferred, ["vars/other/tok"]);
    }

    // A second upload replaces the first; a directory with other files is refused.
    std::fs::write(target.join("vars/g/leftover"), "x").unwrap();
    clan_vars::upload::upload(&store, &m, &admin, &target).unwrap();
    assert!(!target.join("vars/g/leftover").exists());
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("mine"), "keep").unwrap();
    let err = clan_vars::upload::upload(&store, &m, &admin, &foreign).unwrap_err();
    assert!(err.to_string().contains("has other files"), "{err}");
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 1);
}
