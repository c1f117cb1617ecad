//! `clan backups drill`: proves that the newest backup of each state restores. For
//! each provider and state, the newest backup holding the state is restored into a
//! scratch directory (never over the live data), checked against what the backup
//! says it holds (`manifest.rs`), its databases restored into scratch databases and
//! their row counts compared, and handed to the state's `drillScript`; the result
//! is recorded in `health.json` (`health.rs`).
//!
//! On disk, at every step: nothing here writes to the live folders or databases
//! (the restore reads the repository). The scratch directory is a fresh directory
//! of root's, `clan-drill-<machine>-<staging hash>-<random>`, 0700 (0711 while a
//! database user reads a dump from its own 0700 directory inside), on the
//! candidate filesystem with the most free space (beside the staging directory,
//! /var/tmp, /tmp). It is removed when the drill ends, whatever the outcome; one
//! left by a killed drill is removed by the next drill of the machine, which holds
//! the drill lock (`drill.lock` in the staging directory) while it works. Scratch
//! databases (`clan_drill_<staging hash>_<random>`) are dropped the same way.

mod health;
mod manifest;

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use health::{
    BackupRecord, Health, interval, later, now, older_than, path as health_path,
    read as read_health, record_backups, record_overdue_alert,
};
pub use manifest::{Content, Entry, Kind, Manifest, Verified, Verifier, hex, unhex, verify};

use crate::error::{BackupError, Result, io};
use crate::event::{Event, Reporter};
use crate::ops::{Machine, PerProvider, folders_of, select_states};
use crate::provider::{self, Provider};
use crate::{hooks, interrupt, tree};

/// One drill: a state of one provider's newest backup that holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrillResult {
    /// When the drill started (UTC).
    pub time: String,
    pub provider: String,
    pub state: String,
    /// The backup restored; `None` when no backup holds the state.
    pub backup: Option<String>,
    pub ok: bool,
    pub files: u64,
    pub bytes: u64,
    pub duration_ms: u64,
    /// The first differences between the restored copy and the backup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<String>,
    /// Why the drill could not finish (restore failed, `drillScript` failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where scratch directories may go: beside the staging directory (root's), then
/// the system's temporary directories.
fn candidates(m: &Machine) -> Vec<PathBuf> {
    let beside = m
        .staging_directory
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/var/lib/clan"));
    vec![beside, "/var/tmp".into(), "/tmp".into()]
}

/// The staging directory's hash: tells apart machines of the same name (two
/// clans, or tests) that drill on one host or one database cluster.
fn staging_hash(m: &Machine) -> String {
    use sha2::Digest;
    let staging = sha2::Sha256::digest(m.staging_directory.as_os_str().as_encoded_bytes());
    hex(&staging)[..8].to_string()
}

/// `clan-drill-<machine>-<staging hash>-`: names of scratch directories.
fn prefix(m: &Machine) -> String {
    format!("clan-drill-{}-{}-", m.name, staging_hash(m))
}

/// `clan_drill_<staging hash>_`: names of scratch databases.
fn db_prefix(m: &Machine) -> String {
    format!("clan_drill_{}_", staging_hash(m))
}

/// Removes scratch directories of this machine's drills that a killed drill left
/// (only real directories of our own user, never what a link points to).
fn remove_leftovers(m: &Machine, reporter: &dyn Reporter) {
    let me = rustix::process::geteuid().as_raw();
    for base in candidates(m) {
        let Ok(read) = std::fs::read_dir(&base) else {
            continue;
        };
        for e in read.flatten() {
            let name = e.file_name();
            if !name.to_string_lossy().starts_with(&prefix(m)) {
                continue;
            }
            let path = e.path();
            if std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_dir() && meta.uid() == me)
            {
                reporter.report(Event::step(format!(
                    "removing {} (left by an interrupted drill)",
                    path.display()
                )));
                let _ = tree::remove_any(&path);
            }
        }
    }
}

/// The candidate with the most free space.
fn roomiest(m: &Machine) -> Result<PathBuf> {
    candidates(m)
        .into_iter()
        .filter_map(|p| {
            std::fs::create_dir_all(&p).ok()?;
            let s = rustix::fs::statvfs(&p).ok()?;
            Some((s.f_bavail.saturating_mul(s.f_frsize), p))
        })
        .max_by_key(|(free, _)| *free)
        .map(|(_, p)| p)
        .ok_or_else(|| {
            BackupError::Config("no place for a drill's scratch directory (/var/tmp, /tmp)".into())
        })
}

/// The scratch directory: removed on drop, whatever happened.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = tree::remove_any(&self.0);
    }
}

/// `clan backups drill`: each provider (or `only`), each state (or `state`).
pub fn drill(
    m: &Machine,
    only: Option<&str>,
    state: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<PerProvider<Vec<DrillResult>>> {
    let providers = m.providers(only)?;
    let states = select_states(m, state)?;
    let _lock = m.lock_named("drill.lock")?;
    interrupt::watch();
    remove_leftovers(m, reporter);
    if states.iter().any(|(_, s)| !s.postgres_databases.is_empty()) {
        for db in crate::postgres::drop_leftovers(&m.postgresql, &db_prefix(m)) {
            reporter.report(Event::step(format!(
                "dropped database {db} (left by an interrupted drill)"
            )));
        }
    }
    let mut out = Vec::new();
    for (name, config) in providers {
        let p = provider::open(&name, &config, &m.name, &m.staging_directory);
        // A repository that cannot be listed fails the drill of every state.
        let listed = p.list();
        let mut results = Vec::new();
        for (state, s) in &states {
            let started = Instant::now();
            let newest = listed
                .as_ref()
                .ok()
                .and_then(|l| l.iter().rev().find(|b| b.states.contains(state)));
            let mut r = DrillResult {
                time: health::now(),
                provider: name.clone(),
                state: (*state).clone(),
                backup: newest.map(|b| b.name.clone()),
                ok: false,
                files: 0,
                bytes: 0,
                duration_ms: 0,
                mismatches: Vec::new(),
                error: None,
            };
            match (&listed, newest) {
                (Err(e), _) => r.error = Some(e.to_string()),
                (Ok(_), None) => r.error = Some(format!("no backup holds state '{state}'")),
                (Ok(_), Some(b)) => {
                    let missing: Vec<&str> = b.missing.iter().map(String::as_str).collect();
                    match drill_state(m, p.as_ref(), &b.name, state, s, &missing, &mut r, reporter)
                    {
                        // Stopped by the user: nothing is recorded.
                        Err(BackupError::Interrupted) => return Err(BackupError::Interrupted),
                        Err(e) => r.error = Some(e.to_string()),
                        Ok(()) => {}
                    }
                }
            }
            r.ok = r.error.is_none() && r.mismatches.is_empty();
            r.duration_ms = started.elapsed().as_millis() as u64;
            results.push(r);
        }
        health::record(&health::path(&m.staging_directory), &results)?;
        out.push((name, Ok(results)));
    }
    Ok(out)
}

/// Restores `state` of backup `name` into a scratch directory, checks it and runs
/// the state's `drillScript`; fills `r`.
#[allow(clippy::too_many_arguments)]
fn drill_state(
    m: &Machine,
    p: &dyn Provider,
    name: &str,
    state: &str,
    s: &clan_core::machine::State,
    missing: &[&str],
    r: &mut DrillResult,
    reporter: &dyn Reporter,
) -> Result<()> {
    let step = |what: String| {
        reporter.report(Event::Step {
            provider: Some(p.name().into()),
            step: what,
        })
    };
    step(format!("drill of state '{state}' from backup {name}"));
    let base = roomiest(m)?;
    let scratch = ScratchDir(
        tempfile::Builder::new()
            .prefix(&prefix(m))
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(io(format!(
                "creating a scratch directory in {}",
                base.display()
            )))?
            .keep(),
    );
    // Checked before each folder is written, against what is free by then.
    let room = |needed: u64| -> Result<()> {
        let free = rustix::fs::statvfs(&scratch.0)
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
            .map_err(|e| io(format!("reading the free space of {}", base.display()))(e.into()))?;
        // Some room for directories and filesystem overhead besides the contents.
        if free < needed + needed / 50 + (16 << 20) {
            return Err(BackupError::Config(format!(
                "not enough space for the drill: the backup of state '{state}' holds {} more and \
                 {} has {} free; free some space or drill another state (--state)",
                bytesize::ByteSize(needed),
                base.display(),
                bytesize::ByteSize(free)
            )));
        }
        Ok(())
    };
    for folder in folders_of(m, state, s) {
        interrupt::check()?;
        let dest = tree::under(&scratch.0, &folder);
        let parent = dest.parent().expect("below the scratch directory");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io(format!("creating {}", parent.display())))?;
        step(format!(
            "restoring {} into {}",
            folder.display(),
            dest.display()
        ));
        let mut check = Verifier::new(&dest, &folder);
        match p.restore_checked(name, &folder, &dest, reporter, &room, &mut check) {
            // A folder that did not exist at backup: nothing to restore.
            Err(BackupError::NotInBackup { .. })
                if missing.contains(&folder.to_string_lossy().as_ref()) =>
            {
                continue;
            }
            Err(BackupError::NotInBackup { .. }) => {
                r.mismatches
                    .push(format!("{}: not in the backup", folder.display()));
                continue;
            }
            Err(e) => return Err(e),
            Ok(false) => {
                return Err(BackupError::Config(format!(
                    "provider '{}' cannot say what its backups hold; drills need restic, borg or local",
                    p.name()
                )));
            }
            Ok(true) => {}
        }
        let v = check.finish();
        r.files += v.files;
        r.bytes += v.bytes;
        for mismatch in v.mismatches {
            if r.mismatches.len() < manifest::MAX_MISMATCHES {
                r.mismatches.push(mismatch);
            }
        }
    }
    if !s.postgres_databases.is_empty() {
        drill_databases(m, state, s, &scratch.0, r, reporter)?;
    }
    if let Some(script) = &s.drill_script {
        let what = format!("drillScript of state '{state}'");
        let dir = scratch.0.to_string_lossy().into_owned();
        hooks::run_script(
            &what,
            script,
            &[("STATE", state), ("DRILL_DIR", &dir)],
            reporter,
        )?;
    }
    Ok(())
}

/// Each database of the state: its restored dump into a scratch database of the
/// machine's cluster, row counts compared with those recorded at backup.
fn drill_databases(
    m: &Machine,
    state: &str,
    s: &clan_core::machine::State,
    scratch: &Path,
    r: &mut DrillResult,
    reporter: &dyn Reporter,
) -> Result<()> {
    use crate::postgres;
    let restored = tree::under(scratch, &m.dumps_dir(state));
    // The database user reads the dumps: a directory of its own, reached through
    // the scratch directory (then 0711; everything else in it stays 0700).
    let readable = scratch.join("postgres");
    crate::ops::prepare_dump_dir(&readable, &m.postgresql)?;
    for db in &s.postgres_databases {
        interrupt::check()?;
        let dump = postgres::dump_file(&restored, db);
        if !dump.is_file() {
            r.mismatches
                .push(format!("database '{db}': the backup holds no dump of it"));
            continue;
        }
        let counts = postgres::read_counts(&postgres::counts_file(&restored, db));
        if counts.is_none() {
            reporter.report(Event::Warning {
                message: format!(
                    "database '{db}': the backup has no row counts (made before clan recorded \
                     them); the dump is only restored"
                ),
            });
        }
        let moved = postgres::dump_file(&readable, db);
        std::fs::rename(&dump, &moved).map_err(io(format!("moving {}", dump.display())))?;
        reporter.report(Event::Step {
            provider: None,
            step: format!("restoring database '{db}' into a scratch database"),
        });
        let name = format!("{}{:08x}", db_prefix(m), rand::random::<u32>());
        for diff in postgres::drill(&m.postgresql, db, &moved, counts.as_ref(), &name)? {
            if r.mismatches.len() < manifest::MAX_MISMATCHES {
                r.mismatches.push(diff);
            }
        }
    }
    Ok(())
}
