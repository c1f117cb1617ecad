//! clan-ops: the operations of clan as a library, for every frontend (the `clan`
//! command, the machine agent, the web UI). Each takes a [`Fleet`] (the clan
//! evaluated once per command) and typed options, returns typed results or an
//! [`Error`] with a serialisable kind, and reports progress as [`Event`]s. Nothing
//! here prints or reads a terminal: prompts go through [`clan_vars::generate::Prompter`].

pub mod backups;
pub mod config;
pub mod error;
pub mod fleet;
pub mod health;
pub mod init;
pub mod inventory;
pub mod machines;
pub mod remote;
pub mod vars;

pub use clan_core::event::{Event, Reporter, Silent};
pub use error::{Error, ErrorKind, ErrorReport, Result};
pub use fleet::Fleet;
