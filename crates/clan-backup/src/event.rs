//! The event type of every operation (clan-core's), used here for backup progress.

pub use clan_core::event::{Event, Reporter, Silent};
