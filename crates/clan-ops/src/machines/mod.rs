//! Machine operations.

pub mod check;
pub mod create;
pub mod delete;
pub mod nixos;
pub mod update;
