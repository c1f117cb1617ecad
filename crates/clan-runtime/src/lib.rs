//! The machine runtime: the same `clan` binary, installed on a machine, does the
//! work that must happen there (backups, restores, setting the machine up). The
//! admin's `clan` sends one request (JSON on stdin, so secrets never reach a command
//! line) and reads JSON lines back: progress events as they happen, then one result.
//!
//! ```text
//! admin: clan backups create alice ──ssh──> /usr/local/lib/clan/clan-<id> __runtime
//!        renders events  <── {"event":…} {"event":…} {"done":…}
//! ```

pub mod apply;
pub mod backups;
pub mod binary;
pub mod client;
pub mod nixos;
pub mod protocol;
pub mod serve;

pub use client::Runtime;
pub use protocol::{Reply, Request};

/// Errors talking to a machine's runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Host(#[from] clan_core::host::HostError),
    #[error("on {host}: {}", .error.message)]
    Failed {
        host: String,
        error: protocol::WireError,
    },
    #[error("the clan runtime on {host} answered something unexpected: {message}")]
    Protocol { host: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
