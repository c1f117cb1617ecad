//! `clan backups status [MACHINE...] [--json]`

use clap::Args;

use clan_ops::health::Verdict;

use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::output;

#[derive(Debug, Args)]
pub struct Opts {
    /// The machines (default: all)
    pub machines: Vec<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// "3 h ago" for an RFC 3339 time.
fn ago(time: &str) -> String {
    let Ok(t) = time.parse::<jiff::Timestamp>() else {
        return time.to_string();
    };
    let s = jiff::Timestamp::now().duration_since(t).as_secs().max(0);
    match s {
        s if s < 90 => format!("{s} s ago"),
        s if s < 5_400 => format!("{} min ago", s / 60),
        s if s < 129_600 => format!("{} h ago", s / 3_600),
        s => format!("{} d ago", s / 86_400),
    }
}

pub fn run(g: &Global, o: Opts) -> Result {
    let fleet = super::super::fleet_of(g, &o.machines)?;
    let lines = clan_ops::health::status(&fleet);
    if o.json {
        output::json(&lines);
    } else {
        let rows: Vec<Vec<String>> = lines
            .iter()
            .map(|s| {
                let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                vec![
                    s.machine.clone(),
                    or_dash(s.provider.clone()),
                    or_dash(s.state.clone()),
                    or_dash(s.last_backup.as_deref().map(ago)),
                    or_dash(s.last_failure.as_deref().map(ago)),
                    match (&s.last_drill, s.last_drill_ok) {
                        (Some(t), Some(true)) => format!("ok, {}", ago(t)),
                        (Some(t), _) => format!("FAILED, {}", ago(t)),
                        _ => "-".into(),
                    },
                    or_dash(s.size.map(super::list::human_size)),
                    match s.verdict {
                        Verdict::Ok => "ok".into(),
                        Verdict::Warning => format!("warning: {}", s.reasons.join("; ")),
                        Verdict::Failing => format!("FAILING: {}", s.reasons.join("; ")),
                    },
                ]
            })
            .collect();
        output::table(
            &[
                "MACHINE",
                "PROVIDER",
                "STATE",
                "LAST BACKUP",
                "LAST FAILURE",
                "LAST DRILL",
                "ADDED",
                "VERDICT",
            ],
            &rows,
        );
    }
    let failing = lines
        .iter()
        .filter(|s| s.verdict == Verdict::Failing)
        .count();
    if failing > 0 {
        return Err(CliError::Partial(format!(
            "{failing} of {} backups are failing",
            lines.len()
        )));
    }
    Ok(())
}
