//! `clan vars ...`

pub mod check;
pub mod fix;
pub mod generate;
pub mod get;
pub mod keygen;
pub mod list;
pub mod set;
pub mod upload;

use std::collections::BTreeMap;

use clan_core::machine::Generator;
use clan_core::{Clan, ResolvedMachine};

use clan_vars::generate::MachineVars;
use clan_vars::recipients::Readers;
use clan_vars::store::Store;

use crate::cli::Global;
use crate::error::{CliError, Result};

/// The clan and the resolved machines (all when `names` is empty).
pub fn machines(g: &Global, names: &[String]) -> Result<(Clan, BTreeMap<String, ResolvedMachine>)> {
    let clan = super::open_clan(g)?;
    let resolution = clan.resolve(names)?;
    resolution
        .warnings
        .iter()
        .for_each(|w| crate::output::warning(w));
    Ok((clan, resolution.machines))
}

/// Every machine of the clan (shared secrets are read by all that declare them) and
/// the names a command is about (all when none are given).
pub struct Fleet {
    pub clan: Clan,
    pub all: BTreeMap<String, ResolvedMachine>,
    pub selected: Vec<String>,
}

impl Fleet {
    pub fn load(g: &Global, names: &[String]) -> Result<Self> {
        let clan = super::open_clan(g)?;
        for n in names {
            clan.machine(n)?;
        }
        let resolution = clan.resolve(&[])?;
        resolution
            .warnings
            .iter()
            .for_each(|w| crate::output::warning(w));
        let selected = if names.is_empty() {
            resolution.machines.keys().cloned().collect()
        } else {
            names.to_vec()
        };
        Ok(Self {
            clan,
            all: resolution.machines,
            selected,
        })
    }

    pub fn store(&self) -> Store {
        Store::new(self.clan.dir.root())
    }

    fn vars_of<'a>(&'a self, names: impl Iterator<Item = &'a String>) -> Vec<MachineVars<'a>> {
        names
            .map(|n| MachineVars {
                name: &self.all[n].name,
                generators: &self.all[n].clan_core.vars.generators,
            })
            .collect()
    }

    pub fn all_vars(&self) -> Vec<MachineVars<'_>> {
        self.vars_of(self.all.keys())
    }

    pub fn selected_vars(&self) -> Vec<MachineVars<'_>> {
        self.vars_of(self.selected.iter())
    }

    pub fn readers(&self) -> Result<Readers> {
        Ok(Readers::new(&self.store(), &self.all_vars())?)
    }
}

/// `GEN/FILE` of a machine, with suggestions when it does not exist.
pub fn find<'a>(
    machine: &'a ResolvedMachine,
    id: &str,
) -> Result<(&'a str, &'a Generator, String)> {
    let all: Vec<String> = machine
        .clan_core
        .vars
        .generators
        .iter()
        .flat_map(|(g, d)| d.files.keys().map(move |f| format!("{g}/{f}")))
        .collect();
    let found = id.split_once('/').and_then(|(g, f)| {
        machine
            .clan_core
            .vars
            .generators
            .get_key_value(g)
            .filter(|(_, d)| d.files.contains_key(f))
            .map(|(n, d)| (n.as_str(), d, f.to_string()))
    });
    found.ok_or_else(|| {
        let hint = clan_core::names::did_you_mean(id, all.iter().map(String::as_str));
        CliError::Usage(format!(
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
