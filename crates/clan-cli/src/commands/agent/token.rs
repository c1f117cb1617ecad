//! `clan agent token create --device NAME [--data-dir DIR]`: a new device token,
//! printed once (only its hash is kept).

use std::path::PathBuf;

use clap::Args;

use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// The device's name, as the app shows it
    #[arg(long)]
    pub device: String,
    /// Where the agent keeps its data
    #[arg(long, default_value = super::DATA_DIR)]
    pub data_dir: PathBuf,
}

pub fn create(o: Opts) -> Result {
    let store =
        clan_agent::store::Store::open(&o.data_dir).map_err(|e| CliError::Usage(e.to_string()))?;
    let (device, token) = store
        .create_token(&o.device)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    eprintln!("device '{device}' may use the API with this token:");
    println!("{token}");
    Ok(())
}
