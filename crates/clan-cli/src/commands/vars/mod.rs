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

pub use clan_ops::Fleet;

/// Every machine of the clan resolved, `names` selected (all when empty).
pub fn fleet(g: &Global, names: &[String]) -> Result<Fleet> {
    Fleet::load(
        super::clan_dir(g)?,
        names,
        crate::render::reporter().as_ref(),
    )
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
