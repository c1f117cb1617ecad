//! The admin's side: send a request to a machine's runtime, render its events as
//! they arrive, return its result.

use serde::de::DeserializeOwned;

use clan_backup::{Event, Reporter};
use clan_core::host::Host;
use clan_core::process::Cmd;

use crate::protocol::{Reply, Request};
use crate::{Result, RuntimeError, binary};

/// A machine reached through `host`, with this build of clan installed on demand.
#[derive(Debug)]
pub struct Runtime {
    host: Box<dyn Host>,
}

impl Runtime {
    pub fn new(host: Box<dyn Host>) -> Self {
        Self { host }
    }

    pub fn host(&self) -> &dyn Host {
        self.host.as_ref()
    }

    /// Installs this build on the machine unless it is there; true when it did.
    pub fn install(&self, reporter: &dyn Reporter) -> Result<bool> {
        if binary::installed(self.host.as_ref())? {
            return Ok(false);
        }
        reporter.report(Event::Step {
            provider: None,
            step: format!("installing the clan runtime on {}", self.host.describe()),
        });
        binary::install(self.host.as_ref())?;
        Ok(true)
    }

    /// Sends `request` and returns the runtime's result; events go to `reporter`.
    pub fn call<T: DeserializeOwned>(
        &self,
        request: &Request,
        reporter: &dyn Reporter,
    ) -> Result<T> {
        self.install(reporter)?;
        let host = self.host.describe();
        let input = serde_json::to_vec(request).expect("serialisable");
        let cmd = Cmd::new(binary::remote_path()?)
            .arg("__runtime")
            .stdin(input);
        let mut last: Option<Reply> = None;
        let mut bad: Option<String> = None;
        let run = self.host.run_with(&cmd, &mut |line| {
            if line.trim().is_empty() {
                return;
            }
            match serde_json::from_str::<Reply>(line) {
                Ok(Reply::Event(e)) => reporter.report(e),
                Ok(reply) => last = Some(reply),
                Err(e) => {
                    bad.get_or_insert_with(|| format!("{e} in line {line:?}"));
                }
            }
        });
        // A runtime that answered has said why it failed; the exit status adds nothing.
        match (last, run) {
            (Some(Reply::Done(value)), Ok(_)) => {
                serde_json::from_value(value).map_err(|e| RuntimeError::Protocol {
                    host,
                    message: e.to_string(),
                })
            }
            (Some(Reply::Failed(error)), _) => Err(RuntimeError::Failed { host, error }),
            (_, Err(e)) => Err(e.into()),
            (_, Ok(_)) => Err(RuntimeError::Protocol {
                host,
                message: bad.unwrap_or_else(|| "it stopped without a result".into()),
            }),
        }
    }
}
