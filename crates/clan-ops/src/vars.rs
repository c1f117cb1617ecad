//! Vars operations: generate what machines need (prompts through a [`Prompter`]),
//! get and set one value, re-encrypt to the current readers, upload a machine's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clan_core::ResolvedMachine;
use clan_core::event::{Event, Reporter};
use clan_core::machine::Generator;
use clan_vars::generate::{MachineVars, Prompter, scope};
use clan_vars::keys;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::fleet::Fleet;

#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    /// Machines to generate for; empty: the fleet's selection.
    pub machines: Vec<String>,
    /// Only these generators (and what depends on them).
    pub generators: Vec<String>,
    /// Run even when the values exist.
    pub regenerate: bool,
    /// `GEN/PROMPT` ids the prompter answers without asking (`--prompt` files): each
    /// must name a prompt of the machines, else it is a typo and refused.
    pub answered: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Generated {
    /// (machine, generator) of the generators that ran.
    pub ran: Vec<(String, String)>,
    /// Secrets re-encrypted for their current readers.
    pub reencrypted: Vec<String>,
}

/// `clan vars generate`, as the admin whose key file is in place.
pub fn generate(
    fleet: &Fleet,
    o: &GenerateOptions,
    prompter: &dyn Prompter,
    reporter: &dyn Reporter,
) -> Result<Generated> {
    let admin = keys::read_identity(&keys::admin_key_file())?;
    generate_as(fleet, o, &admin, prompter, reporter)
}

/// `clan vars generate` as `admin`.
pub fn generate_as(
    fleet: &Fleet,
    o: &GenerateOptions,
    admin: &keys::Identity,
    prompter: &dyn Prompter,
    reporter: &dyn Reporter,
) -> Result<Generated> {
    if fleet.all.is_empty() {
        return Err(Error::Usage("the clan has no machines".into()));
    }
    let store = fleet.store();
    let readers = fleet.readers()?;
    let selected = if o.machines.is_empty() {
        fleet.selected_vars()
    } else {
        fleet.vars_of_names(&o.machines)
    };
    check_prompt_names(&selected, &o.answered)?;
    if !clan_vars::generate::sandboxed() {
        reporter.report(Event::Warning {
            message: "bubblewrap (bwrap) is not installed: generators run without a sandbox, \
                      with network and the host writable (apt-get install bubblewrap)"
                .into(),
        });
    }
    let ran = clan_vars::generate::generate(
        &store,
        &readers,
        &selected,
        &o.generators,
        o.regenerate,
        admin,
        prompter,
        reporter,
    )?;
    // Machines that now share a secret, or admins added since, get to read it.
    let fixed =
        clan_vars::recipients::fix(&store, &readers, &selected, admin).unwrap_or_else(|e| {
            reporter.report(Event::Warning {
                message: format!(
                    "some secrets could not be re-encrypted for their current readers ({e}); an \
                     admin who can read them should run `clan vars fix`"
                ),
            });
            Default::default()
        });
    Ok(Generated {
        ran,
        reencrypted: fixed.describe(),
    })
}

/// An answer for a prompt that no generator of the selected machines declares is a
/// typo or a wrong machine: refused before anything runs, never ignored.
fn check_prompt_names(selected: &[MachineVars<'_>], answered: &[String]) -> Result<()> {
    let declared: Vec<String> = selected
        .iter()
        .flat_map(|m| {
            m.generators
                .iter()
                .flat_map(|(g, d)| d.prompts.keys().map(move |p| format!("{g}/{p}")))
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for id in answered {
        if !declared.contains(id) {
            let close = clan_core::names::did_you_mean(id, declared.iter().map(String::as_str));
            return Err(Error::Usage(format!(
                "--prompt {id}: no generator of the selected machines has this prompt. {}",
                if !close.is_empty() {
                    format!("Did you mean: {}?", close.join(", "))
                } else if declared.is_empty() {
                    "They have no prompts.".to_string()
                } else {
                    format!("Prompts: {}", declared.join(", "))
                }
            )));
        }
    }
    Ok(())
}

/// `GEN/FILE` of a machine, with suggestions when it does not exist.
pub fn find<'a>(
    machine: &'a ResolvedMachine,
    id: &str,
) -> Result<(&'a str, &'a Generator, String)> {
    let generators = &machine.clan_core.vars.generators;
    let all: Vec<String> = generators
        .iter()
        .flat_map(|(g, d)| d.files.keys().map(move |f| format!("{g}/{f}")))
        .collect();
    let found = id.split_once('/').and_then(|(g, f)| {
        generators
            .get_key_value(g)
            .filter(|(_, d)| d.files.contains_key(f))
            .map(|(n, d)| (n.as_str(), d, f.to_string()))
    });
    found.ok_or_else(|| {
        let hint = clan_core::names::did_you_mean(id, all.iter().map(String::as_str));
        Error::Usage(format!(
            "machine '{}' has no var '{id}'.{}",
            machine.name,
            if hint.is_empty() {
                format!(" Its vars: {}", all.join(", "))
            } else {
                format!(" Did you mean: {}?", hint.join(", "))
            }
        ))
    })
}

/// `clan vars get`: a var's value (secrets decrypted with the admin's key).
pub fn get(fleet: &Fleet, machine: &str, var: &str) -> Result<Vec<u8>> {
    let m = fleet.machine(machine)?;
    let (generator, decl, file) = find(m, var)?;
    let store = fleet.store();
    let s = scope(&m.name, decl);
    Ok(if decl.files[&file].secret {
        let admin = keys::read_identity(&keys::admin_key_file())?;
        store.read_secret(&s, generator, &file, &admin)?
    } else {
        std::fs::read(store.public_path(&s, generator, &file))
            .map_err(|_| clan_vars::VarsError::NotGenerated(var.to_string()))?
    })
}

/// Whether a var is a secret, and that the admin may write it (checked before a
/// frontend asks for the value).
pub fn prepare_set(fleet: &Fleet, machine: &str, var: &str) -> Result<bool> {
    let m = fleet.machine(machine)?;
    let (_, decl, file) = find(m, var)?;
    let secret = decl.files[&file].secret;
    if secret {
        fleet
            .readers()?
            .check_admin(&keys::read_identity(&keys::admin_key_file())?)?;
    }
    Ok(secret)
}

/// `clan vars set`: writes `value` (encrypted to its readers when secret) and
/// commits; returns whether it was committed.
pub fn set(fleet: &Fleet, machine: &str, var: &str, value: &[u8]) -> Result<bool> {
    if value.is_empty() {
        return Err(Error::Usage(format!(
            "the value for {var} is empty; nothing changed"
        )));
    }
    let m = fleet.machine(machine)?;
    let (generator, decl, file) = find(m, var)?;
    let store = fleet.store();
    let s = scope(&m.name, decl);
    let mut touched = store.generator_dirs(&s, generator).to_vec();
    if decl.files[&file].secret {
        let readers = fleet.readers()?;
        let target = readers
            .secrets_of(&m.name, generator, decl)
            .into_iter()
            .find(|r| r.file == file)
            .expect("a secret file of this generator");
        let (recipients, keys) = readers.recipients(&store, &target)?;
        store.write_secret(&s, generator, &file, value, &recipients)?;
        touched.extend(keys);
    } else {
        store.write_public(&s, generator, &file, value)?;
    }
    let refs: Vec<&Path> = touched
        .iter()
        .map(PathBuf::as_path)
        .filter(|p| p.exists())
        .collect();
    Ok(clan_core::git::commit_paths(
        store.root(),
        &refs,
        &format!("vars: set {var} (machine: {})", m.name),
    )
    .map_err(clan_core::Error::from)?)
}

/// `clan vars fix`: secrets and machine keys re-encrypted to their current readers;
/// what was re-encrypted.
pub fn fix(fleet: &Fleet) -> Result<Vec<String>> {
    let admin = keys::read_identity(&keys::admin_key_file())?;
    let fixed = clan_vars::recipients::fix(
        &fleet.store(),
        &fleet.readers()?,
        &fleet.selected_vars(),
        &admin,
    )?;
    Ok(fixed.describe())
}

/// `clan vars upload`: the machine's key and deployable secrets, decrypted, laid out
/// in `directory` as on the machine.
pub fn upload(
    fleet: &Fleet,
    machine: &str,
    directory: &Path,
) -> Result<clan_vars::upload::Uploaded> {
    let admin = keys::read_identity(&keys::admin_key_file())?;
    let vars = fleet
        .all_vars()
        .into_iter()
        .find(|v| v.name == machine)
        .ok_or_else(|| Error::Usage(format!("machine '{machine}' is not resolved here")))?;
    Ok(clan_vars::upload::upload(
        &fleet.store(),
        &vars,
        &admin,
        directory,
    )?)
}

/// One var of a machine, as `clan vars list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct VarEntry {
    /// `GEN/FILE`.
    pub id: String,
    pub secret: bool,
    /// Whether the value exists in the clan.
    pub set: bool,
    /// A public value (secrets are never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `clan vars list`.
pub fn list(fleet: &Fleet, machine: &str) -> Result<Vec<VarEntry>> {
    let m = fleet.machine(machine)?;
    let store = fleet.store();
    let mut out = Vec::new();
    for (generator, decl) in &m.clan_core.vars.generators {
        let s = scope(&m.name, decl);
        for (f, file) in &decl.files {
            let (set, value) = if file.secret {
                (store.secret_path(&s, generator, f).is_file(), None)
            } else {
                match std::fs::read(store.public_path(&s, generator, f)) {
                    Ok(v) => (
                        true,
                        Some(String::from_utf8_lossy(&v).trim_end().to_string()),
                    ),
                    Err(_) => (false, None),
                }
            };
            out.push(VarEntry {
                id: format!("{generator}/{f}"),
                secret: file.secret,
                set,
                value,
            });
        }
    }
    Ok(out)
}

/// What `clan vars check` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Checked {
    /// Files that cannot be read (path relative to the clan, and why).
    pub damaged: Vec<(PathBuf, String)>,
    /// `machine: generator` of the generators that need to run.
    pub missing: Vec<String>,
    /// Secrets not encrypted to their current readers.
    pub stale: Vec<String>,
}

impl Checked {
    /// What to do, one sentence per kind of problem; empty when all is well.
    pub fn todo(&self) -> Vec<String> {
        let mut todo = Vec::new();
        if !self.damaged.is_empty() {
            todo.push(format!(
                "{} files are damaged: regenerate them (`clan vars generate MACHINE -g \
                 GENERATOR --regenerate`) or restore them from git history (`git log -- FILE`)",
                self.damaged.len()
            ));
        }
        if !self.missing.is_empty() {
            todo.push(format!(
                "{} generators need to run: `clan vars generate`",
                self.missing.len()
            ));
        }
        if !self.stale.is_empty() {
            todo.push(format!(
                "{} secrets need re-encryption: `clan vars fix`",
                self.stale.len()
            ));
        }
        todo
    }
}

/// `clan vars check`: the selected machines' vars present, readable, encrypted to
/// their current readers.
pub fn check(fleet: &Fleet) -> Result<Checked> {
    let store = fleet.store();
    let selected = fleet.selected_vars();
    let mut missing = Vec::new();
    for m in &selected {
        for (name, decl) in m.generators {
            if !clan_vars::generate::exists(&store, m.name, name, decl) {
                missing.push(format!("{}: {name}", m.name));
            }
        }
    }
    let readers = fleet.readers()?;
    let damaged = clan_vars::recipients::damaged(&store, &readers, &selected)
        .into_iter()
        .map(|(p, why)| {
            let rel = p.strip_prefix(store.root()).unwrap_or(&p).to_path_buf();
            (rel, why)
        })
        .collect();
    let stale = clan_vars::recipients::stale(&store, &readers, &selected).describe();
    Ok(Checked {
        damaged,
        missing,
        stale,
    })
}
