//! What `clan.core.backups.providers.<name>` says, by provider kind (clan-core's
//! types: checked when the machine is resolved).

pub use clan_core::providers::*;
