//! `clan ui [--listen ADDR] [--no-open]` (clan-ui)

use std::net::SocketAddr;

use clap::Args;

use crate::cli::Global;
use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct Opts {
    /// Where to listen; beyond loopback only when you say so (anyone who reaches it
    /// and has the printed address controls the clan)
    #[arg(long, default_value = "127.0.0.1:8450")]
    pub listen: SocketAddr,
    /// Do not open a browser
    #[arg(long)]
    pub no_open: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let dir = super::clan_dir(g)?;
    let config = clan_ui::Config::new(dir.clone());
    let token = config.token.clone();
    if !o.listen.ip().is_loopback() {
        eprintln!(
            "warning: listening on {}, beyond this machine: anyone who reaches it with the \
             address below controls this clan (it is plain HTTP)",
            o.listen
        );
    }
    let no_open = o.no_open;
    clan_ui::run(config, o.listen, move |addr| {
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let url = format!("http://{host}:{}/?token={token}", addr.port());
        println!("clan ui for {} at {url}", dir.root().display());
        println!("(Ctrl-C stops it)");
        if !no_open {
            open_browser(&url);
        }
    })
    .map_err(|e| CliError::Usage(format!("clan ui on {}: {e}", o.listen)))
}

/// Opens the address in the desktop's browser, when there is a desktop: through a
/// private file that redirects to it, so the token is on no command line.
fn open_browser(url: &str) {
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    if !desktop {
        return;
    }
    let Ok(dir) = tempfile::Builder::new().prefix("clan-ui-").tempdir() else {
        return;
    };
    let page = dir.path().join("open.html");
    let html = format!(
        "<!doctype html><meta http-equiv=\"refresh\" content=\"0;url={url}\"><a href=\"{url}\">clan ui</a>"
    );
    if std::fs::write(&page, html).is_err() {
        return;
    }
    let opened = std::process::Command::new("xdg-open")
        .arg(&page)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if opened.is_ok_and(|s| s.success()) {
        // The browser reads the page in a moment; the directory goes when it has.
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(30));
            drop(dir);
        });
    }
}
