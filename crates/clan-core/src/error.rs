//! The error of clan-core's public API: one variant per thing that can go wrong,
//! each saying what failed and how to fix it.

use crate::validate::Issue;

fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!("\nDid you mean: {}?", s.join(", "))
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    ClanDir(#[from] crate::clan_dir::ClanDirError),
    #[error(transparent)]
    Load(#[from] crate::inventory::LoadError),
    #[error(transparent)]
    Inventory(#[from] crate::inventory::InventoryError),
    #[error(transparent)]
    Module(#[from] crate::modules::ModuleError),
    #[error(transparent)]
    Nix(#[from] crate::nix::NixError),
    #[error(transparent)]
    Merge(#[from] crate::merge::MergeError),
    #[error(transparent)]
    Git(#[from] crate::git::GitError),
    #[error("machine '{name}' is not in the inventory{}", suggest(.suggestions))]
    UnknownMachine {
        name: String,
        suggestions: Vec<String>,
    },
    #[error(
        "instance '{instance}' uses module '{module}'{}, which does not exist.\nAvailable modules: {}{}",
        .input.as_ref().map(|i| format!(" (input '{i}')")).unwrap_or_default(), list(.available),
        unknown_input(.input.as_deref())
    )]
    UnknownModule {
        instance: String,
        module: String,
        input: Option<String>,
        available: Vec<String>,
    },
    #[error("instance '{instance}': module '{module}' has no role '{role}'. Its roles: {}", list(.available))]
    UnknownRole {
        instance: String,
        module: String,
        role: String,
        available: Vec<String>,
    },
    #[error(
        "instance '{instance}', role '{role}' names machine '{machine}', which is not defined.\n\
         Define it (`clan machines create {machine}`) or remove it from the role{}", suggest(.suggestions)
    )]
    UndefinedMachine {
        instance: String,
        role: String,
        machine: String,
        suggestions: Vec<String>,
    },
    #[error(
        "settings of instance '{instance}', role '{role}' for machine '{machine}' are invalid:\n{}\n\
         See the settings with `clan modules show {module}`",
        crate::inventory::format_issues(.issues)
    )]
    InvalidSettings {
        instance: String,
        module: String,
        role: String,
        machine: String,
        issues: Vec<Issue>,
    },
    /// `place`: instance, role and machine; `setting`: its path and module.
    #[error("{place}: setting {setting} is not supported by clan ({reason}). Remove it.")]
    UnsupportedSetting {
        place: String,
        setting: String,
        reason: String,
    },
    #[error("the configuration of machine '{machine}' is invalid:\n{}", crate::inventory::format_issues(.issues))]
    InvalidMachineConfig { machine: String, issues: Vec<Issue> },
    #[error("module '{module}', role '{role}': {source}")]
    Schema {
        module: String,
        role: String,
        source: crate::schema::SchemaError,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// For a `module.input` clan does not know: the inputs it does.
fn unknown_input(input: Option<&str>) -> String {
    match input {
        Some(i) if i != "self" && !crate::modules::BUILTIN_INPUTS.contains(&i) => format!(
            "\nInput '{i}' is not one clan knows (flake inputs other than Clan's are not read): \
             module.input may be {}",
            crate::modules::KNOWN_INPUTS
        ),
        _ => String::new(),
    }
}
