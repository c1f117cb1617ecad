//! `clan vars generate [MACHINE...] [-g GEN] [--regenerate] [--prompt GEN/PROMPT=FILE]`

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use clan_ops::vars::{GenerateOptions, Generated};
use clan_vars::VarsError;
use clan_vars::generate::{PromptKind, PromptRequest, Prompter};

use crate::cli::Global;
use crate::error::Result;
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

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = super::fleet(g, &o.machines)?;
    let generated = clan_ops::vars::generate(
        &fleet,
        &GenerateOptions {
            machines: Vec::new(),
            generators: o.generators,
            regenerate: o.regenerate,
            answered: o.prompts.iter().map(|(id, _)| id.clone()).collect(),
        },
        &answers(o.prompts),
        crate::render::reporter().as_ref(),
    )?;
    print_generated(&generated);
    Ok(())
}

/// The prompter of this command: `--prompt` files, else the terminal.
pub fn answers(prompts: Vec<(String, PathBuf)>) -> impl Prompter {
    Answers {
        files: prompts.into_iter().collect(),
        terminal: prompt::on_terminal(),
    }
}

pub fn print_generated(generated: &Generated) {
    let Generated { ran, reencrypted } = generated;
    if ran.is_empty() && reencrypted.is_empty() {
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
    if !reencrypted.is_empty() {
        println!(
            "Re-encrypted for their current readers: {}",
            reencrypted.join(", ")
        );
    }
}
