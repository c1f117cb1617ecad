//! `health.json` beside the staging directory (`/var/lib/clan/health.json` by
//! default): the newest drill of each provider and state, and the newest backup
//! and newest failed backup of each provider, read by `clan backups status`. Updated under a lock, written to a temporary file and renamed, so a
//! reader sees the old or the new file, never half of one. Root's and 0600: the
//! mismatches name paths of the machine's data.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::DrillResult;
use crate::error::{Result, io};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// The newest drill per provider and state.
    #[serde(default)]
    pub drills: Vec<DrillResult>,
    /// The newest successful and the newest failed backup per provider and state.
    #[serde(default)]
    pub backups: Vec<BackupRecord>,
    /// Provider -> the time of the last success when "overdue" was last sent for
    /// it: one alert per stretch without a backup.
    #[serde(default)]
    pub overdue_alerts: std::collections::BTreeMap<String, String>,
}

impl Health {
    /// The provider's newest successful backup (any state), as UTC time.
    pub fn last_success(&self, provider: &str) -> Option<&str> {
        self.backups
            .iter()
            .filter(|b| b.provider == provider && b.ok)
            .map(|b| b.time.as_str())
            .reduce(|a, b| if later(b, a) { b } else { a })
    }

    /// Providers (with their schedules) whose newest backup is older than twice
    /// their schedule and for which no alert went out since it: each with that
    /// backup's time.
    pub fn newly_overdue<'a>(
        &self,
        schedules: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: jiff::Timestamp,
    ) -> Vec<(String, String)> {
        schedules
            .into_iter()
            .filter_map(|(provider, at)| {
                let last = self.last_success(provider)?;
                let every = interval(at)?;
                (older_than(last, every * 2, now)
                    && self.overdue_alerts.get(provider).map(String::as_str) != Some(last))
                .then(|| (provider.to_string(), last.to_string()))
            })
            .collect()
    }
}

/// Records that "overdue" was sent for `provider`, whose last success was `last`.
pub fn record_overdue_alert(path: &Path, provider: &str, last: &str) -> Result<()> {
    update(path, |health| {
        health
            .overdue_alerts
            .insert(provider.to_string(), last.to_string());
    })
}

/// One backup as health.json remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    pub provider: String,
    /// When it ended (UTC).
    pub time: String,
    pub ok: bool,
    /// Its name, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    pub state: String,
    /// Bytes it added to the repository, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Now, as health.json records times: UTC to the millisecond (a backup that fails
/// within the second after one succeeded is still told apart).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Whether the recorded time `a` is later than `b` (times that do not parse
/// compare as text).
pub fn later(a: &str, b: &str) -> bool {
    match (a.parse::<jiff::Timestamp>(), b.parse::<jiff::Timestamp>()) {
        (Ok(a), Ok(b)) => a > b,
        _ => a > b,
    }
}

/// Where the machine's health file is, given its staging directory.
pub fn path(staging: &Path) -> PathBuf {
    staging
        .parent()
        .unwrap_or(Path::new("/var/lib/clan"))
        .join("health.json")
}

/// The health file; empty when there is none yet.
pub fn read(path: &Path) -> Result<Health> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            crate::BackupError::Config(format!(
                "{} is damaged ({e}); remove it, the next drill writes it again",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Health::default()),
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

/// Records drill `results`, replacing the older drill of each provider and state.
pub fn record(path: &Path, results: &[DrillResult]) -> Result<()> {
    update(path, |health| {
        for r in results {
            health
                .drills
                .retain(|d| !(d.provider == r.provider && d.state == r.state));
            health.drills.push(r.clone());
        }
        health
            .drills
            .sort_by(|a, b| (&a.provider, &a.state).cmp(&(&b.provider, &b.state)));
    })
}

/// Records backups, replacing the older success or failure of each provider and
/// state.
pub fn record_backups(path: &Path, records: &[BackupRecord]) -> Result<()> {
    update(path, |health| {
        for r in records {
            health
                .backups
                .retain(|b| !(b.provider == r.provider && b.state == r.state && b.ok == r.ok));
            health.backups.push(r.clone());
        }
        health
            .backups
            .sort_by(|a, b| (&a.provider, &a.state, a.ok).cmp(&(&b.provider, &b.state, b.ok)));
    })
}

/// Reads, changes and writes the file under its lock.
fn update(path: &Path, change: impl FnOnce(&mut Health)) -> Result<()> {
    let dir = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let lock_path = path.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&lock_path)
        .map_err(io(format!("opening {}", lock_path.display())))?;
    lock.lock()
        .map_err(io(format!("locking {}", lock_path.display())))?;
    // A damaged file is replaced: the drills about to be recorded are the news.
    let mut health = read(path).unwrap_or_default();
    change(&mut health);
    let mut tmp = tempfile::Builder::new()
        .prefix(".health-")
        .tempfile_in(dir)
        .map_err(io(format!("writing into {}", dir.display())))?;
    let written = (|| {
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        tmp.write_all(&serde_json::to_vec_pretty(&health).expect("serialisable"))?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        File::open(dir)?.sync_all()
    })();
    written.map_err(io(format!("writing {}", path.display())))
}

/// Whether the UTC time `time` is more than `span` before `now`.
pub fn older_than(time: &str, span: Duration, now: jiff::Timestamp) -> bool {
    time.parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| now.duration_since(t).try_into().ok())
        .is_some_and(|age: Duration| age > span)
}

/// The time between two runs of a systemd calendar expression: from
/// `systemd-analyze calendar` where it is installed, else from its name.
pub fn interval(expr: &str) -> Option<Duration> {
    let from_systemd = clan_core::process::Cmd::new("systemd-analyze")
        .env("TZ", "UTC")
        .args(["calendar", "--iterations=2", "--", expr])
        .run()
        .ok()
        .and_then(|out| {
            let times: Vec<jiff::Timestamp> = out
                .stdout_string()
                .lines()
                .filter(|l| l.contains("Next elapse:") || l.contains("#2:"))
                .filter_map(|l| {
                    let words: Vec<&str> = l.split_once(": ")?.1.split_whitespace().collect();
                    let civil = format!("{} {}", words.get(1)?, words.get(2)?);
                    jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", &civil)
                        .ok()?
                        .to_zoned(jiff::tz::TimeZone::UTC)
                        .ok()
                        .map(|z| z.timestamp())
                })
                .collect();
            let [a, b] = times[..] else { return None };
            b.duration_since(a).try_into().ok()
        });
    from_systemd.or_else(|| {
        let day = 86_400;
        let secs = match expr.trim() {
            "minutely" => 60,
            "hourly" => 3_600,
            "daily" => day,
            "weekly" => 7 * day,
            "monthly" => 31 * day,
            "quarterly" => 92 * day,
            "yearly" | "annually" => 366 * day,
            _ => return None,
        };
        Some(Duration::from_secs(secs))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_become_intervals() {
        assert_eq!(interval("daily"), Some(Duration::from_secs(86_400)));
        assert_eq!(interval("weekly"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(interval("*:0/15"), Some(Duration::from_secs(900)));
    }

    #[test]
    fn ages_compare_with_spans() {
        let now: jiff::Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let day = Duration::from_secs(86_400);
        assert!(older_than("2026-11-28T11:00:00Z", day * 2, now));
        assert!(!older_than("2026-11-30T13:00:00Z", day * 2, now));
    }

    #[test]
    fn a_provider_is_overdue_once_per_stretch_without_a_backup() {
        let now: jiff::Timestamp = "2026-12-10T12:00:00Z".parse().unwrap();
        let success = |provider: &str, time: &str| BackupRecord {
            provider: provider.into(),
            time: time.into(),
            ok: true,
            backup: Some("b".into()),
            state: "s".into(),
            size: None,
            error: None,
        };
        let mut h = Health {
            backups: vec![
                success("old", "2026-12-01T01:00:00Z"),
                success("fresh", "2026-12-10T01:00:00Z"),
            ],
            ..Health::default()
        };
        let schedules = [("old", "daily"), ("fresh", "daily"), ("never", "daily")];
        assert_eq!(
            h.newly_overdue(schedules, now),
            [("old".to_string(), "2026-12-01T01:00:00Z".to_string())]
        );
        h.overdue_alerts
            .insert("old".into(), "2026-12-01T01:00:00Z".into());
        assert_eq!(h.newly_overdue(schedules, now), []);
        // A backup came, then none again for long: a new stretch, a new alert.
        h.backups[0].time = "2026-12-05T01:00:00Z".into();
        assert_eq!(h.newly_overdue(schedules, now).len(), 1);
    }
}
