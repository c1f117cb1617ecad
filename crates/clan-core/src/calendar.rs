//! Backup schedules (`startAt`) are systemd calendar expressions (`daily`,
//! `Mon..Fri *-*-* 02:00`, `*:0/15`): checked when a machine is resolved, so that a
//! typo fails on the admin's machine, not in a timer that never fires.

use crate::process::Cmd;

/// Characters systemd's calendar grammar uses; anything else (a newline above all,
/// which would write more lines into a unit file) is refused without asking systemd.
fn plausible(expr: &str) -> bool {
    !expr.trim().is_empty()
        && expr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " *:,./~+-_".contains(c))
}

/// Checks `expr` with `systemd-analyze calendar` where it is installed, else by its
/// characters only. The error says what is wrong.
pub fn check(expr: &str) -> Result<(), String> {
    if !plausible(expr) {
        return Err(format!(
            "{expr:?} is not a systemd calendar expression (e.g. daily, weekly, \
             \"*-*-* 02:00:00\", \"Mon..Fri 03:15\")"
        ));
    }
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|p| p.join("systemd-analyze").is_file())
    });
    if !found {
        return Ok(());
    }
    Cmd::new("systemd-analyze")
        .args(["calendar", "--", expr])
        .run()
        .map(drop)
        .map_err(|e| match e {
            crate::process::CommandError::Failed { stderr, .. } => format!(
                "{expr:?} is not a systemd calendar expression: {}",
                stderr.trim()
            ),
            other => other.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_checked() {
        for good in [
            "daily",
            "weekly",
            "*-*-* 02:00:00",
            "Mon..Fri 03:15",
            "*:0/15",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "daily\nExecStartPre=/bin/sh",
            "daily; rm -rf /",
            "$(id)",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        if std::path::Path::new("/usr/bin/systemd-analyze").is_file() {
            let e = check("dialy").unwrap_err();
            assert!(e.contains("dialy") && e.contains("calendar"), "{e}");
        }
    }
}
