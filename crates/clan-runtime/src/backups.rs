//! `clan backups` operations wherever the machine is: here, or through its runtime
//! over SSH. Both give the same results and the same events.

use clan_backup::drill::{DrillResult, Health};
use clan_backup::engine::Keep;
use clan_backup::ops::{self, PerProvider, RestoreReport};
use clan_backup::{BackupError, BackupInfo, Machine, Reason, Reporter, RestoreOptions};

use crate::protocol::{BackupOp, Request, WirePerProvider, from_wire};
use crate::{Runtime, RuntimeError};

/// Where a machine's backups run.
#[derive(Debug)]
pub enum Place {
    Here,
    Remote(Runtime),
}

/// Runs backup operations of one machine at its place.
#[derive(Debug)]
pub struct Backups {
    pub machine: Machine,
    pub place: Place,
}

/// A failure on the machine keeps its kind; one reaching it is a runtime failure.
fn remote_error(e: RuntimeError) -> BackupError {
    let kind = match &e {
        RuntimeError::Failed { error, .. } => error.kind,
        _ => clan_backup::BackupErrorKind::Runtime,
    };
    BackupError::OnMachine {
        kind,
        message: e.to_string(),
    }
}

impl Backups {
    fn call<T: serde::de::DeserializeOwned>(
        &self,
        runtime: &Runtime,
        op: BackupOp,
        reporter: &dyn Reporter,
    ) -> clan_backup::Result<T> {
        let request = Request::Backups {
            machine: Box::new(self.machine.clone()),
            op,
        };
        runtime.call(&request, reporter).map_err(remote_error)
    }

    fn per_provider<T: serde::de::DeserializeOwned>(
        &self,
        runtime: &Runtime,
        op: BackupOp,
        reporter: &dyn Reporter,
    ) -> clan_backup::Result<PerProvider<T>> {
        self.call::<WirePerProvider<T>>(runtime, op, reporter)
            .map(from_wire)
    }

    pub fn create(
        &self,
        only: Option<&str>,
        reason: Reason,
        reporter: &dyn Reporter,
    ) -> clan_backup::Result<PerProvider<BackupInfo>> {
        match &self.place {
            Place::Here => ops::create(&self.machine, only, reason, reporter),
            Place::Remote(r) => {
                let op = BackupOp::Create {
                    only: only.map(Into::into),
                    reason,
                };
                self.per_provider(r, op, reporter)
            }
        }
    }

    pub fn list(
        &self,
        only: Option<&str>,
        reporter: &dyn Reporter,
    ) -> clan_backup::Result<PerProvider<Vec<BackupInfo>>> {
        match &self.place {
            Place::Here => ops::list(&self.machine, only),
            Place::Remote(r) => {
                let op = BackupOp::List {
                    only: only.map(Into::into),
                };
                self.per_provider(r, op, reporter)
            }
        }
    }

    pub fn restore(
        &self,
        provider: &str,
        name: &str,
        options: &RestoreOptions,
        reporter: &dyn Reporter,
    ) -> clan_backup::Result<RestoreReport> {
        match &self.place {
            Place::Here => ops::restore(&self.machine, provider, name, options, reporter),
            Place::Remote(r) => {
                let op = BackupOp::Restore {
                    provider: provider.into(),
                    name: name.into(),
                    options: options.clone(),
                };
                self.call(r, op, reporter)
            }
        }
    }

    pub fn check(
        &self,
        only: Option<&str>,
        read_data: bool,
        reporter: &dyn Reporter,
    ) -> clan_backup::Result<PerProvider<String>> {
        match &self.place {
            Place::Here => ops::check(&self.machine, only, read_data),
            Place::Remote(r) => {
                let op = BackupOp::Check {
                    only: only.map(Into::into),
                    read_data,
                };
                self.per_provider(r, op, reporter)
            }
        }
    }

    pub fn drill(
        &self,
        only: Option<&str>,
        state: Option<&str>,
        reporter: &dyn Reporter,
    ) -> clan_backup::Result<PerProvider<Vec<DrillResult>>> {
        match &self.place {
            Place::Here => clan_backup::drill::drill(&self.machine, only, state, reporter),
            Place::Remote(r) => {
                let op = BackupOp::Drill {
                    only: only.map(Into::into),
                    state: state.map(Into::into),
                };
                self.per_provider(r, op, reporter)
            }
        }
    }

    /// What the machine's health.json says (backups and drills).
    pub fn health(&self, reporter: &dyn Reporter) -> clan_backup::Result<Health> {
        match &self.place {
            Place::Here => clan_backup::drill::read_health(&clan_backup::drill::health_path(
                &self.machine.staging_directory,
            )),
            Place::Remote(r) => self.call(r, BackupOp::Health, reporter),
        }
    }

    pub fn prune(
        &self,
        only: Option<&str>,
        keep: Option<Keep>,
        reporter: &dyn Reporter,
    ) -> clan_backup::Result<PerProvider<Vec<String>>> {
        match &self.place {
            Place::Here => ops::prune(&self.machine, only, keep),
            Place::Remote(r) => {
                let op = BackupOp::Prune {
                    only: only.map(Into::into),
                    keep,
                };
                self.per_provider(r, op, reporter)
            }
        }
    }

    pub fn forget(
        &self,
        provider: &str,
        name: &str,
        reporter: &dyn Reporter,
    ) -> clan_backup::Result<()> {
        match &self.place {
            Place::Here => ops::forget(&self.machine, provider, name),
            Place::Remote(r) => {
                let op = BackupOp::Forget {
                    provider: provider.into(),
                    name: name.into(),
                };
                self.call(r, op, reporter)
            }
        }
    }
}
