//! Which machines answer: one trivial command on each selected machine, over the
//! same connection `machines update` uses, several at a time.

use std::time::Instant;

use clan_core::process::Cmd;
use serde::Serialize;

use super::update::Connect;
use crate::fleet::Fleet;

/// How many machines are asked at once.
const PARALLEL: usize = 16;

#[derive(Debug, Clone, Serialize)]
pub struct Reach {
    pub machine: String,
    /// How the machine was reached (`localhost`, `root@host:22`).
    pub host: Option<String>,
    /// Why it did not answer; `None` when it did.
    pub error: Option<String>,
    pub millis: u64,
}

impl Reach {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Asks each selected machine of `fleet` to run `true`; the answers in the order
/// of `fleet.selected`.
pub fn reachability(fleet: &Fleet, connect: &Connect) -> Vec<Reach> {
    fleet.map_selected(PARALLEL, |name| ask(fleet, name, connect))
}

fn ask(fleet: &Fleet, name: &str, connect: &Connect) -> Reach {
    let start = Instant::now();
    let mut reach = Reach {
        machine: name.to_string(),
        host: None,
        error: None,
        millis: 0,
    };
    match fleet
        .machine(name)
        .map_err(|e| e.to_string())
        .and_then(|m| connect(fleet, m))
    {
        Err(e) => reach.error = Some(e),
        Ok(host) => {
            reach.host = Some(host.describe());
            if let Err(e) = host.run(&Cmd::new("true")) {
                reach.error = Some(e.to_string());
            }
        }
    }
    reach.millis = start.elapsed().as_millis() as u64;
    reach
}

#[cfg(test)]
mod tests {
    use super::*;
    use clan_core::ClanDir;

    #[test]
    fn answers_come_in_the_order_asked_and_name_what_failed() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("clan.nix"),
            r#"{ meta.name = "t"; inventory.machines = { a = { deploy.targetHost = "root@localhost"; }; b = { }; c = { deploy.targetHost = "root@localhost"; }; }; }"#,
        )
        .unwrap();
        let fleet = Fleet::load(
            ClanDir::open(tmp.path(), "t").unwrap(),
            &[],
            &clan_core::event::Silent,
        )
        .unwrap();
        let connect = |f: &Fleet, m: &clan_core::ResolvedMachine| {
            if m.name.as_str() == "b" {
                Err("no route to b".to_string())
            } else {
                super::super::update::ssh(f, m)
            }
        };
        let found = reachability(&fleet, &connect);
        let seen: Vec<_> = found
            .iter()
            .map(|r| (r.machine.as_str(), r.host.as_deref(), r.error.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                ("a", Some("localhost"), None),
                ("b", None, Some("no route to b")),
                ("c", Some("localhost"), None),
            ]
        );
    }
}
