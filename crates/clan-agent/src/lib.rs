//! clan-agent: the daemon on a machine that serves SelfPrivacy's GraphQL API (the
//! app's transport, auth and types) over clan's operations.
//!
//! Decisions: axum (HTTP, WebSocket) with async-graphql (the schema as Rust types,
//! served as SDL the app accepts; subscriptions over `graphql-transport-ws` and
//! `graphql-ws`) on tokio; the agent's own data (device tokens, keys, jobs) in
//! SQLite (rusqlite, bundled: no system library to match), under
//! `/var/lib/clan/agent` by default. Tokens are random, stored as SHA-256 hashes
//! only; keys are BIP39 mnemonics (the `bip39` crate), stored as hashes too. Long
//! operations run as jobs on threads of their own, so a client that goes away does
//! not stop them.

pub mod agent;
pub mod auth;
pub mod held;
pub mod jobs;
pub mod schema;
pub mod server;
pub mod store;
pub mod system;
pub mod tls;

/// The API version the SelfPrivacy app checks (it wants at least 3.8.3).
pub const API_VERSION: &str = "3.8.4";

/// The message SelfPrivacy gives for every field that needs a token.
pub const NOT_AUTHENTICATED: &str = "You must be authenticated to access this resource.";

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the agent's database {path}: {message}")]
    Store { path: String, message: String },
    #[error("TLS with {path}: {message}")]
    Tls { path: String, message: String },
    #[error("the machine to serve: {message}")]
    Machine { message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}
