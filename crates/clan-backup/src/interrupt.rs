//! Ctrl-C (SIGINT), SIGTERM and SIGHUP during a backup or restore: noted, and acted
//! on at the next safe point (between folders, before a swap, before a database),
//! so that the folder is whole, the services are started again and the scratch data
//! is gone before clan exits with an error. Programs clan runs get the terminal's
//! Ctrl-C themselves and fail, which is such a point too.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{BackupError, Result};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// From now on, these signals set a flag instead of ending the process.
pub fn watch() {
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            // Registration fails only for signals that cannot be caught.
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        flag
    });
}

/// An error when a watched signal came.
pub fn check() -> Result<()> {
    match FLAG.get() {
        Some(f) if f.load(Ordering::SeqCst) => Err(BackupError::Interrupted),
        _ => Ok(()),
    }
}
