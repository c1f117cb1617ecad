//! clan-ui: `clan ui`, the whole clan in a browser.
//!
//! Decisions: the server is axum on tokio, as the agent's; its API is plain JSON
//! over HTTP (`/api/...`), one resource per thing the UI shows, and long
//! operations are jobs whose events stream as server-sent events. The agent speaks
//! GraphQL because the SelfPrivacy app does; the UI has no such client to match,
//! and JSON documents (inventories, JSON Schemas, forms' values) travel as they
//! are. Every action calls clan-ops, as the CLI does. The frontend (ui/: React
//! with react-jsonschema-form, bundled by esbuild) is embedded in the binary.
//!
//! Access: a random token in the URL `clan ui` prints, exchanged on first load for
//! an HttpOnly, SameSite=Strict cookie; requests without it get 401, and requests
//! that change anything also need the `X-Clan-Ui` header (a page of another site
//! cannot send it without asking first).

pub mod api;
mod assets;
pub mod jobs;
pub mod server;

pub use server::{Config, router, run};
