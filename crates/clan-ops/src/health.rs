//! `clan backups status`: for each machine, provider and state, the newest backup,
//! the newest failure and the newest drill (from the machine's health.json, read
//! from every machine at once), and a verdict.

use clan_backup::drill::{Health, interval, older_than};
use clan_core::event::Silent;
use serde::Serialize;

use crate::fleet::Fleet;

/// How many machines are read at once.
const PARALLEL: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warning,
    Failing,
}

/// One machine × provider × state.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub machine: String,
    pub provider: Option<String>,
    pub state: Option<String>,
    pub last_backup: Option<String>,
    pub last_backup_name: Option<String>,
    pub size: Option<u64>,
    pub last_failure: Option<String>,
    pub last_failure_error: Option<String>,
    pub last_drill: Option<String>,
    pub last_drill_ok: Option<bool>,
    pub verdict: Verdict,
    /// Why the verdict is not ok.
    pub reasons: Vec<String>,
}

impl Status {
    fn of_machine(machine: &str, reason: String) -> Self {
        Self {
            machine: machine.to_string(),
            provider: None,
            state: None,
            last_backup: None,
            last_backup_name: None,
            size: None,
            last_failure: None,
            last_failure_error: None,
            last_drill: None,
            last_drill_ok: None,
            verdict: Verdict::Failing,
            reasons: vec![reason],
        }
    }
}

/// The status of every selected machine of `fleet`, in its order.
pub fn status(fleet: &Fleet) -> Vec<Status> {
    let now = jiff::Timestamp::now();
    fleet
        .map_selected(PARALLEL, |name| {
            // Machines that back nothing up are not asked (nor connected to).
            if fleet.machine(name).is_ok_and(|m| {
                m.clan_core.backups.providers.is_empty() || m.clan_core.state.is_empty()
            }) {
                return Vec::new();
            }
            match crate::backups::on(fleet, name, false)
                .and_then(|b| b.health(&Silent).map_err(Into::into))
            {
                Err(e) => vec![Status::of_machine(
                    name,
                    format!("cannot read its health: {e}"),
                )],
                Ok(h) => lines(fleet, name, &h, now),
            }
        })
        .into_iter()
        .flatten()
        .collect()
}

fn lines(fleet: &Fleet, name: &str, h: &Health, now: jiff::Timestamp) -> Vec<Status> {
    let Ok(m) = fleet.machine(name) else {
        return Vec::new();
    };
    let providers = &m.clan_core.backups.providers;
    if providers.is_empty() || m.clan_core.state.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (provider, config) in providers {
        for state in m.clan_core.state.keys() {
            let state = state.to_string();
            let find = |ok: bool| {
                h.backups
                    .iter()
                    .find(|b| &b.provider == provider && b.state == state && b.ok == ok)
            };
            let (good, bad) = (find(true), find(false));
            let drill = h
                .drills
                .iter()
                .find(|d| &d.provider == provider && d.state == state);
            let mut s = Status {
                machine: name.to_string(),
                provider: Some(provider.clone()),
                state: Some(state.clone()),
                last_backup: good.map(|b| b.time.clone()),
                last_backup_name: good.and_then(|b| b.backup.clone()),
                size: good.and_then(|b| b.size),
                last_failure: bad.map(|b| b.time.clone()),
                last_failure_error: bad.and_then(|b| b.error.clone()),
                last_drill: drill.map(|d| d.time.clone()),
                last_drill_ok: drill.map(|d| d.ok),
                verdict: Verdict::Ok,
                reasons: Vec::new(),
            };
            let mut flag = |v: Verdict, why: String| {
                s.verdict = s.verdict.max(v);
                s.reasons.push(why);
            };
            match (good, bad) {
                (None, _) => flag(Verdict::Failing, "no backup yet".into()),
                (Some(g), Some(b)) if clan_backup::drill::later(&b.time, &g.time) => flag(
                    Verdict::Failing,
                    format!(
                        "the last backup failed: {}",
                        b.error.as_deref().unwrap_or("?")
                    ),
                ),
                _ => {}
            }
            if let (Some(g), Some(every)) = (good, config.start_at().and_then(interval))
                && older_than(&g.time, every * 2, now)
            {
                flag(
                    Verdict::Warning,
                    format!(
                        "the last backup is older than twice its schedule ({})",
                        config.start_at().unwrap_or_default()
                    ),
                );
            }
            match (drill, config.drill_at()) {
                (Some(d), _) if !d.ok => flag(
                    Verdict::Failing,
                    format!(
                        "the last drill failed: {}",
                        d.error
                            .clone()
                            .or_else(|| d.mismatches.first().cloned())
                            .unwrap_or_default()
                    ),
                ),
                (Some(d), Some(at))
                    if interval(at).is_some_and(|every| older_than(&d.time, every * 2, now)) =>
                {
                    flag(
                        Verdict::Warning,
                        format!("the last drill is older than twice its schedule ({at})"),
                    );
                }
                (None, Some(_)) => flag(Verdict::Warning, "never drilled".into()),
                _ => {}
            }
            out.push(s);
        }
    }
    out
}
