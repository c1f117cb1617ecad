//! `clan agent ...`: the machine agent (SelfPrivacy's API).

pub mod serve;
pub mod token;

/// Where the agent keeps its data by default.
pub const DATA_DIR: &str = "/var/lib/clan/agent";
