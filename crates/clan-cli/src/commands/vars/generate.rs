//! `clan vars generate [MACHINE...] [-g GEN] [--regenerate] [--prompt GEN/PROMPT=FILE]`

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use clan_vars::generate::{MachineVars, Prompter, generate};
use clan_vars::store::Store;
use clan_vars::{VarsError, keys};

use crate::cli::Global;
use crate::error::{CliError, Result};

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

fn parse_prompt(s: &str) -> std::result::Result<(String, PathBuf), String> {
    let (id, file) = s.split_once('=').ok_or("expected GEN/PROMPT=FILE")?;
    Ok((id.to_string(), PathBuf::from(file)))
}

/// Answers prompts from `--prompt` files; without one, says how to give it.
struct Files(BTreeMap<String, PathBuf>);

impl Prompter for Files {
    fn ask(
        &self,
        machine: &str,
        generator: &str,
        prompt: &str,
        description: &str,
        _hidden: bool,
    ) -> clan_vars::Result<Vec<u8>> {
        let id = format!("{generator}/{prompt}");
        match self.0.get(&id) {
            Some(file) => std::fs::read(file)
                .map_err(clan_vars::error::io(format!("reading {}", file.display()))),
            None => Err(VarsError::Generator {
                machine: machine.to_string(),
                generator: generator.to_string(),
                message: format!(
                    "prompt '{prompt}' ({description}) needs a value. Give it without a terminal as \
                     --prompt {id}=FILE (asking on a terminal is not supported yet)"
                ),
            }),
        }
    }
}

pub fn run(g: &Global, o: Opts) -> Result {
    let (clan, machines) = super::machines(g, &o.machines)?;
    let admin = keys::read_identity(&keys::admin_key_file())?;
    let store = Store::new(clan.dir.root());
    let list: Vec<MachineVars<'_>> = machines
        .values()
        .map(|m| MachineVars {
            name: &m.name,
            generators: &m.clan_core.vars.generators,
        })
        .collect();
    if !clan_vars::generate::sandboxed() {
        crate::output::warning(
            "bubblewrap (bwrap) is not installed: generators run without a sandbox, with network \
             and the host writable (apt-get install bubblewrap)",
        );
    }
    let prompter = Files(o.prompts.into_iter().collect());
    let ran = generate(
        &store,
        &list,
        &o.generators,
        o.regenerate,
        &admin,
        &prompter,
        &|m, generator| {
            eprintln!("==> {m}: generator {generator}");
        },
    )?;
    if ran.is_empty() {
        println!("Every var is up to date.");
    } else {
        println!(
            "Generated {} ({} generators).",
            ran.iter()
                .map(|(m, g)| format!("{m}/{g}"))
                .collect::<Vec<_>>()
                .join(", "),
            ran.len()
        );
    }
    if machines.is_empty() {
        return Err(CliError::Usage("the clan has no machines".into()));
    }
    Ok(())
}
