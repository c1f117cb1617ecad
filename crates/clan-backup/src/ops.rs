//! The operations `clan backups` offers, on one machine: create, list, restore,
//! check, prune. They run where the data is (here, or on the machine through the
//! machine runtime).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use clan_core::ResolvedMachine;
use clan_core::machine::{Postgresql, State};

use crate::config::ProviderConfig;
use crate::engine::Keep;
use crate::error::{BackupError, Result, io};
use crate::event::{Event, Reporter};
use crate::provider::{self, Listed, Provider, SnapshotRequest};
use crate::{hooks, postgres, services, tree};

/// What the backup layer needs of a machine: its states, providers and settings.
/// Serialisable, so that it can be sent to the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub name: String,
    pub states: BTreeMap<String, State>,
    pub providers: BTreeMap<String, Value>,
    pub staging_directory: PathBuf,
    pub postgresql: Postgresql,
}

impl Machine {
    pub fn from_resolved(m: &ResolvedMachine) -> Self {
        Self {
            name: m.name.clone(),
            states: m
                .clan_core
                .state
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            providers: m.clan_core.backups.providers.clone(),
            staging_directory: PathBuf::from(&m.clan_core.backups.staging_directory),
            postgresql: m.clan_core.postgresql.clone(),
        }
    }

    /// The named provider, or all, parsed.
    pub fn providers(&self, only: Option<&str>) -> Result<Vec<(String, ProviderConfig)>> {
        if let Some(name) = only
            && !self.providers.contains_key(name)
        {
            return Err(BackupError::UnknownProvider {
                name: name.to_string(),
                available: self.providers.keys().cloned().collect(),
            });
        }
        self.providers
            .iter()
            .filter(|(n, _)| only.is_none_or(|o| o == *n))
            .map(|(n, v)| ProviderConfig::parse(n, v).map(|c| (n.clone(), c)))
            .collect()
    }

    fn dumps_dir(&self, state: &str) -> PathBuf {
        self.staging_directory.join("postgres").join(state)
    }

    /// Takes the machine's backup lock; refuses when another operation holds it.
    fn lock(&self) -> Result<File> {
        let dir = &self.staging_directory;
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let path = dir.join("lock");
        let file = File::create(&path).map_err(io(format!("opening {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(BackupError::Busy(path)),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(io(format!("locking {}", path.display()))(e))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Explicit,
    Auto,
    PreRestore,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Explicit => "explicit",
            Self::Auto => "auto",
            Self::PreRestore => "pre-restore",
        }
    }
}

/// A backup of one provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupInfo {
    pub provider: String,
    #[serde(flatten)]
    pub backup: Listed,
}

fn now_utc() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// One result per provider: one failing provider does not hide the others.
pub type PerProvider<T> = Vec<(String, Result<T>)>;

/// `clan backups create`: one backup of all states in each provider (or one).
pub fn create(
    m: &Machine,
    only: Option<&str>,
    reason: Reason,
    reporter: &dyn Reporter,
) -> Result<PerProvider<BackupInfo>> {
    let providers = m.providers(only)?;
    let _lock = m.lock()?;
    Ok(providers
        .into_iter()
        .map(|(name, config)| {
            let p = provider::open(&name, &config);
            let r = create_with(m, p.as_ref(), reason, reporter);
            (name, r)
        })
        .collect())
}

/// Backup with one provider; the caller holds the lock.
fn create_with(
    m: &Machine,
    p: &dyn Provider,
    reason: Reason,
    reporter: &dyn Reporter,
) -> Result<BackupInfo> {
    let states: Vec<(&String, &State)> = m.states.iter().collect();
    let mut paths: BTreeSet<PathBuf> = BTreeSet::new();
    for (name, s) in &states {
        for f in &s.folders {
            if !Path::new(f).is_dir() {
                return Err(BackupError::Step {
                    step: format!("state '{name}'"),
                    message: format!("folder {f} does not exist"),
                });
            }
            paths.insert(PathBuf::from(f));
        }
    }
    let result = (|| {
        for (name, s) in &states {
            if let Some(script) = &s.pre_backup_script {
                hooks::run_script(
                    &format!("preBackupScript of state '{name}'"),
                    script,
                    &[("STATE", name)],
                    reporter,
                )?;
            }
            if !s.postgres_databases.is_empty() {
                let dir = m.dumps_dir(name);
                prepare_dump_dir(&dir, &m.postgresql)?;
                for db in &s.postgres_databases {
                    reporter.report(Event::Step {
                        provider: None,
                        step: format!("dumping database '{db}' of state '{name}'"),
                    });
                    postgres::dump(&m.postgresql, db, &postgres::dump_file(&dir, db))?;
                }
                paths.insert(dir);
            }
        }
        if paths.is_empty() {
            return Err(BackupError::Config(format!(
                "machine '{}' declares no state to back up (clan.core.state)",
                m.name
            )));
        }
        let time = now_utc();
        let base = match reason {
            Reason::Explicit => format!("{}-{}-{time}", m.name, p.name()),
            other => format!("{}-{}-{time}-{}", m.name, p.name(), other.as_str()),
        };
        let existing: Vec<String> = p
            .list()
            .map(|l| l.into_iter().map(|b| b.name).collect())
            .unwrap_or_default();
        let taken = |n: &str| {
            existing
                .iter()
                .any(|e| e == n || e.ends_with(&format!("::{n}")))
        };
        let name = (1..)
            .map(|i| {
                if i == 1 {
                    base.clone()
                } else {
                    format!("{base}-{i}")
                }
            })
            .find(|n| !taken(n))
            .expect("a free name");
        let req = SnapshotRequest {
            name,
            machine: m.name.clone(),
            time,
            paths: paths.iter().cloned().collect(),
            states: states.iter().map(|(n, _)| (*n).clone()).collect(),
            reason: reason.as_str().to_string(),
            excludes: states
                .iter()
                .flat_map(|(_, s)| s.exclude.iter().cloned())
                .collect(),
        };
        reporter.report(Event::Step {
            provider: Some(p.name().to_string()),
            step: format!("snapshot {}", req.name),
        });
        p.create(&req, reporter)
    })();
    // postBackupScript runs whatever happened before it.
    let mut post_error = None;
    for (name, s) in &states {
        if let Some(script) = &s.post_backup_script
            && let Err(e) = hooks::run_script(
                &format!("postBackupScript of state '{name}'"),
                script,
                &[("STATE", name)],
                reporter,
            )
        {
            post_error.get_or_insert(e);
        }
    }
    let backup = result?;
    if let Some(e) = post_error {
        return Err(e);
    }
    Ok(BackupInfo {
        provider: p.name().to_string(),
        backup,
    })
}

fn prepare_dump_dir(dir: &Path, pg: &Postgresql) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    if let Some(user) = &pg.run_as {
        let uid = clan_core::process::Cmd::new("id")
            .args(["-u", user])
            .run()
            .map_err(|e| BackupError::Step {
                step: format!("looking up user '{user}' (clan.core.postgresql.runAs)"),
                message: e.to_string(),
            })?;
        let uid: u32 = uid.stdout_string().trim().parse().unwrap_or(0);
        std::os::unix::fs::chown(dir, Some(uid), None)
            .map_err(io(format!("giving {} to {user}", dir.display())))?;
    }
    Ok(())
}

/// `clan backups list`: every provider's backups, oldest first.
pub fn list(m: &Machine, only: Option<&str>) -> Result<PerProvider<Vec<BackupInfo>>> {
    Ok(m.providers(only)?
        .into_iter()
        .map(|(name, config)| {
            let r = provider::open(&name, &config).list().map(|l| {
                l.into_iter()
                    .map(|b| BackupInfo {
                        provider: name.clone(),
                        backup: b,
                    })
                    .collect()
            });
            (name, r)
        })
        .collect())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreOptions {
    /// Only this state.
    pub state: Option<String>,
    /// Restore into this directory (`<target>/<folder>`) instead of in place.
    pub target: Option<PathBuf>,
    pub no_safety_backup: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestoreReport {
    /// The backup made just before, to return to.
    pub safety_backup: Option<String>,
    pub states: Vec<String>,
}

/// `clan backups restore`.
pub fn restore(
    m: &Machine,
    provider_name: &str,
    name: &str,
    opts: &RestoreOptions,
    reporter: &dyn Reporter,
) -> Result<RestoreReport> {
    let (_, config) = m
        .providers(Some(provider_name))?
        .pop()
        .expect("one provider");
    let p = provider::open(provider_name, &config);
    let states: Vec<(&String, &State)> = match &opts.state {
        Some(s) => vec![
            m.states
                .get_key_value(s)
                .ok_or_else(|| BackupError::UnknownState {
                    name: s.clone(),
                    available: m.states.keys().cloned().collect(),
                })?,
        ],
        None => m.states.iter().collect(),
    };
    if !p.has_backup(name)? {
        return Err(BackupError::NoSuchBackup {
            provider: provider_name.to_string(),
            name: name.to_string(),
        });
    }
    let report_states = states.iter().map(|(n, _)| (*n).clone()).collect();

    if let Some(target) = &opts.target {
        if p.restores_in_place_only() {
            return Err(BackupError::Config(format!(
                "provider '{provider_name}' restores in place only; --target is not possible"
            )));
        }
        for (state, s) in &states {
            for folder in folders_of(m, state, s) {
                reporter.report(Event::Step {
                    provider: Some(provider_name.into()),
                    step: format!("restoring {} into {}", folder.display(), target.display()),
                });
                let dest = tree::under(target, &folder);
                if dest.exists() {
                    return Err(BackupError::Config(format!(
                        "{} exists; --target needs a place that does not",
                        dest.display()
                    )));
                }
                std::fs::create_dir_all(dest.parent().expect("absolute"))
                    .map_err(io(format!("creating {}", dest.display())))?;
                p.restore_path(name, &folder, &dest, reporter)?;
            }
        }
        return Ok(RestoreReport {
            safety_backup: None,
            states: report_states,
        });
    }

    let units: Vec<String> = states
        .iter()
        .flat_map(|(_, s)| s.services.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !units.is_empty() && !services::systemd_running() {
        return Err(BackupError::NoSystemd {
            states: states
                .iter()
                .filter(|(_, s)| !s.services.is_empty())
                .map(|(n, _)| (*n).clone())
                .collect(),
            units,
        });
    }
    let _lock = m.lock()?;
    let safety = if opts.no_safety_backup {
        None
    } else {
        reporter.report(Event::Step {
            provider: Some(provider_name.into()),
            step: "safety backup".into(),
        });
        Some(
            create_with(m, p.as_ref(), Reason::PreRestore, reporter)?
                .backup
                .name,
        )
    };
    let failed = |step: String, e: BackupError| match &safety {
        Some(s) => BackupError::RestoreFailed {
            step,
            message: e.to_string(),
            machine: m.name.clone(),
            provider: provider_name.into(),
            safety: s.clone(),
        },
        None => BackupError::RestoreFailedNoSafety {
            step,
            message: e.to_string(),
        },
    };

    reporter.report(Event::Step {
        provider: None,
        step: format!(
            "stopping {}",
            if units.is_empty() {
                "no services".into()
            } else {
                units.join(", ")
            }
        ),
    });
    let result = services::stop(&units)
        .map_err(|e| failed("stopping services".into(), e))
        .and_then(|()| {
            for (state, s) in &states {
                restore_state(m, p.as_ref(), name, state, s, reporter)
                    .map_err(|f| failed(f.0, f.1))?;
            }
            Ok(())
        });
    reporter.report(Event::Step {
        provider: None,
        step: "starting services".into(),
    });
    let started = services::start(&units);
    result?;
    started.map_err(|e| failed("starting services".into(), e))?;
    Ok(RestoreReport {
        safety_backup: safety,
        states: report_states,
    })
}

/// Folders of a state, plus its database dumps' directory.
fn folders_of(m: &Machine, state: &str, s: &State) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = s.folders.iter().map(PathBuf::from).collect();
    if !s.postgres_databases.is_empty() {
        folders.push(m.dumps_dir(state));
    }
    folders
}

fn restore_state(
    m: &Machine,
    p: &dyn Provider,
    name: &str,
    state: &str,
    s: &State,
    reporter: &dyn Reporter,
) -> std::result::Result<(), Box<(String, BackupError)>> {
    let env = [("STATE", state)];
    if let Some(script) = &s.pre_restore_script {
        let step = format!("preRestoreScript of state '{state}'");
        hooks::run_script(&step, script, &env, reporter).map_err(|e| Box::new((step, e)))?;
    }
    let folders = folders_of(m, state, s);
    let step = format!("restoring the folders of state '{state}'");
    reporter.report(Event::Step {
        provider: Some(p.name().into()),
        step: step.clone(),
    });
    if p.restores_in_place_only() {
        reporter.report(Event::Warning {
            message: format!(
                "provider '{}' restores in place; files created after the backup stay",
                p.name()
            ),
        });
        p.restore_in_place(name, &folders, reporter)
            .map_err(|e| Box::new((step.clone(), e)))?;
    } else {
        for folder in &folders {
            restore_folder_exactly(p, name, folder, reporter)
                .map_err(|e| Box::new((format!("{step} ({})", folder.display()), e)))?;
        }
    }
    for db in &s.postgres_databases {
        let step = format!("restoring database '{db}' of state '{state}'");
        reporter.report(Event::Step {
            provider: None,
            step: step.clone(),
        });
        postgres::restore(
            &m.postgresql,
            db,
            &postgres::dump_file(&m.dumps_dir(state), db),
        )
        .map_err(|e| Box::new((step, e)))?;
    }
    if let Some(script) = &s.post_restore_script {
        let step = format!("postRestoreScript of state '{state}'");
        hooks::run_script(&step, script, &env, reporter).map_err(|e| Box::new((step, e)))?;
    }
    Ok(())
}

/// Restores `folder` from the backup into a directory inside it, then swaps the
/// contents: afterwards the folder holds exactly what the backup held.
fn restore_folder_exactly(
    p: &dyn Provider,
    name: &str,
    folder: &Path,
    reporter: &dyn Reporter,
) -> Result<()> {
    std::fs::create_dir_all(folder).map_err(io(format!("creating {}", folder.display())))?;
    let staging = folder.join(tree::STAGING_NAME);
    if staging.exists() {
        tree::remove_any(&staging)
            .map_err(io(format!("removing the leftover {}", staging.display())))?;
    }
    std::fs::create_dir(&staging).map_err(io(format!("creating {}", staging.display())))?;
    let restored = staging.join("tree");
    let result = p
        .restore_path(name, folder, &restored, reporter)
        .and_then(|()| {
            tree::replace_contents(folder, &restored).map_err(io(format!(
                "putting the restored {} in place",
                folder.display()
            )))
        });
    if result.is_err() && staging.exists() {
        let _ = tree::remove_any(&staging);
    }
    result
}

/// `clan backups check`.
pub fn check(m: &Machine, only: Option<&str>, read_data: bool) -> Result<PerProvider<String>> {
    Ok(m.providers(only)?
        .into_iter()
        .map(|(n, c)| {
            let r = provider::open(&n, &c).check(read_data);
            (n, r)
        })
        .collect())
}

/// `clan backups prune`: `keep`, or each provider's own retention.
pub fn prune(
    m: &Machine,
    only: Option<&str>,
    keep: Option<Keep>,
) -> Result<PerProvider<Vec<String>>> {
    let providers = m.providers(only)?;
    let _lock = m.lock()?;
    Ok(providers
        .into_iter()
        .map(|(n, c)| {
            let k = keep.unwrap_or_else(|| c.keep());
            let r = provider::open(&n, &c).prune(&k);
            (n, r)
        })
        .collect())
}
