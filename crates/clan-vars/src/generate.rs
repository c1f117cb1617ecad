//! Running generators: which ones (missing or outdated ones and what depends on
//! them, or all with `regenerate`), in dependency order, each in a private
//! temporary directory (`$out`, `$in/<dep>/<file>`, `$prompts/<p>`), inside
//! bubblewrap when it is installed (no network, the host read-only); every
//! declared file must be produced; results go to the stores and are committed.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use age::x25519::Identity;
use clan_core::event::{Event, Reporter};
use clan_core::machine::Generator;
use clan_core::process::{Cmd, CommandError};

use crate::error::{Result, VarsError, io};
use crate::recipients::Readers;
use crate::store::{Scope, Store};

/// How a prompt is answered on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Line,
    Hidden,
    Multiline,
    MultilineHidden,
}

impl PromptKind {
    fn parse(kind: &str) -> Self {
        match kind {
            "hidden" => Self::Hidden,
            "multiline" => Self::Multiline,
            "multiline-hidden" => Self::MultilineHidden,
            _ => Self::Line,
        }
    }

    pub fn hidden(self) -> bool {
        matches!(self, Self::Hidden | Self::MultilineHidden)
    }

    pub fn multiline(self) -> bool {
        matches!(self, Self::Multiline | Self::MultilineHidden)
    }
}

/// A question a generator asks before it runs.
#[derive(Debug, Clone)]
pub struct PromptRequest<'a> {
    pub machine: &'a str,
    pub generator: &'a str,
    pub prompt: &'a str,
    pub description: &'a str,
    pub kind: PromptKind,
}

/// Answers generators' prompts (the CLI asks on a terminal or reads files).
pub trait Prompter {
    fn ask(&self, request: &PromptRequest<'_>) -> Result<Vec<u8>>;
}

/// One machine's generators.
pub struct MachineVars<'a> {
    pub name: &'a str,
    pub generators: &'a BTreeMap<String, Generator>,
}

pub fn scope(machine: &str, g: &Generator) -> Scope {
    if g.share {
        Scope::Shared
    } else {
        Scope::Machine(machine.to_string())
    }
}

/// A file a generator stores.
pub struct Output {
    pub name: String,
    pub secret: bool,
    pub deploy: bool,
}

/// Files a generator stores: the declared ones, plus persisted prompts (secret, deployed).
pub fn outputs(g: &Generator) -> Vec<Output> {
    let declared = g.files.iter().map(|(n, f)| Output {
        name: n.clone(),
        secret: f.secret,
        deploy: f.deploy,
    });
    let persisted = g
        .prompts
        .iter()
        .filter(|(p, def)| def.persist && !g.files.contains_key(*p))
        .map(|(p, _)| Output {
            name: p.clone(),
            secret: true,
            deploy: true,
        });
    declared.chain(persisted).collect()
}

/// True when every file exists and the stored validation equals the current one.
pub fn exists(store: &Store, machine: &str, name: &str, g: &Generator) -> bool {
    let s = scope(machine, g);
    let files = outputs(g).iter().all(|o| {
        if o.secret {
            store.secret_path(&s, name, &o.name).is_file()
        } else {
            store.public_path(&s, name, &o.name).is_file()
        }
    });
    let stored = std::fs::read_to_string(store.validation_path(&s, name)).ok();
    let current = (!g.validation.is_null()).then(|| g.validation.to_string());
    files && stored == current
}

/// Generators in dependency order (dependencies first); a cycle is an error.
pub fn order(gens: &BTreeMap<String, Generator>) -> Result<Vec<String>> {
    fn visit(
        n: &str,
        gens: &BTreeMap<String, Generator>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<()> {
        match state.get(n) {
            Some(2) => return Ok(()),
            Some(1) => {
                let start = stack.iter().position(|s| s == n).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(n.to_string());
                return Err(VarsError::Cycle(cycle.join(" -> ")));
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for d in &gens[n].dependencies {
            if gens.contains_key(d) {
                visit(d, gens, state, stack, out)?;
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        out.push(n.to_string());
        Ok(())
    }
    let (mut state, mut out) = (BTreeMap::new(), Vec::new());
    for n in gens.keys() {
        visit(n, gens, &mut state, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

/// What to run: the requested (or all) generators that are missing or outdated
/// (all of them with `regenerate`), the missing generators they depend on, and
/// everything that depends on what runs. In dependency order.
pub fn plan(
    gens: &BTreeMap<String, Generator>,
    only: &[String],
    regenerate: bool,
    exists: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let ordered = order(gens)?;
    let requested: Vec<&String> = if only.is_empty() {
        gens.keys().collect()
    } else {
        only.iter().collect()
    };
    let mut run: BTreeSet<String> = requested
        .iter()
        .filter(|n| regenerate || !exists(n))
        .map(|n| n.to_string())
        .collect();
    // Missing dependencies first, then dependents, until nothing changes.
    loop {
        let before = run.len();
        let deps: Vec<String> = run
            .iter()
            .flat_map(|n| gens[n].dependencies.iter())
            .filter(|d| gens.contains_key(*d) && !exists(d))
            .cloned()
            .collect();
        run.extend(deps);
        let dependents: Vec<String> = gens
            .iter()
            .filter(|(_, g)| g.dependencies.iter().any(|d| run.contains(d)))
            .map(|(n, _)| n.clone())
            .collect();
        run.extend(dependents);
        if run.len() == before {
            break;
        }
    }
    Ok(ordered.into_iter().filter(|n| run.contains(n)).collect())
}

/// True when generators run inside bubblewrap.
pub fn sandboxed() -> bool {
    on_path("bwrap")
}

fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Runs one generator; returns its files' contents.
pub fn run_one(
    machine: &str,
    name: &str,
    g: &Generator,
    inputs: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    prompts: &BTreeMap<String, Vec<u8>>,
    sandbox: bool,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let fail = |message: String| VarsError::Generator {
        machine: machine.to_string(),
        generator: name.to_string(),
        message,
    };
    let missing: Vec<&str> = g
        .runtime_inputs
        .iter()
        .filter(|p| !on_path(p))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(fail(format!(
            "needs {} on PATH (runtimeInputs); install {} first",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        )));
    }
    let work = Workdir::new(g, inputs, prompts)?;
    work.command(sandbox).run().map_err(|e| match e {
        CommandError::Failed {
            code,
            stderr,
            stdout,
            ..
        } => fail(format!(
            "the script failed with exit code {code}:\n{}{}",
            stdout,
            stderr.trim_end()
        )),
        other => fail(other.to_string()),
    })?;
    work.outputs(g).map_err(fail)
}

/// A generator's private working directory: `out/`, `in/<dep>/<file>`,
/// `prompts/<p>` and the script, removed when dropped.
struct Workdir {
    tmp: tempfile::TempDir,
    out: PathBuf,
    inp: PathBuf,
    prompts: PathBuf,
    script: PathBuf,
}

impl Workdir {
    fn new(
        g: &Generator,
        inputs: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
        prompts: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix("clan-vars-")
            .tempdir()
            .map_err(io("creating a temporary directory"))?;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(io("securing the temporary directory"))?;
        let w = Self {
            out: tmp.path().join("out"),
            inp: tmp.path().join("in"),
            prompts: tmp.path().join("prompts"),
            script: tmp.path().join("script.sh"),
            tmp,
        };
        for d in [&w.out, &w.inp, &w.prompts] {
            std::fs::create_dir(d).map_err(io("creating the generator's directories"))?;
        }
        for (dep, files) in inputs {
            for (f, v) in files {
                crate::keys::write_private(&w.inp.join(dep).join(f), v, 0o600)?;
            }
        }
        for (p, v) in prompts {
            crate::keys::write_private(&w.prompts.join(p), v, 0o600)?;
        }
        let mut script = String::from("set -euo pipefail\n");
        for (p, def) in &g.prompts {
            if def.persist {
                script.push_str(&format!("cat \"$prompts/{p}\" > \"$out/{p}\"\n"));
            }
        }
        script.push_str(&g.script);
        std::fs::write(&w.script, script).map_err(io("writing the generator script"))?;
        Ok(w)
    }

    /// The script under bash: in bubblewrap (no network, no other processes, the
    /// host read-only, only this directory writable) when `sandbox`.
    fn command(&self, sandbox: bool) -> Cmd {
        let dir = self.tmp.path();
        let cmd = if sandbox {
            Cmd::new("bwrap")
                .args([
                    "--unshare-all",
                    "--die-with-parent",
                    "--ro-bind",
                    "/",
                    "/",
                    "--dev",
                    "/dev",
                    "--proc",
                    "/proc",
                    "--tmpfs",
                    "/tmp",
                ])
                .arg("--bind")
                .arg(dir)
                .arg(dir)
                .args(["--chdir"])
                .arg(dir)
                .args(["--", "bash"])
                .arg(&self.script)
        } else {
            Cmd::new("bash").arg(&self.script).cwd(dir)
        };
        cmd.env("out", &self.out)
            .env("in", &self.inp)
            .env("prompts", &self.prompts)
    }

    /// Every declared output, or which are missing and what the script made.
    fn outputs(&self, g: &Generator) -> std::result::Result<BTreeMap<String, Vec<u8>>, String> {
        let mut produced = BTreeMap::new();
        let mut absent = Vec::new();
        for o in outputs(g) {
            match std::fs::read(self.out.join(&o.name)) {
                Ok(v) => {
                    produced.insert(o.name, v);
                }
                Err(_) => absent.push(o.name),
            }
        }
        if absent.is_empty() {
            return Ok(produced);
        }
        let mut made: Vec<String> = std::fs::read_dir(&self.out)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        made.sort();
        Err(format!(
            "did not produce {} (declared in files); it produced: {}",
            absent.join(", "),
            if made.is_empty() {
                "nothing".into()
            } else {
                made.join(", ")
            }
        ))
    }
}

/// Generates what the machines need; returns (machine, generator) of those that ran.
/// `readers` comes from every machine of the clan, `machines` are those to generate for.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    store: &Store,
    readers: &Readers,
    machines: &[MachineVars<'_>],
    only: &[String],
    regenerate: bool,
    admin: &Identity,
    prompter: &dyn Prompter,
    reporter: &dyn Reporter,
) -> Result<Vec<(String, String)>> {
    readers.check_admin(admin)?;
    let sandbox = sandboxed();
    // Plan every machine first and ask every prompt up front: nothing runs unless
    // all answers are there.
    let mut plans: Vec<(&MachineVars<'_>, Vec<String>)> = Vec::new();
    for m in machines {
        if let Some(u) = only.iter().find(|n| !m.generators.contains_key(*n)) {
            return Err(VarsError::UnknownVar {
                machine: m.name.to_string(),
                name: u.to_string(),
                suggestions: clan_core::names::did_you_mean(
                    u,
                    m.generators.keys().map(String::as_str),
                )
                .into_iter()
                .map(str::to_string)
                .collect(),
            });
        }
        let steps = plan(m.generators, only, regenerate, |n| {
            exists(store, m.name, n, &m.generators[n])
        })?;
        plans.push((m, steps));
    }
    let mut answers: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut asked_shared: BTreeSet<&str> = BTreeSet::new();
    for (m, steps) in &plans {
        for name in steps {
            let g = &m.generators[name];
            if g.share && !asked_shared.insert(name) {
                continue;
            }
            for (p, def) in &g.prompts {
                let value = prompter.ask(&PromptRequest {
                    machine: m.name,
                    generator: name,
                    prompt: p,
                    description: def.description.as_deref().unwrap_or(p),
                    kind: PromptKind::parse(&def.kind),
                })?;
                answers
                    .entry((m.name.to_string(), name.clone()))
                    .or_default()
                    .insert(p.clone(), value);
            }
        }
    }
    let mut ran = Vec::new();
    let mut done_shared: BTreeSet<String> = BTreeSet::new();
    for (m, steps) in plans {
        for name in steps {
            let g = &m.generators[&name];
            if g.share && !done_shared.insert(name.clone()) {
                continue;
            }
            reporter.report(Event::step(format!("generator {name}")).on(m.name));
            let inputs = dependency_inputs(store, m, g, admin)?;
            let no_answers = BTreeMap::new();
            let answers = answers
                .get(&(m.name.to_string(), name.clone()))
                .unwrap_or(&no_answers);
            let produced = run_one(m.name, &name, g, &inputs, answers, sandbox)?;
            let s = scope(m.name, g);
            let mut touched: Vec<PathBuf> = store.generator_dirs(&s, &name).to_vec();
            for secret in readers.secrets_of(m.name, &name, g) {
                let (recipients, keys) = readers.recipients(store, &secret)?;
                store.write_secret(
                    &s,
                    &name,
                    &secret.file,
                    &produced[&secret.file],
                    &recipients,
                )?;
                touched.extend(keys);
            }
            for o in outputs(g).into_iter().filter(|o| !o.secret) {
                store.write_public(&s, &name, &o.name, &produced[&o.name])?;
            }
            let vpath = store.validation_path(&s, &name);
            if g.validation.is_null() {
                let _ = std::fs::remove_file(&vpath);
            } else {
                std::fs::create_dir_all(vpath.parent().expect("has a parent"))
                    .map_err(io("creating a vars directory"))?;
                std::fs::write(&vpath, g.validation.to_string())
                    .map_err(io(format!("writing {}", vpath.display())))?;
            }
            let who = if g.share {
                "shared".to_string()
            } else {
                format!("machine: {}", m.name)
            };
            let refs: Vec<&Path> = touched
                .iter()
                .map(|p| p.as_path())
                .filter(|p| p.exists())
                .collect();
            clan_core::git::commit_paths(
                store.root(),
                &refs,
                &format!("vars: update via generator {name} ({who})"),
            )?;
            ran.push((m.name.to_string(), name));
        }
    }
    Ok(ran)
}

/// The files of `g`'s dependencies, as `$in/<dep>/<file>` gets them.
fn dependency_inputs(
    store: &Store,
    m: &MachineVars<'_>,
    g: &Generator,
    admin: &Identity,
) -> Result<BTreeMap<String, BTreeMap<String, Vec<u8>>>> {
    let mut inputs = BTreeMap::new();
    for dep in &g.dependencies {
        let Some(dg) = m.generators.get(dep) else {
            continue;
        };
        let s = scope(m.name, dg);
        let mut files = BTreeMap::new();
        for o in outputs(dg) {
            let v = if o.secret {
                store.read_secret(&s, dep, &o.name, admin)?
            } else {
                std::fs::read(store.public_path(&s, dep, &o.name))
                    .map_err(|_| VarsError::NotGenerated(format!("{dep}/{}", o.name)))?
            };
            files.insert(o.name, v);
        }
        inputs.insert(dep.clone(), files);
    }
    Ok(inputs)
}
