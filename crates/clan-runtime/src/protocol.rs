//! What the admin's clan and the machine runtime say to each other.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use clan_backup::engine::Keep;
use clan_backup::{Event, Machine, Reason, RestoreOptions};
use clan_core::ResolvedMachine;
use clan_vars::upload::Bundle;

/// One request, sent as JSON on the runtime's stdin.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Request {
    /// A `clan backups` operation on this machine.
    Backups { machine: Box<Machine>, op: BackupOp },
    /// Replace /var/lib/clan/secrets with these.
    Secrets { bundle: Bundle },
    /// Set the machine up as its resolved configuration says.
    Apply { machine: Box<ResolvedMachine> },
    /// Write the configuration the runtime reads (NixOS machines: the rest is in
    /// their system).
    Configure { machine: Box<ResolvedMachine> },
    /// NixOS: start activating a system or generation (`nixos::Started`).
    Activate { spec: crate::nixos::Spec },
    /// NixOS: wait up to `seconds` until activation `id` ended or awaits the
    /// admin's confirmation (`Watched`).
    AwaitActivation { id: String, seconds: u64 },
    /// NixOS: the admin's confirmation, sent over a new connection (`Watched`).
    Confirm { id: String },
    /// NixOS: the system profile's generations.
    Generations,
}

/// An activation's status with the last lines it printed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Watched {
    pub status: crate::nixos::Status,
    pub log: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BackupOp {
    Create {
        only: Option<String>,
        reason: Reason,
    },
    List {
        only: Option<String>,
    },
    Restore {
        provider: String,
        name: String,
        options: RestoreOptions,
    },
    Check {
        only: Option<String>,
        read_data: bool,
    },
    Prune {
        only: Option<String>,
        keep: Option<Keep>,
    },
    Forget {
        provider: String,
        name: String,
    },
    Drill {
        only: Option<String>,
        state: Option<String>,
    },
    /// The machine's health.json.
    Health,
}

/// One line of the runtime's stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reply {
    Event(Event),
    /// The request's result; the last line.
    Done(Value),
    /// The request failed: its kind, and a message that says where and why. The
    /// last line.
    Failed(WireError),
}

impl Reply {
    pub fn line(&self) -> String {
        serde_json::to_string(self).expect("serialisable")
    }
}

/// An error on the wire: its kind and message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    pub kind: clan_backup::BackupErrorKind,
    pub message: String,
}

impl WireError {
    /// A failure of the runtime itself (reading the request, applying, secrets).
    pub fn runtime(message: String) -> Self {
        Self {
            kind: clan_backup::BackupErrorKind::Runtime,
            message,
        }
    }
}

impl From<&clan_backup::BackupError> for WireError {
    fn from(e: &clan_backup::BackupError) -> Self {
        Self {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl From<WireError> for clan_backup::BackupError {
    fn from(e: WireError) -> Self {
        Self::OnMachine {
            kind: e.kind,
            message: e.message,
        }
    }
}

/// Results per provider on the wire: errors with their kinds.
pub type WirePerProvider<T> = Vec<(String, std::result::Result<T, WireError>)>;

pub fn to_wire<T>(results: clan_backup::ops::PerProvider<T>) -> WirePerProvider<T> {
    results
        .into_iter()
        .map(|(n, r)| (n, r.map_err(|e| WireError::from(&e))))
        .collect()
}

pub fn from_wire<T>(results: WirePerProvider<T>) -> clan_backup::ops::PerProvider<T> {
    results
        .into_iter()
        .map(|(n, r)| (n, r.map_err(Into::into)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_one_json_object_per_line() {
        let e = Reply::Event(Event::Step {
            provider: Some("borg".into()),
            step: "snapshot".into(),
        });
        assert_eq!(
            e.line(),
            r#"{"event":{"event":"step","provider":"borg","step":"snapshot"}}"#
        );
        let failed = Reply::Failed(WireError::runtime("no\nway".into()));
        let back: Reply = serde_json::from_str(&failed.line()).unwrap();
        assert!(matches!(back, Reply::Failed(e) if e.message == "no\nway"));
    }

    #[test]
    fn per_provider_errors_keep_their_message_and_kind() {
        let r: clan_backup::ops::PerProvider<u32> = vec![
            ("a".into(), Ok(1)),
            (
                "b".into(),
                Err(clan_backup::BackupError::Config("bad".into())),
            ),
        ];
        let json = serde_json::to_string(&to_wire(r)).unwrap();
        let back = from_wire::<u32>(serde_json::from_str(&json).unwrap());
        assert_eq!(back[0].1.as_ref().unwrap(), &1);
        let e = back[1].1.as_ref().unwrap_err();
        assert_eq!(e.to_string(), "bad");
        assert_eq!(e.kind(), clan_backup::BackupErrorKind::Config);
    }
}
