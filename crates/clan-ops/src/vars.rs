//! Vars operations: generate what machines need (prompts through a [`Prompter`]).

use std::collections::BTreeSet;

use clan_core::event::{Event, Reporter};
use clan_vars::generate::{MachineVars, Prompter};
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

/// `clan vars generate`.
pub fn generate(
    fleet: &Fleet,
    o: &GenerateOptions,
    prompter: &dyn Prompter,
    reporter: &dyn Reporter,
) -> Result<Generated> {
    if fleet.all.is_empty() {
        return Err(Error::Usage("the clan has no machines".into()));
    }
    let admin = keys::read_identity(&keys::admin_key_file())?;
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
        &admin,
        prompter,
        &|m, generator| reporter.report(Event::step(format!("generator {generator}")).on(m)),
    )?;
    // Machines that now share a secret, or admins added since, get to read it.
    let fixed =
        clan_vars::recipients::fix(&store, &readers, &selected, &admin).unwrap_or_else(|e| {
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
