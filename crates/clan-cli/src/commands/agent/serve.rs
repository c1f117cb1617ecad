//! `clan agent serve [--listen ADDR] [--data-dir DIR]`: the agent in the foreground.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// Address and port to listen on
    #[arg(long, default_value = "127.0.0.1:5050")]
    pub listen: SocketAddr,
    /// Where the agent keeps its data (device tokens)
    #[arg(long, default_value = super::DATA_DIR)]
    pub data_dir: PathBuf,
}

pub fn run(o: Opts) -> Result {
    eprintln!("clan agent: serving on http://{}", o.listen);
    clan_agent::server::run(&clan_agent::server::Config {
        listen: o.listen,
        data_dir: o.data_dir,
    })
    .map_err(|e| CliError::Usage(e.to_string()))
}
