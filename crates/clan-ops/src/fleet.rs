//! The clan, opened and resolved once per command and passed to every operation.

use std::collections::BTreeMap;

use clan_core::event::{Event, Reporter};
use clan_core::{Clan, ClanDir, ResolvedMachine};
use clan_vars::generate::MachineVars;
use clan_vars::recipients::Readers;
use clan_vars::store::Store;

use crate::error::{Error, Result};

/// Every machine of the clan, resolved (shared secrets are read by all that declare
/// them, a borg server needs its clients), and the machines a command is about.
pub struct Fleet {
    pub clan: Clan,
    pub all: BTreeMap<String, ResolvedMachine>,
    pub selected: Vec<String>,
}

impl Fleet {
    /// Evaluates the clan in `dir` (one inventory evaluation and one resolution of
    /// every machine); `names` selects machines (all when empty) and must exist.
    /// Warnings of the evaluation are reported.
    pub fn load(dir: ClanDir, names: &[String], reporter: &dyn Reporter) -> Result<Self> {
        Self::open(dir, names, &[], reporter)
    }

    /// The clan opened, no machine resolved: for edits, which resolve the edited
    /// clan before they write.
    pub fn unresolved(dir: ClanDir) -> Result<Self> {
        Ok(Self {
            clan: Clan::open(dir)?,
            all: BTreeMap::new(),
            selected: Vec::new(),
        })
    }

    /// Resolves only `names` (all when empty): for commands about one machine that
    /// need nothing of the others.
    pub fn load_only(dir: ClanDir, names: &[String], reporter: &dyn Reporter) -> Result<Self> {
        Self::open(dir, names, names, reporter)
    }

    /// Opens the clan, checks `names`, resolves `resolve` (all when empty).
    fn open(
        dir: ClanDir,
        names: &[String],
        resolve: &[String],
        reporter: &dyn Reporter,
    ) -> Result<Self> {
        let clan = Clan::open(dir)?;
        for n in names {
            clan.machine(n)?;
        }
        let resolution = clan.resolve(resolve)?;
        for message in resolution.warnings {
            reporter.report(Event::Warning { message });
        }
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

    /// `f` of each selected machine's name, up to `parallel` at once (each reaches
    /// its machine), in the order of `selected`.
    pub fn map_selected<T: Send>(&self, parallel: usize, f: impl Fn(&str) -> T + Sync) -> Vec<T> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let next = AtomicUsize::new(0);
        let found = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..parallel.min(self.selected.len()) {
                s.spawn(|| {
                    while let Some(name) = self.selected.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let value = f(name);
                        found.lock().expect("results").push((name.clone(), value));
                    }
                });
            }
        });
        let mut found = found.into_inner().expect("results");
        let order = |n: &String| self.selected.iter().position(|s| s == n);
        found.sort_by_key(|(n, _)| order(n));
        found.into_iter().map(|(_, v)| v).collect()
    }

    pub fn machine(&self, name: &str) -> Result<&ResolvedMachine> {
        self.all
            .get(name)
            .ok_or_else(|| Error::Usage(format!("machine '{name}' is not resolved here")))
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

    /// The vars of `names` (machines of the fleet).
    pub fn vars_of_names<'a>(&'a self, names: &'a [String]) -> Vec<MachineVars<'a>> {
        self.vars_of(names.iter())
    }

    pub fn readers(&self) -> Result<Readers> {
        Ok(Readers::new(&self.store(), &self.all_vars())?)
    }
}
