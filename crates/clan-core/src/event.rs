//! Progress events, one type for every operation: domain code reports, frontends
//! render (the CLI as lines or bars, the machine runtime as JSON lines, the agent and
//! the UI as they like).

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
    /// An event of one machine's part of an operation on several machines.
    Machine {
        machine: String,
        of: Box<Event>,
    },
    /// One machine's part ended: `ok`, and a line that says how.
    MachineDone {
        machine: String,
        ok: bool,
        summary: String,
    },
}

impl Event {
    pub fn step(step: impl Into<String>) -> Self {
        Event::Step {
            provider: None,
            step: step.into(),
        }
    }

    /// This event as part of `machine`'s work.
    pub fn on(self, machine: &str) -> Self {
        Event::Machine {
            machine: machine.to_string(),
            of: Box::new(self),
        }
    }
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
