//! Machine operations.

pub mod update;
