//! clan-backup: a machine's state (folders, PostgreSQL databases, the services that
//! use them), backup providers behind one trait, and the orchestration of backups and
//! service-aware, exact restores. Nothing here prints; progress goes out as events.

pub mod config;
pub mod drill;
pub mod engine;
pub mod error;
pub mod event;
pub mod fault;
pub mod hooks;
pub mod interrupt;
pub mod layout;
mod links;
pub mod ops;
mod pin;
pub mod postgres;
pub mod provider;
pub mod safe_fs;
pub mod scratch;
pub mod services;
pub mod tree;

pub use config::ProviderConfig;
pub use error::{BackupError, BackupErrorKind, Result};
pub use event::{Event, Reporter};
pub use ops::{BackupInfo, Machine, Reason, RestoreOptions};
