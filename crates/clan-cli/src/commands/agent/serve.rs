//! `clan agent serve [--listen ADDR] [--data-dir DIR] [--machine NAME]`: the agent
//! in the foreground, serving the machine `clan machines update` set up here, or
//! with `--machine` a machine of the clan directory.

use std::net::SocketAddr;
use std::path::PathBuf;

use clan_agent::agent::Source;
use clap::Args;

use crate::cli::Global;
use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// Address and port to listen on
    #[arg(long, default_value = "127.0.0.1:5050")]
    pub listen: SocketAddr,
    /// Where the agent keeps its data (device tokens, jobs)
    #[arg(long, default_value = super::DATA_DIR)]
    pub data_dir: PathBuf,
    /// Serve this machine of the clan directory (else the machine this is, as
    /// `clan machines update` set it up)
    #[arg(long)]
    pub machine: Option<String>,
    /// What to write to the journal (stderr)
    #[arg(long, default_value = "info", value_parser = ["error", "warn", "info", "debug"])]
    pub log_level: String,
    /// PEM certificate chain: serve HTTPS (with --tls-key)
    #[arg(long, requires = "tls_key")]
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key of --tls-certificate
    #[arg(long, requires = "tls_certificate")]
    pub tls_key: Option<PathBuf>,
    /// A file holding a token to accept for the device "Initial device" (default:
    /// the deployed `agent/token` var, when there is one)
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// The device name of the token from the `agent/token` var.
const INITIAL_DEVICE: &str = "Initial device";

pub fn run(g: &Global, o: Opts) -> Result {
    let level: tracing_subscriber::filter::LevelFilter =
        o.log_level.parse().expect("one of the values clap allows");
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let source = match &o.machine {
        Some(machine) => Source::Clan {
            dir: super::super::clan_dir(g)?,
            machine: machine.clone(),
        },
        None => Source::Installed(clan_runtime::apply::CONFIG_FILE.into()),
    };
    let token_file = o.token_file.clone().or_else(|| {
        let deployed = PathBuf::from(clan_core::modules::secret_path("agent", "token"));
        (o.machine.is_none() && deployed.is_file()).then_some(deployed)
    });
    let initial_token = match token_file {
        Some(path) => {
            let token = std::fs::read_to_string(&path)
                .map_err(|e| CliError::Usage(format!("reading {}: {e}", path.display())))?;
            Some((INITIAL_DEVICE.to_string(), token.trim().to_string()))
        }
        None => None,
    };
    let fail = |e: clan_agent::AgentError| CliError::Usage(e.to_string());
    let agent = clan_agent::server::open(&clan_agent::server::Config {
        data_dir: o.data_dir,
        source,
        initial_token,
    })
    .map_err(fail)?;
    let tls = match (o.tls_certificate, o.tls_key) {
        (Some(certificate), Some(key)) => Some(clan_agent::server::Tls { certificate, key }),
        _ => None,
    };
    clan_agent::server::run(agent, o.listen, tls.as_ref()).map_err(fail)
}
