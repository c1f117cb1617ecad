//! `clan vars generate [MACHINE...] [-g GEN] [--regenerate] [--prompt GEN/PROMPT=FILE]`

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use clan_vars::generate::{PromptKind, PromptRequest, Prompter, generate};
use clan_vars::recipients::fix;
use clan_vars::{VarsError, keys};

use super::Fleet;
use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::prompt;

#[derive(Debug, Args)]
pub struct Opts {
    /// Machines; default: all
    pub machines: Vec<String>,
    /// Only this generator (and what depends on it)
    #[arg(short = 'g', long = "generator")]
    pub generators: Vec<String>,
    /// Run even when the values exist
    #[arg(long)]
    pub regenerate: bool,
    /// Answer a prompt from a file (an empty file where the generator allows it)
    #[arg(long = "prompt", value_name = "GEN/PROMPT=FILE", value_parser = parse_prompt)]
    pub prompts: Vec<(String, PathBuf)>,
}

pub fn parse_prompt(s: &str) -> std::result::Result<(String, PathBuf), String> {
    let (id, file) = s.split_once('=').ok_or("expected GEN/PROMPT=FILE")?;
    Ok((id.to_string(), PathBuf::from(file)))
}

/// Answers prompts from `--prompt` files, else on the terminal; without either, the
/// error says how to give the value.
struct Answers {
    files: BTreeMap<String, PathBuf>,
    terminal: bool,
}

impl Prompter for Answers {
    fn ask(&self, r: &PromptRequest<'_>) -> clan_vars::Result<Vec<u8>> {
        let id = format!("{}/{}", r.generator, r.prompt);
        if let Some(file) = self.files.get(&id) {
            return std::fs::read(file)
                .map_err(clan_vars::error::io(format!("reading {}", file.display())));
        }
        let fail = |message: String| VarsError::Generator {
            machine: r.machine.to_string(),
            generator: r.generator.to_string(),
            message,
        };
        if !self.terminal {
            return Err(fail(format!(
                "prompt '{}' ({}) needs a value and there is no terminal to ask on. Give it \
                 as --prompt {id}=FILE",
                r.prompt, r.description
            )));
        }
        let label = format!("{} {id} - {}", r.machine, r.description);
        let answer = match r.kind {
            PromptKind::Hidden => prompt::hidden_confirmed(&label),
            PromptKind::Line => prompt::line(&label),
            PromptKind::Multiline | PromptKind::MultilineHidden => {
                prompt::multiline(&label, r.kind.hidden())
            }
        };
        answer.map_err(|e| fail(format!("prompt '{}': {e}", r.prompt)))
    }
}

/// A `--prompt` that no generator of the selected machines declares is a typo or a
/// wrong machine: refused before anything runs, never ignored.
fn check_prompt_names(
    selected: &[clan_vars::generate::MachineVars<'_>],
    prompts: &[(String, PathBuf)],
) -> Result {
    let declared: Vec<String> = selected
        .iter()
        .flat_map(|m| {
            m.generators
                .iter()
                .flat_map(|(g, d)| d.prompts.keys().map(move |p| format!("{g}/{p}")))
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for (id, _) in prompts {
        if !declared.contains(id) {
            let close = clan_core::names::did_you_mean(id, declared.iter().map(String::as_str));
            return Err(CliError::Usage(format!(
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

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = Fleet::load(g, &o.machines)?;
    if fleet.all.is_empty() {
        return Err(CliError::Usage("the clan has no machines".into()));
    }
    let admin = keys::read_identity(&keys::admin_key_file())?;
    let store = fleet.store();
    let readers = fleet.readers()?;
    let selected = fleet.selected_vars();
    check_prompt_names(&selected, &o.prompts)?;
    if !clan_vars::generate::sandboxed() {
        crate::output::warning(
            "bubblewrap (bwrap) is not installed: generators run without a sandbox, with network \
             and the host writable (apt-get install bubblewrap)",
        );
    }
    let prompter = Answers {
        files: o.prompts.into_iter().collect(),
        terminal: prompt::on_terminal(),
    };
    let ran = generate(
        &store,
        &readers,
        &selected,
        &o.generators,
        o.regenerate,
        &admin,
        &prompter,
        &|m, generator| {
            eprintln!("==> {m}: generator {generator}");
        },
    )?;
    // Machines that now share a secret, or admins added since, get to read it.
    let fixed = fix(&store, &readers, &selected, &admin).unwrap_or_else(|e| {
        crate::output::warning(&format!(
            "some secrets could not be re-encrypted for their current readers ({e}); an admin \
             who can read them should run `clan vars fix`"
        ));
        Default::default()
    });
    if ran.is_empty() && fixed.is_empty() {
        println!("Every var is up to date.");
    }
    if !ran.is_empty() {
        println!(
            "Generated {} ({} generators).",
            ran.iter()
                .map(|(m, g)| format!("{m}/{g}"))
                .collect::<Vec<_>>()
                .join(", "),
            ran.len()
        );
    }
    if !fixed.is_empty() {
        println!(
            "Re-encrypted for their current readers: {}",
            fixed.describe().join(", ")
        );
    }
    Ok(())
}
