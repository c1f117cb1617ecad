//! Progress events: domain code reports, the CLI renders (or the machine runtime
//! streams them as JSON lines).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event {
    /// A step started (e.g. "pre-backup script of state 'app'", "snapshot").
    Step {
        provider: Option<String>,
        step: String,
    },
    /// A line of output from a program or script.
    Output {
        step: String,
        line: String,
    },
    /// Work done, for progress bars: bytes when `bytes`, else items; `total` when known.
    Progress {
        step: String,
        done: u64,
        total: Option<u64>,
        bytes: bool,
    },
    Warning {
        message: String,
    },
}

pub trait Reporter: Sync {
    fn report(&self, event: Event);
}

/// Drops every event.
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _: Event) {}
}

impl<F: Fn(Event) + Sync> Reporter for F {
    fn report(&self, event: Event) {
        self(event)
    }
}
