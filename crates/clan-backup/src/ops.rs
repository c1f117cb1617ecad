//! The operations `clan backups` offers, on one machine: create, list, restore,
//! check, prune. They run where the data is (here, or on the machine through the
//! machine runtime).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use serde::{Deserialize, Serialize};

use clan_core::ResolvedMachine;
use clan_core::machine::{Postgresql, State};

use crate::config::ProviderConfig;
use crate::engine::Keep;
use crate::error::{BackupError, Result, io};
use crate::event::{Event, Reporter};
use crate::provider::{self, Listed, Provider, SnapshotRequest};
use crate::safe_fs::{Dir, SafeFsError};
use crate::scratch::Scratch;
use crate::{fault, hooks, interrupt, layout, links, postgres, services, tree};

/// What the backup layer needs of a machine: its states, providers and settings.
/// Serialisable, so that it can be sent to the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub name: String,
    pub states: BTreeMap<String, State>,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub staging_directory: PathBuf,
    pub postgresql: Postgresql,
}

impl Machine {
    pub fn from_resolved(m: &ResolvedMachine) -> Self {
        Self {
            name: m.name.to_string(),
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

    /// This machine as far as one state goes (a backup of that state only).
    pub fn only_state(&self, state: &str) -> Result<Machine> {
        self.only_states(&[state.to_string()])
    }

    /// This machine as far as some states go (a service's backup and restore).
    pub fn only_states(&self, states: &[String]) -> Result<Machine> {
        let mut kept = BTreeMap::new();
        for state in states {
            let s = self
                .states
                .get(state)
                .ok_or_else(|| BackupError::UnknownState {
                    name: state.to_string(),
                    available: self.states.keys().cloned().collect(),
                })?;
            kept.insert(state.to_string(), s.clone());
        }
        Ok(Machine {
            states: kept,
            ..self.clone()
        })
    }

    /// The named provider, or all.
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
            .map(|(n, c)| Ok((n.clone(), c.clone())))
            .collect()
    }

    pub(crate) fn dumps_dir(&self, state: &str) -> PathBuf {
        self.staging_directory.join("postgres").join(state)
    }

    /// Takes the machine's backup lock; refuses when another operation holds it.
    /// The staging directory is root's and not listable by others (mode 0711:
    /// the database user passes through it to its own 0700 dump directory), the
    /// lock file is 0600: `flock` needs only read access, so a lock readable by
    /// others would let any local user stop every backup.
    fn lock(&self) -> Result<File> {
        self.lock_named("lock")
    }

    /// Takes the lock file `name` in the staging directory (see [`Machine::lock`]).
    pub(crate) fn lock_named(&self, name: &str) -> Result<File> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let dir = &self.staging_directory;
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
            .map_err(io(format!("making {} private", dir.display())))?;
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io(format!("making {} private", path.display())))?;
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
    layout::check(m)?;
    let _lock = m.lock()?;
    recover_folders(m, reporter)?;
    let results: PerProvider<BackupInfo> = providers
        .into_iter()
        .map(|(name, config)| {
            let p = provider::open(&name, &config, &m.name, &m.staging_directory);
            let r = create_with(m, p.as_ref(), reason, reporter);
            (name, r)
        })
        .collect();
    let records: Vec<_> = results
        .iter()
        .flat_map(|(name, r)| {
            m.states
                .keys()
                .map(move |state| crate::drill::BackupRecord {
                    provider: name.clone(),
                    time: crate::drill::now(),
                    ok: r.is_ok(),
                    backup: r.as_ref().ok().map(|b| b.backup.name.clone()),
                    state: state.clone(),
                    size: r.as_ref().ok().and_then(|b| b.backup.size),
                    error: r.as_ref().err().map(ToString::to_string),
                })
        })
        .collect();
    let health = crate::drill::health_path(&m.staging_directory);
    if let Err(e) = crate::drill::record_backups(&health, &records) {
        reporter.report(Event::Warning {
            message: format!(
                "the backups are made, but not recorded for `clan backups status`: {e}"
            ),
        });
    }
    Ok(results)
}

/// Runs `f` while threads of their own read the metadata of everything below
/// `roots`, so that the backup's walk finds it in memory. A thread waits for one
/// read at a time; on cold caches four threads read a tree's metadata in about
/// half the time one does (bench/README.md). The reading stops when `f` returns.
fn while_reading_metadata<T>(roots: &[Dir], f: impl FnOnce() -> T) -> T {
    let ahead = ReadAhead::new(roots);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| ahead.work(&|_| {}));
        }
        let result = f();
        ahead.stop();
        result
    })
}

/// Folders whose metadata is read ahead of a walk, taken in name order, as the
/// backups walk them, by any number of threads. Each is opened from its state
/// folder one name at a time, never through a link: these threads are not pinned
/// like the engine's walk, and a link placed meanwhile must not lead them elsewhere.
struct ReadAhead<'a> {
    roots: &'a [Dir],
    queue: Mutex<Queue>,
    more: Condvar,
    stop: AtomicBool,
}

struct Queue {
    /// Folders still to read, the next one last.
    todo: Vec<Folder>,
    /// How many are being read (and may queue more).
    reading: usize,
}

/// A folder below one of the roots.
struct Folder {
    root: usize,
    rel: PathBuf,
}

impl<'a> ReadAhead<'a> {
    fn new(roots: &'a [Dir]) -> Self {
        let todo = (0..roots.len())
            .rev()
            .map(|root| Folder {
                root,
                rel: PathBuf::new(),
            })
            .collect();
        Self {
            roots,
            queue: Mutex::new(Queue { todo, reading: 0 }),
            more: Condvar::new(),
            stop: AtomicBool::new(false),
        }
    }

    /// Reads folders until none are left or [`Self::stop`]; `seen` gets each one.
    fn work(&self, seen: &dyn Fn(&Path)) {
        let mut q = self.queue.lock().expect("queue");
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let Some(Folder { root, rel }) = q.todo.pop() else {
                if q.reading == 0 {
                    self.more.notify_all();
                    return;
                }
                q = self.more.wait(q).expect("queue");
                continue;
            };
            q.reading += 1;
            drop(q);
            let mut subdirs = Vec::new();
            if let Ok(Some(dir)) = self.roots[root].open_below(&rel) {
                seen(dir.path());
                for name in dir.entries().unwrap_or_default() {
                    if self.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(Some(st)) = dir.stat(&name)
                        && rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir()
                    {
                        subdirs.push(Folder {
                            root,
                            rel: rel.join(&name),
                        });
                    }
                }
            }
            q = self.queue.lock().expect("queue");
            q.reading -= 1;
            q.todo.extend(subdirs.into_iter().rev());
            self.more.notify_all();
        }
    }

    fn stop(&self) {
        // Under the lock: a thread about to wait sees it, or is woken.
        let q = self.queue.lock().expect("queue");
        self.stop.store(true, Ordering::Relaxed);
        drop(q);
        self.more.notify_all();
    }
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
    let mut missing = Vec::new();
    for (name, s) in &states {
        for f in &s.folders {
            match Dir::open(Path::new(f)) {
                Ok(Some(_)) => {
                    paths.insert(PathBuf::from(f));
                }
                Ok(None) | Err(SafeFsError::NotADirectory(_)) => {
                    reporter.report(Event::Warning {
                        message: format!(
                            "folder {f} of state '{name}' does not exist (or is not a directory); \
                             the backup records that and holds the rest"
                        ),
                    });
                    missing.push(PathBuf::from(f));
                }
                Err(e) => {
                    return Err(BackupError::Step {
                        step: format!("state '{name}'"),
                        message: e.to_string(),
                    });
                }
            }
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
            return Err(BackupError::NothingToBackUp(m.name.clone()));
        }
        // The scripts ran since the check: a link placed meanwhile fails the backup.
        let mut roots = Vec::new();
        for path in &paths {
            let dir = Dir::open(path).map_err(|e| BackupError::Step {
                step: format!("folder {}", path.display()),
                message: e.to_string(),
            })?;
            roots.extend(dir);
        }
        let time = now_utc();
        let base = match reason {
            Reason::Explicit => format!("{}-{}-{time}", m.name, p.name()),
            other => format!("{}-{}-{time}-{}", m.name, p.name(), other.as_str()),
        };
        // Listing opens the repository (the restic engine derives its key, ~0.3 s of
        // one core, unless it is cached); the folders' metadata is read from the
        // disk meanwhile, and then ahead of the backup's own walk.
        while_reading_metadata(&roots, || {
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
                    .flat_map(|(_, s)| anchored_excludes(s))
                    .collect(),
                missing,
            };
            reporter.report(Event::Step {
                provider: Some(p.name().to_string()),
                step: format!("snapshot {}", req.name),
            });
            p.create(&req, reporter)
        })
    })();
    for (name, s) in &states {
        remove_dumps(m, name, s);
    }
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

/// A state's exclude patterns as absolute patterns over its own folders only: a
/// pattern without '/' matches a name at any depth below each folder
/// (`/srv/app/**/*.log`); one with '/' is already absolute. So one state's
/// patterns never leave another state's files out of the backup.
fn anchored_excludes(s: &State) -> Vec<String> {
    let mut out = Vec::new();
    for e in &s.exclude {
        if e.contains('/') {
            out.push(e.clone());
        } else {
            for f in &s.folders {
                out.push(format!("{}/**/{e}", f.trim_end_matches('/')));
            }
        }
    }
    out
}

/// The dump directory of a state: the database user's (it writes the dump), mode
/// 0700, below clan's staging directory.
pub(crate) fn prepare_dump_dir(dir: &Path, pg: &Postgresql) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let parent = dir.parent().expect("below the staging directory");
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o711))
        .map_err(io(format!("making {} private", parent.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("making {} private", dir.display())))?;
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

/// Dumps are only needed inside the snapshot: removed after a backup and after
/// their databases are restored, so no copy of a database lies around.
fn remove_dumps(m: &Machine, state: &str, s: &State) {
    for db in &s.postgres_databases {
        let _ = std::fs::remove_file(postgres::dump_file(&m.dumps_dir(state), db));
        let _ = std::fs::remove_file(postgres::counts_file(&m.dumps_dir(state), db));
    }
}

/// `clan backups list`: every provider's backups, oldest first.
pub fn list(m: &Machine, only: Option<&str>) -> Result<PerProvider<Vec<BackupInfo>>> {
    Ok(m.providers(only)?
        .into_iter()
        .map(|(name, config)| {
            let r = provider::open(&name, &config, &m.name, &m.staging_directory)
                .list()
                .map(|l| {
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
    /// Restore into this directory (`<into>/<folder>`, `--target`) instead of in place.
    pub into: Option<PathBuf>,
    pub no_safety_backup: bool,
    /// Restore a backup that another machine made (moving a service here).
    #[serde(default)]
    pub from_machine: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestoreReport {
    /// The backup made just before, to return to.
    pub safety_backup: Option<String>,
    pub states: Vec<String>,
}

/// `clan backups forget`: removes one backup of this machine from a provider.
pub fn forget(m: &Machine, provider_name: &str, name: &str) -> Result<()> {
    let (_, config) = m
        .providers(Some(provider_name))?
        .pop()
        .expect("one provider");
    let _lock = m.lock()?;
    let p = provider::open(provider_name, &config, &m.name, &m.staging_directory);
    if !p.has_backup(name)? {
        return Err(BackupError::NoSuchBackup {
            provider: provider_name.to_string(),
            name: name.to_string(),
            machine: m.name.clone(),
        });
    }
    p.forget(name)
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
    layout::check(m)?;
    // The backups restored from: this machine's, or, when moving a service, another's.
    let from = opts.from_machine.as_deref().unwrap_or(&m.name);
    let p = provider::open(provider_name, &config, &m.name, &m.staging_directory);
    // One provider when restoring the machine's own backup: it lists the backups once.
    let other;
    let src: &dyn Provider = if from == m.name {
        p.as_ref()
    } else {
        other = provider::open(provider_name, &config, from, &m.staging_directory);
        other.as_ref()
    };
    restore_with(m, p.as_ref(), src, from, name, opts, reporter)
}

/// The restore with its providers: `p` takes the safety backup, `src` (the same,
/// or another machine's view of the repository) holds backup `name` of `from`.
fn restore_with(
    m: &Machine,
    p: &dyn Provider,
    src: &dyn Provider,
    from: &str,
    name: &str,
    opts: &RestoreOptions,
    reporter: &dyn Reporter,
) -> Result<RestoreReport> {
    let states = select_states(m, opts.state.as_deref())?;
    if !src.has_backup(name)? {
        return Err(BackupError::NoSuchBackup {
            provider: p.name().to_string(),
            name: name.to_string(),
            machine: from.to_string(),
        });
    }
    let report_states = states.iter().map(|(n, _)| (*n).clone()).collect();
    if let Some(target) = &opts.into {
        restore_beside(m, src, name, &states, target, reporter)?;
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
    interrupt::watch();
    recover_folders(m, reporter)?;
    let safety = if opts.no_safety_backup {
        None
    } else {
        safety_backup(m, p, reporter)?
    };
    let failed = |step: String, e: BackupError| match &safety {
        Some(s) => BackupError::RestoreFailed {
            step,
            message: e.to_string(),
            machine: m.name.clone(),
            provider: p.name().into(),
            safety: s.clone(),
        },
        None => BackupError::RestoreFailedNoSafety {
            step,
            message: e.to_string(),
        },
    };

    reporter.report(Event::step(format!(
        "stopping {}",
        if units.is_empty() {
            "no services".into()
        } else {
            units.join(", ")
        }
    )));
    let result = services::stop(&units)
        .map_err(|e| failed("stopping services".into(), e))
        .and_then(|()| {
            for (state, s) in &states {
                interrupt::check().map_err(|e| failed(format!("restoring state '{state}'"), e))?;
                restore_state(m, src, name, state, s, reporter).map_err(|f| failed(f.0, f.1))?;
            }
            Ok(())
        });
    reporter.report(Event::step("starting services"));
    let started = services::start(&units);
    result?;
    started.map_err(|e| failed("starting services".into(), e))?;
    Ok(RestoreReport {
        safety_backup: safety,
        states: report_states,
    })
}

/// The state named (`--service`), or all.
pub(crate) fn select_states<'m>(
    m: &'m Machine,
    only: Option<&str>,
) -> Result<Vec<(&'m String, &'m State)>> {
    Ok(match only {
        Some(s) => vec![
            m.states
                .get_key_value(s)
                .ok_or_else(|| BackupError::UnknownState {
                    name: s.to_string(),
                    available: m.states.keys().cloned().collect(),
                })?,
        ],
        None => m.states.iter().collect(),
    })
}

/// The backup of what is there now, to return to; `None` when nothing exists.
fn safety_backup(m: &Machine, p: &dyn Provider, reporter: &dyn Reporter) -> Result<Option<String>> {
    reporter.report(Event::Step {
        provider: Some(p.name().into()),
        step: "safety backup".into(),
    });
    match create_with(m, p, Reason::PreRestore, reporter) {
        Ok(b) => Ok(Some(b.backup.name)),
        // Every folder is gone and there is no database: nothing to lose.
        Err(BackupError::NothingToBackUp(_)) => {
            reporter.report(Event::Warning {
                message: "no safety backup: none of the folders exists".into(),
            });
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `--target`: the states' folders restored below `target`, which must not hold them
/// yet; the live folders are not touched.
fn restore_beside(
    m: &Machine,
    src: &dyn Provider,
    name: &str,
    states: &[(&String, &State)],
    target: &Path,
    reporter: &dyn Reporter,
) -> Result<()> {
    if src.restores_in_place_only() {
        return Err(BackupError::Config(format!(
            "provider '{}' restores in place only; --target is not possible",
            src.name()
        )));
    }
    for (state, s) in states {
        let mut restored = Vec::new();
        for folder in folders_of(m, state, s) {
            reporter.report(Event::Step {
                provider: Some(src.name().into()),
                step: format!("restoring {} into {}", folder.display(), target.display()),
            });
            let dest = tree::under(target, &folder);
            let (parent, _) = Dir::create_all(dest.parent().expect("absolute"), 0o700)?;
            let base = dest.file_name().expect("a folder has a name");
            if parent.has(base)? {
                return Err(BackupError::Config(format!(
                    "{} exists; --target needs a place that does not",
                    dest.display()
                )));
            }
            match src.restore_path(name, &folder, &parent.fd_path().join(base), reporter) {
                Err(BackupError::NotInBackup { name, path }) => reporter.report(Event::Warning {
                    message: format!("backup '{name}' does not hold {}", path.display()),
                }),
                other => {
                    other?;
                    // Restored means on disk, as an in-place restore's swap.
                    parent.sync_fs()?;
                    if let Some(tree) = parent.open_sub(base)? {
                        restored.push(links::Restored { folder, tree });
                    }
                }
            }
        }
        link_across(src, name, &restored, reporter);
    }
    Ok(())
}

/// Folders of a state, plus its database dumps' directory.
pub(crate) fn folders_of(m: &Machine, state: &str, s: &State) -> Vec<PathBuf> {
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
        restore_folders_exactly(p, name, &folders, &step, reporter)?;
    }
    for db in &s.postgres_databases {
        let step = format!("restoring database '{db}' of state '{state}'");
        interrupt::check().map_err(|e| Box::new((step.clone(), e)))?;
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
    remove_dumps(m, state, s);
    if let Some(script) = &s.post_restore_script {
        let step = format!("postRestoreScript of state '{state}'");
        hooks::run_script(&step, script, &env, reporter).map_err(|e| Box::new((step, e)))?;
    }
    Ok(())
}

/// Restores each folder of a state from the backup into a scratch directory inside
/// it (on the folder's filesystem even when it is a mount point), links again the
/// files that were one across the folders, then swaps each folder's contents in
/// (see `scratch.rs` for what is on disk at every step). A missing folder, or one
/// that a file took the place of, is made again.
fn restore_folders_exactly(
    p: &dyn Provider,
    name: &str,
    folders: &[PathBuf],
    step: &str,
    reporter: &dyn Reporter,
) -> std::result::Result<(), Box<(String, BackupError)>> {
    let at = |folder: &Path, e| Box::new((format!("{step} ({})", folder.display()), e));
    let mut filled: Vec<(&Path, Dir, Scratch)> = Vec::new();
    let filling = folders.iter().try_for_each(|folder| {
        if let Some((dir, scratch)) =
            fill_scratch(p, name, folder, reporter).map_err(|e| at(folder, e))?
        {
            filled.push((folder, dir, scratch));
        }
        Ok(())
    });
    let filling = filling.and_then(|()| {
        let restored: Option<Vec<links::Restored>> = filled
            .iter()
            .map(|(folder, _, scratch)| {
                Some(links::Restored {
                    folder: folder.to_path_buf(),
                    tree: scratch.tree().ok()??,
                })
            })
            .collect();
        if let Some(restored) = restored {
            link_across(p, name, &restored, reporter);
        }
        fault::point();
        interrupt::check().map_err(|e| Box::new((step.to_string(), e)))
    });
    if let Err(e) = filling {
        for (_, dir, scratch) in filled {
            // A scratch left behind is removed by the next run (recover_folders).
            let _ = scratch.discard(&dir);
        }
        return Err(e);
    }
    let mut filled = filled.into_iter();
    while let Some((folder, dir, scratch)) = filled.next() {
        if let Err(e) = swap_in(scratch, &dir) {
            for (_, dir, scratch) in filled {
                let _ = scratch.discard(&dir);
            }
            return Err(at(folder, e));
        }
    }
    Ok(())
}

/// Restores `folder` into a new scratch directory inside it; `None` (and a warning)
/// when the backup does not hold it.
fn fill_scratch(
    p: &dyn Provider,
    name: &str,
    folder: &Path,
    reporter: &dyn Reporter,
) -> Result<Option<(Dir, Scratch)>> {
    let (dir, created) = open_for_restore(folder, reporter)?;
    let scratch = Scratch::create(&dir, created.last().map(PathBuf::as_path) == Some(folder))?;
    fault::point();
    let restored = p
        .restore_path(name, folder, &scratch.tree_path(), reporter)
        .and_then(|()| {
            fault::point();
            interrupt::check()
        });
    match restored {
        Ok(()) => Ok(Some((dir, scratch))),
        Err(e) => {
            scratch.discard(&dir)?;
            match e {
                // Not in the backup: left as it is now.
                BackupError::NotInBackup { name, path } => {
                    let recorded = p.list().is_ok_and(|l| {
                        l.iter().any(|b| {
                            (b.name == name || b.name.ends_with(&format!("::{name}")))
                                && b.missing.iter().any(|m| Path::new(m) == path)
                        })
                    });
                    let why = if recorded {
                        "it did not exist when the backup was made"
                    } else {
                        "it was missing then, or joined the state later"
                    };
                    reporter.report(Event::Warning {
                        message: format!(
                            "backup '{name}' does not hold {} ({why}); left as it is",
                            path.display()
                        ),
                    });
                    Ok(None)
                }
                e => Err(e),
            }
        }
    }
}

/// Hard links of the backup between the folders of a state, made again in the
/// restored trees (see links.rs). Failing to find them costs the links only.
fn link_across(
    p: &dyn Provider,
    name: &str,
    restored: &[links::Restored],
    reporter: &dyn Reporter,
) {
    if restored.len() < 2 {
        return;
    }
    let folders: Vec<PathBuf> = restored.iter().map(|r| r.folder.clone()).collect();
    match p.link_groups(name, &folders) {
        Ok(groups) => {
            links::relink(&links::across(groups, &folders), restored, reporter);
        }
        Err(e) => reporter.report(Event::Warning {
            message: format!(
                "could not read which files were hard links across the folders of the state; \
                 they are restored as separate files: {e}"
            ),
        }),
    }
}

/// Swaps a filled scratch directory's tree into its folder.
fn swap_in(scratch: Scratch, dir: &Dir) -> Result<()> {
    scratch.swap_in(dir).map_err(|(e, kept)| {
        let e = BackupError::from(e);
        if kept.0.is_empty() {
            return e;
        }
        BackupError::Config(format!(
            "{e}\nThe folder was put back as it was, except these entries, whose names were \
             taken meanwhile; they are kept at: {}",
            kept.0
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// Opens (or makes) a folder to restore into. A file or other non-directory where
/// the folder or one of its parents should be is moved aside (renamed to
/// `<name>.clan-moved-<time>`, reported), never deleted.
fn open_for_restore(folder: &Path, reporter: &dyn Reporter) -> Result<(Dir, Vec<PathBuf>)> {
    loop {
        match Dir::create_all(folder, 0o700) {
            Err(SafeFsError::NotADirectory(blocker)) if folder.starts_with(&blocker) => {
                let parent = blocker.parent().expect("not the root");
                let base = blocker.file_name().expect("a name");
                let dir = Dir::open(parent)?.ok_or_else(|| {
                    BackupError::Config(format!("{} disappeared", parent.display()))
                })?;
                let mut aside = base.to_os_string();
                aside.push(format!(".clan-moved-{}", now_utc()));
                dir.move_to(base, &dir, &aside)?;
                reporter.report(Event::Warning {
                    message: format!(
                        "{} was not a directory; moved it to {} to restore the folder",
                        blocker.display(),
                        parent.join(&aside).display()
                    ),
                });
            }
            other => return Ok(other?),
        }
    }
}

/// Rolls back or removes what an interrupted restore left in the folders of
/// `states` (the next operation on the machine does this first, under the lock).
fn recover_folders(m: &Machine, reporter: &dyn Reporter) -> Result<()> {
    for (state, s) in &m.states {
        for folder in folders_of(m, state, s) {
            let Ok(Some(dir)) = Dir::open(&folder) else {
                continue;
            };
            let kept = Scratch::recover(&dir)?;
            if !kept.is_empty() {
                reporter.report(Event::Warning {
                    message: format!(
                        "an interrupted restore of {} was rolled back, but these entries' names \
                         were taken meanwhile; they are kept at: {}",
                        folder.display(),
                        kept.iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    }
    Ok(())
}

/// `clan backups check`.
pub fn check(m: &Machine, only: Option<&str>, read_data: bool) -> Result<PerProvider<String>> {
    Ok(m.providers(only)?
        .into_iter()
        .map(|(n, c)| {
            let r = provider::open(&n, &c, &m.name, &m.staging_directory).check(read_data);
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
    layout::check(m)?;
    let _lock = m.lock()?;
    Ok(providers
        .into_iter()
        .map(|(n, c)| {
            let k = keep.unwrap_or_else(|| c.keep());
            let r = provider::open(&n, &c, &m.name, &m.staging_directory).prune(&k);
            (n, r)
        })
        .collect())
}

/// The orchestration with an in-memory provider (`provider::memory`, a test double):
/// what a restore leaves in the folders when it succeeds, fails, or finds a folder
/// missing from the backup. Real providers are tested in tests/ and the CLI's tests.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::memory::Memory;
    use std::sync::Mutex;

    fn state(folders: &[&Path]) -> State {
        State {
            folders: folders.iter().map(|f| f.display().to_string()).collect(),
            postgres_databases: vec![],
            services: vec![],
            pre_backup_script: None,
            post_backup_script: None,
            pre_restore_script: None,
            post_restore_script: None,
            drill_script: None,
            exclude: vec![],
        }
    }

    fn machine(root: &Path, s: State) -> Machine {
        Machine {
            name: "m".into(),
            states: [("app".to_string(), s)].into(),
            providers: BTreeMap::new(),
            staging_directory: root.join("staging"),
            postgresql: Postgresql::default(),
        }
    }

    fn files(dir: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return out;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                out.extend(
                    files(&e.path())
                        .into_iter()
                        .map(|(n, c)| (format!("{name}/{n}"), c)),
                );
            } else {
                out.push((name, std::fs::read_to_string(e.path()).unwrap()));
            }
        }
        out.sort();
        out
    }

    fn restore(m: &Machine, p: &Memory, name: &str) -> (Result<RestoreReport>, Vec<String>) {
        let warnings = Mutex::new(Vec::new());
        let r = restore_with(
            m,
            p,
            p,
            "m",
            name,
            &RestoreOptions::default(),
            &|e: Event| {
                if let Event::Warning { message } = e {
                    warnings.lock().unwrap().push(message);
                }
            },
        );
        (r, warnings.into_inner().unwrap())
    }

    /// The reading ends with `f`, whether it is done before or not, and leaves the
    /// folders as they were.
    #[test]
    fn reading_metadata_ahead_ends_with_the_work() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..30 {
            let d = tmp.path().join(format!("d{i}/e{}", i % 3));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("f"), "x").unwrap();
        }
        let before = files(tmp.path());
        let roots = [Dir::open(tmp.path()).unwrap().unwrap()];
        assert_eq!(while_reading_metadata(&roots, || 42), 42);
        let listed = while_reading_metadata(&roots, || files(tmp.path()));
        assert_eq!(listed, before);
        assert_eq!(while_reading_metadata(&[], || "none"), "none");
    }

    /// Every folder below the roots is read once, by several threads; links to
    /// folders (inside or outside, or to themselves) are not followed.
    #[test]
    fn reading_metadata_ahead_reads_every_folder_and_follows_no_link() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, outside) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("out"),
        );
        for d in ["x/y/z", "x/w", "v"] {
            std::fs::create_dir_all(a.join(d)).unwrap();
        }
        std::fs::create_dir_all(b.join("u")).unwrap();
        std::fs::create_dir_all(outside.join("secret/deeper")).unwrap();
        std::os::unix::fs::symlink(&outside, a.join("x/out")).unwrap();
        std::os::unix::fs::symlink(".", a.join("x/w/loop")).unwrap();
        std::os::unix::fs::symlink("../b", a.join("v/b")).unwrap();
        let roots = vec![
            Dir::open(&a).unwrap().unwrap(),
            Dir::open(&b).unwrap().unwrap(),
        ];
        let ahead = ReadAhead::new(&roots);
        let seen = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| ahead.work(&|p| seen.lock().unwrap().push(p.to_path_buf())));
            }
        });
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        let want: Vec<PathBuf> = ["a", "a/v", "a/x", "a/x/w", "a/x/y", "a/x/y/z", "b", "b/u"]
            .iter()
            .map(|p| tmp.path().join(p))
            .collect();
        assert_eq!(seen, want);
    }

    /// A folder swapped for a link after it was queued is not read through the link.
    #[test]
    fn reading_metadata_ahead_does_not_follow_a_folder_swapped_for_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        std::fs::create_dir_all(a.join("v")).unwrap();
        std::fs::create_dir_all(a.join("x/y")).unwrap();
        std::fs::create_dir_all(tmp.path().join("out/secret")).unwrap();
        let roots = vec![Dir::open(&a).unwrap().unwrap()];
        let ahead = ReadAhead::new(&roots);
        let seen = Mutex::new(Vec::new());
        // One thread: `a` is read (queueing `v`, then `x`), then `v`, when `x` is
        // swapped for a link to `out`.
        ahead.work(&|p| {
            if p.ends_with("a/v") {
                std::fs::rename(a.join("x"), tmp.path().join("x-moved")).unwrap();
                std::os::unix::fs::symlink(tmp.path().join("out"), a.join("x")).unwrap();
            }
            seen.lock().unwrap().push(p.to_path_buf());
        });
        assert_eq!(seen.into_inner().unwrap(), [a.clone(), a.join("v")]);
    }

    #[test]
    fn every_folder_of_the_state_comes_back_and_the_safety_backup_holds_the_live_data() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for (dir, text) in [(&a, "a1"), (&b, "b1")] {
            std::fs::create_dir_all(dir.join("sub")).unwrap();
            std::fs::write(dir.join("sub/f"), text).unwrap();
        }
        let m = machine(tmp.path(), state(&[&a, &b]));
        let p = Memory::default();
        let name = create_with(&m, &p, Reason::Explicit, &crate::event::Silent)
            .unwrap()
            .backup
            .name;
        std::fs::write(a.join("sub/f"), "a2").unwrap();
        std::fs::write(b.join("new"), "b2").unwrap();
        let (report, warnings) = restore(&m, &p, &name);
        let report = report.unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(files(&a), [("sub/f".into(), "a1".into())]);
        assert_eq!(files(&b), [("sub/f".into(), "b1".into())]);
        let safety = report.safety_backup.unwrap();
        assert!(p.names().contains(&safety));
        // The safety backup is the state before: restoring it brings a2 and b2 back.
        let (r, _) = restore(&m, &p, &safety);
        r.unwrap();
        assert_eq!(files(&a), [("sub/f".into(), "a2".into())]);
        assert_eq!(
            files(&b),
            [("new".into(), "b2".into()), ("sub/f".into(), "b1".into())]
        );
    }

    #[test]
    fn a_failure_restoring_one_folder_leaves_every_folder_of_the_state_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for (dir, text) in [(&a, "a1"), (&b, "b1")] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("f"), text).unwrap();
        }
        let m = machine(tmp.path(), state(&[&a, &b]));
        let mut p = Memory::default();
        let name = create_with(&m, &p, Reason::Explicit, &crate::event::Silent)
            .unwrap()
            .backup
            .name;
        std::fs::write(a.join("f"), "a2").unwrap();
        std::fs::write(b.join("f"), "b2").unwrap();
        // The second folder fails after the first was restored into its scratch
        // directory: neither is swapped in.
        p.fail_restoring = Some(b.clone());
        let (r, _) = restore(&m, &p, &name);
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("failed (as told)") && e.contains("pre-restore"),
            "{e}"
        );
        assert_eq!(files(&a), [("f".into(), "a2".into())]);
        assert_eq!(files(&b), [("f".into(), "b2".into())]);
        for dir in [&a, &b] {
            let left: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert_eq!(
                left,
                ["f"],
                "no scratch directory is left in {}",
                dir.display()
            );
        }
    }

    #[test]
    fn a_folder_the_backup_does_not_hold_is_left_as_it_is_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, later) = (tmp.path().join("a"), tmp.path().join("later"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::write(a.join("f"), "a1").unwrap();
        let m = machine(tmp.path(), state(&[&a, &later]));
        let p = Memory::default();
        let name = create_with(&m, &p, Reason::Explicit, &crate::event::Silent)
            .unwrap()
            .backup
            .name;
        std::fs::create_dir_all(&later).unwrap();
        std::fs::write(later.join("g"), "made after the backup").unwrap();
        std::fs::write(a.join("f"), "a2").unwrap();
        let (r, warnings) = restore(&m, &p, &name);
        r.unwrap();
        assert_eq!(files(&a), [("f".into(), "a1".into())]);
        assert_eq!(
            files(&later),
            [("g".into(), "made after the backup".into())]
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("it did not exist when the backup was made")),
            "{warnings:?}"
        );
    }
}
