//! The CLI's error is the operations' (clan-ops), which carries its kind and hint.

pub use clan_ops::Error as CliError;

pub type Result<T = ()> = std::result::Result<T, CliError>;
