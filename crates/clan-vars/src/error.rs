//! Errors of the vars layer; each says what to do.

#[derive(Debug, thiserror::Error)]
pub enum VarsError {
    #[error(
        "no admin key: {} does not exist.\nCreate one with `clan vars keygen` (or point CLAN_AGE_KEY_FILE at an age identity file)",
        .0.display()
    )]
    NoAdminKey(std::path::PathBuf),
    #[error(
        "{path} can be read by other users (mode {mode:o}); it is a private key, so clan does not \
         use it (as ssh does not). Make it yours alone: chmod 600 {path}",
        path = .0.display(), mode = .1
    )]
    KeyTooOpen(std::path::PathBuf, u32),
    #[error("the clan has no admins (secrets/admins/*.pub); run `clan vars keygen` first")]
    NoAdmins,
    #[error(
        "your key ({0}) is not one of the clan's admins (secrets/admins/*.pub); ask an admin to add it"
    )]
    NotAnAdmin(String),
    #[error("{0}: cannot decrypt it with your key: {1}")]
    Decrypt(String, String),
    #[error(
        "{0} is damaged: {1}. Regenerate it (`clan vars generate MACHINE -g GENERATOR --regenerate`) \
         or restore the file from git history (`git log -- FILE`, then `git checkout COMMIT -- FILE`)"
    )]
    Damaged(String, String),
    #[error("generator '{generator}' of machine '{machine}': {message}")]
    Generator {
        machine: String,
        generator: String,
        message: String,
    },
    #[error("generators form a cycle: {0}")]
    Cycle(String),
    #[error("machine '{machine}' has no generator '{name}'{}", if .suggestions.is_empty() { String::new() } else { format!(". Did you mean: {}?", .suggestions.join(", ")) })]
    UnknownVar {
        machine: String,
        name: String,
        suggestions: Vec<String>,
    },
    #[error("{0} has not been generated yet; run `clan vars generate`")]
    NotGenerated(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Git(#[from] clan_core::git::GitError),
}

pub type Result<T, E = VarsError> = std::result::Result<T, E>;

pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> VarsError {
    let context = context.into();
    move |source| VarsError::Io { context, source }
}
