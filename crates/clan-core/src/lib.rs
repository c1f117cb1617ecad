//! clan-core: the clan directory, its evaluation with Nix, the inventory, service
//! modules, option schemas, and the resolution of every machine's configuration.
//! Nothing here prints: functions return values, warnings and typed errors.

pub mod calendar;
pub mod clan_dir;
pub mod error;
pub mod event;
pub mod git;
pub mod host;
pub mod inventory;
pub mod machine;
pub mod merge;
pub mod modules;
pub mod names;
pub mod nix;
pub mod nixos;
pub mod options;
pub mod process;
pub mod providers;
pub mod resolve;
pub mod schema;
pub mod services;
pub mod validate;

pub use clan_dir::ClanDir;
pub use error::{Error, Result};
pub use resolve::{Clan, LayerEdit, Resolution, ResolvedMachine, RoleAssignment};
