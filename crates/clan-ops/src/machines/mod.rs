//! Machine operations.

pub mod create;
pub mod delete;
pub mod update;
