//! [`Engine`] on `rustic_core` =0.13.0 with the local backend.

use std::path::{Path, PathBuf};

use bytesize::ByteSize;
use rustic_backend::BackendOptions;
use rustic_core::repofile::{MasterKey, SnapshotFile};
use rustic_core::{
    BackupOptions, CheckOptions, ConfigOptions, Credentials, ForgetGroups, Grouped, KeepOptions,
    KeyOptions, LsOptions, PathList, PruneOptions, Repository, RepositoryOptions,
    SnapshotGroupCriterion, SnapshotOptions,
};

use super::{
    Engine, EngineError, EngineResult, Keep, ProgressSender, ProgressUpdate, RepoSpec, Snapshot,
};

mod archiver;
mod chunker;

use crate::drill::{Content, Entry, Kind, unhex};
pub use key_cache::KeyCache;
use restorer::Afterwards;
mod key;
mod key_cache;
mod lock;
mod pack;
mod restorer;
mod serve;

/// rustic's progress hooks, forwarded as [`ProgressUpdate`]s (at most ten a second
/// per bar, and at the end).
#[derive(Debug, Clone)]
struct Bars(std::sync::Arc<std::sync::Mutex<ProgressSender>>);

#[derive(Debug)]
struct Bar {
    tx: std::sync::Arc<std::sync::Mutex<ProgressSender>>,
    state: std::sync::Mutex<BarState>,
    bytes: bool,
}

#[derive(Debug)]
struct BarState {
    title: String,
    done: u64,
    total: Option<u64>,
    last_sent: Option<std::time::Instant>,
}

impl Bar {
    fn send(&self, force: bool) {
        let mut st = self.state.lock().expect("progress state");
        let due = st
            .last_sent
            .is_none_or(|t| t.elapsed() >= std::time::Duration::from_millis(100));
        if force || due {
            st.last_sent = Some(std::time::Instant::now());
            let update = ProgressUpdate {
                title: st.title.clone(),
                done: st.done,
                total: st.total,
                bytes: self.bytes,
            };
            let _ = self.tx.lock().expect("progress channel").send(update);
        }
    }
}

impl rustic_core::RusticProgress for Bar {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.state.lock().expect("progress state").total = Some(len);
        self.send(false);
    }
    fn set_title(&self, title: &str) {
        self.state.lock().expect("progress state").title = title.to_string();
        self.send(true);
    }
    fn inc(&self, inc: u64) {
        self.state.lock().expect("progress state").done += inc;
        self.send(false);
    }
    fn finish(&self) {
        self.send(true);
    }
}

impl rustic_core::ProgressBars for Bars {
    fn progress(&self, kind: rustic_core::ProgressType, prefix: &str) -> rustic_core::Progress {
        let bytes = matches!(kind, rustic_core::ProgressType::Bytes);
        let state = BarState {
            title: prefix.to_string(),
            done: 0,
            total: None,
            last_sent: None,
        };
        rustic_core::Progress::new(Bar {
            tx: self.0.clone(),
            state: std::sync::Mutex::new(state),
            bytes,
        })
    }
}

pub struct Rustic {
    spec: RepoSpec,
    /// The master key, once the password opened the repository: later opens by this
    /// engine skip the key derivation (~0.35 s; a backup or a restore opens twice).
    key: std::sync::OnceLock<MasterKey>,
    /// The REST server of an `rclone:` repository, once started (serve.rs).
    served: std::sync::Mutex<Option<serve::Served>>,
    /// Where master keys are kept between runs (key_cache.rs); none in tests.
    key_cache: Option<KeyCache>,
    /// Whether a backup went to rustic_core's archiver, which reads by path.
    read_by_path: std::sync::atomic::AtomicBool,
}

impl Rustic {
    pub fn new(spec: RepoSpec) -> Self {
        Self {
            spec,
            key: std::sync::OnceLock::new(),
            served: std::sync::Mutex::new(None),
            key_cache: None,
            read_by_path: Default::default(),
        }
    }

    /// Whether a backup of this engine read the folders by path (rustic_core's
    /// archiver, for a repository with a fixed-size chunker) rather than through
    /// descriptors.
    pub fn read_by_path(&self) -> bool {
        self.read_by_path.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Keeps the master key in `cache` between runs.
    pub fn keeping_keys(mut self, cache: Option<KeyCache>) -> Self {
        self.key_cache = cache;
        self
    }

    fn credentials(&self) -> EngineResult<Credentials> {
        match self.key.get() {
            Some(key) => Ok(Credentials::Masterkey(key.clone())),
            None => Ok(Credentials::password(self.password()?)),
        }
    }

    fn remember_key(
        &self,
        repo: Repository<rustic_core::OpenStatus>,
    ) -> Repository<rustic_core::OpenStatus> {
        let _ = self.key.set(repo.key());
        repo
    }

    /// The repository as rustic_core opens it: an `rclone:` repository through the
    /// engine's own REST server of rclone's.
    fn location(&self) -> EngineResult<String> {
        let r = &self.spec.repository;
        let Some(remote) = r.strip_prefix("rclone:") else {
            return Ok(r.clone());
        };
        let mut served = self.served.lock().expect("served");
        if served.is_none() {
            *served = Some(serve::Served::start(remote).map_err(EngineError::Unreachable)?);
        }
        Ok(format!("rest:{}", served.as_ref().expect("started").url))
    }

    /// restic's lock on the repository (see lock.rs); taken after the repository was
    /// opened (it needs the master key). Repositories of other kinds (none that clan
    /// configures) are not locked.
    fn lock(&self, exclusive: bool) -> EngineResult<Option<lock::Held>> {
        let r = &self.spec.repository;
        let store = match r.strip_prefix("local:") {
            Some(p) => lock::Store::Dir(Path::new(p).join("locks")),
            None if r.starts_with('/') => lock::Store::Dir(Path::new(r).join("locks")),
            None => match self.location()?.strip_prefix("rest:") {
                Some(url) => lock::Store::rest(url)?,
                None => return Ok(None),
            },
        };
        let key = self
            .key
            .get()
            .ok_or_else(|| EngineError::Repository("the repository is not open".into()))?;
        lock::acquire(store, &redacted(r), key, exclusive).map(Some)
    }

    fn password(&self) -> Result<String, String> {
        let text = std::fs::read_to_string(&self.spec.password_file).map_err(|e| {
            format!(
                "cannot read the password file {}: {e}",
                self.spec.password_file.display()
            )
        })?;
        let password = text.strip_suffix('\n').unwrap_or(&text).to_string();
        if password.is_empty() {
            return Err(format!(
                "the password file {} is empty",
                self.spec.password_file.display()
            ));
        }
        Ok(password)
    }

    fn backends(&self) -> EngineResult<rustic_core::RepositoryBackends> {
        BackendOptions::default()
            .repository(self.location()?)
            .to_backends()
            .map_err(err)
    }

    /// The repository's folder, when it is on this machine.
    fn local_dir(&self) -> Option<PathBuf> {
        let r = &self.spec.repository;
        let path = Path::new(r.strip_prefix("local:").unwrap_or(r));
        path.is_absolute().then(|| path.to_path_buf())
    }

    fn repo(&self) -> EngineResult<Repository<()>> {
        Repository::new(&RepositoryOptions::default(), &self.backends()?).map_err(err)
    }

    fn open(&self) -> EngineResult<Repository<rustic_core::OpenStatus>> {
        self.open_repo(self.repo()?)
    }

    /// Opens `repo` with the key this engine or the key cache holds, or else with
    /// the password (whose key then goes to the cache).
    fn open_repo(&self, repo: Repository<()>) -> EngineResult<Repository<rustic_core::OpenStatus>> {
        let location = &self.spec.repository;
        let cache = self.key_cache.as_ref().filter(|_| self.key.get().is_none());
        if let Some(cache) = cache
            && let Ok(keys) = repo.list::<rustic_core::repofile::KeyId>()
        {
            let keys: Vec<String> = keys.map(|id| id.to_hex().to_string()).collect();
            if let Some(master) = cache.get(location, &self.spec.password_file, &keys) {
                match repo.clone().open(&Credentials::Masterkey(master)) {
                    Ok(open) => return Ok(self.remember_key(open)),
                    Err(_) => cache.forget(location),
                }
            }
        }
        let open = repo.open(&self.credentials()?).map_err(err)?;
        if let (Some(cache), Some(id)) = (cache, open.key_id()) {
            cache.put(
                location,
                &self.spec.password_file,
                &id.to_hex(),
                &open.key(),
            );
        }
        Ok(self.remember_key(open))
    }

    /// Opens the repository with progress going to `progress`.
    fn open_reporting(
        &self,
        progress: Option<ProgressSender>,
    ) -> EngineResult<Repository<rustic_core::OpenStatus>> {
        let Some(tx) = progress else {
            return self.open();
        };
        let backends = self.backends()?;
        let bars = Bars(std::sync::Arc::new(std::sync::Mutex::new(tx)));
        let repo = Repository::new_with_progress(&RepositoryOptions::default(), &backends, bars)
            .map_err(err)?;
        self.open_repo(repo)
    }
}

/// A repository location for messages: without the password of a URL.
fn redacted(repo: &str) -> String {
    match repo.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((auth, host)) if !auth.contains('/') => match auth.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => repo.to_string(),
            },
            _ => repo.to_string(),
        },
        None => repo.to_string(),
    }
}

/// The error's one-line form: its full form carries a backtrace when RUST_BACKTRACE
/// is set, and resolving that costs ~150 MiB and seconds even for an error that is
/// only checked and dropped.
fn err(e: impl std::ops::Deref<Target = rustic_core::RusticError>) -> EngineError {
    let line = e.display_log();
    EngineError::Repository(line.strip_prefix("Error: ").unwrap_or(&line).to_string())
}

fn to_snapshot(s: &SnapshotFile) -> Snapshot {
    Snapshot {
        id: s.id.to_hex().to_string(),
        label: s.label.clone(),
        time_utc: s
            .time
            .with_time_zone(jiff::tz::TimeZone::UTC)
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        host: s.hostname.clone(),
        tags: s.tags.iter().cloned().collect(),
        paths: s.paths.iter().cloned().collect(),
        added_bytes: s.summary.as_ref().map(|x| x.data_added_packed),
        unchanged_files: s.summary.as_ref().map(|x| x.files_unmodified),
    }
}

/// rustic stores each backed-up root directory as a bare parent (mode 755, no
/// owner or mtime), so clan keeps the roots' own metadata in the snapshot's
/// description (JSON: path -> [mode, uid, gid, mtime seconds, mtime nanoseconds])
/// and applies it after a restore.
fn roots_description(paths: &[PathBuf]) -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let mut roots = serde_json::Map::new();
    for p in paths {
        let m = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        // As the walker below it: attributes that cannot be read are left out.
        let xattrs: serde_json::Map<_, _> = xattrs(p)
            .unwrap_or_else(|e| {
                tracing::warn!("extended attributes of {} not read: {e}", p.display());
                Vec::new()
            })
            .into_iter()
            .map(|(name, value)| (name, value.into()))
            .collect();
        roots.insert(
            p.display().to_string(),
            serde_json::json!([
                m.mode() & 0o7777,
                m.uid(),
                m.gid(),
                m.mtime(),
                m.mtime_nsec(),
                xattrs
            ]),
        );
    }
    Ok(serde_json::json!({ "clanRoots": roots }).to_string())
}

fn apply_root_metadata(description: Option<&str>, path: &Path, dest: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let roots: serde_json::Value = description
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let Some(m) = roots["clanRoots"][path.display().to_string()].as_array() else {
        return Ok(());
    };
    let n = |i: usize| {
        m.get(i)
            .and_then(serde_json::Value::as_i64)
            .unwrap_or_default()
    };
    let fail = |e: std::io::Error| format!("setting the metadata of {}: {e}", dest.display());
    std::os::unix::fs::lchown(dest, Some(n(1) as u32), Some(n(2) as u32)).map_err(fail)?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(n(0) as u32)).map_err(fail)?;
    // After the mode: an access ACL sets the group bits again. As rustic_core does
    // below the root, one that cannot be set is a warning.
    let xattrs = m.get(5).and_then(serde_json::Value::as_object);
    for (name, value) in xattrs.into_iter().flatten() {
        use base64::Engine as _;
        let value = value
            .as_str()
            .map(|v| base64::engine::general_purpose::STANDARD.decode(v));
        let set = match value {
            Some(Ok(v)) => xattr::set(dest, name, &v),
            _ => Ok(()),
        };
        if let Err(e) = set {
            tracing::warn!("restore {}: setting {name} failed: {e}", dest.display());
        }
    }
    let mtime = filetime::FileTime::from_unix_time(n(3), n(4) as u32);
    filetime::set_symlink_file_times(dest, mtime, mtime).map_err(fail)
}

/// The extended attributes of `path` (a symlink's own), values in base64, as
/// restic stores them.
fn xattrs(path: &Path) -> std::io::Result<Vec<(String, String)>> {
    use base64::Engine as _;
    Ok(crate::safe_fs::read_xattrs(path, false)?
        .into_iter()
        .map(|(name, value)| {
            let value = base64::engine::general_purpose::STANDARD.encode(value);
            (name.to_string_lossy().into_owned(), value)
        })
        .collect())
}

/// What a backup reads and how its snapshot is named.
struct Source<'a> {
    paths: &'a [PathBuf],
    label: &'a str,
    host: &'a str,
    tags: &'a [String],
    excludes: &'a [String],
}

impl Rustic {
    /// A backup by our archiver (archiver.rs), or by rustic_core's: with `ours`
    /// false (tests compare the two) or a repository whose chunker ours lacks.
    fn backup_with(
        &self,
        ours: bool,
        src: &Source<'_>,
        progress: Option<ProgressSender>,
    ) -> EngineResult<SnapshotFile> {
        let repo = self.open()?;
        let _lock = self.lock(false)?;
        let mut opts = SnapshotOptions::default()
            .label(src.label.to_string())
            .host(src.host.to_string());
        if !src.tags.is_empty() {
            opts = opts.add_tags(&src.tags.join(",")).map_err(err)?;
        }
        opts.description = Some(roots_description(src.paths)?);
        let snap = opts.to_snapshot().map_err(err)?;
        let source = PathList::from_iter(src.paths.iter().cloned())
            .sanitize()
            .map_err(|e| e.to_string())?;
        let mut backup = BackupOptions::default();
        // Every clan snapshot has its own label: the parent (whose unchanged files are
        // not read again) is the latest snapshot of the same host and paths.
        backup.parent_opts.group_by = Some(
            SnapshotGroupCriterion::new()
                .hostname(true)
                .label(false)
                .paths(true)
                .tags(false),
        );
        // Gitignore-style globs: a pattern without '/' matches a name at any depth;
        // absolute patterns are anchored at the filesystem root.
        backup.excludes.globs = src.excludes.iter().map(|e| format!("!{e}")).collect();
        backup.ignore_filter_opts.exclude_if_present = vec![crate::scratch::MARKER.to_string()];
        if ours {
            let own = archiver::Source {
                opts: &backup,
                paths: source.paths(),
            };
            let be = self.backends()?.repository();
            if let Some(snap) = archiver::backup(&repo, be, own, snap.clone(), progress)? {
                return Ok(snap);
            }
        }
        self.read_by_path
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let repo = repo.to_indexed_ids().map_err(err)?;
        repo.backup(&backup, &source, snap).map_err(err)
    }
}

/// A drill's checks of a restore (see `Engine::restore_checked`).
struct Checks<'a> {
    room: &'a mut dyn FnMut(u64) -> bool,
    each: &'a mut dyn FnMut(Entry),
}

impl Rustic {
    fn restore_to(
        &self,
        id: &str,
        path: &Path,
        dest: &Path,
        progress: Option<ProgressSender>,
        checks: Checks<'_>,
        afterwards: Afterwards,
    ) -> EngineResult<bool> {
        let repo = self.open_reporting(progress)?;
        let _lock = self.lock(false)?;
        let repo = repo.to_indexed().map_err(err)?;
        let node = repo
            .node_from_snapshot_path(&format!("{id}:{}", path.display()), |_| true)
            .map_err(err)?;
        let ls = repo.ls(&node, &LsOptions::default()).map_err(err)?;
        let size = ls
            .clone()
            .filter_map(Result::ok)
            .map(|(_, n)| n.meta.size)
            .sum();
        if !(checks.room)(size) {
            return Ok(false);
        }
        let p = repo.progress_bytes("restoring...");
        p.set_length(size);
        let be = self.backends()?.repository();
        let packs = restorer::Packs {
            key: key::master_bytes(&repo.key())?,
            dir: self.local_dir(),
            be: &*be,
        };
        restorer::restore(
            &repo,
            &packs,
            ls.clone(),
            dest,
            !node.is_dir(),
            afterwards,
            &p,
        )?;
        p.finish();
        let snap = repo.get_snapshot_from_str(id, |_| true).map_err(err)?;
        apply_root_metadata(snap.description.as_deref(), path, dest)?;
        // What the snapshot holds, entry by entry, read again from the index the
        // restore used: never held whole.
        (checks.each)(entry_of(&repo, PathBuf::new(), &node)?);
        if node.is_dir() {
            for item in ls {
                let (rel, n) = item.map_err(err)?;
                (checks.each)(entry_of(&repo, rel, &n)?);
            }
        }
        Ok(true)
    }
}

impl Engine for Rustic {
    fn ensure_initialized(&self) -> EngineResult<()> {
        let backends = self.backends()?;
        let repo = Repository::new(&RepositoryOptions::default(), &backends).map_err(err)?;
        if repo.config_id().map_err(err)?.is_some() {
            return Ok(());
        }
        // Data packs of 4 MiB growing with the repository up to restic's 16 MiB, not
        // rustic's 32 MiB: the packer holds one in memory, and rustic's own restorer
        // (still used for files without an mtime) reads 20 pack ranges at once.
        let config = ConfigOptions::default()
            .set_datapack_size(ByteSize::mib(4))
            .set_datapack_size_limit(ByteSize::mib(16));
        // The key file (key.rs) goes in before the config: an interrupted init leaves
        // no config without a key, and the next run initialises again.
        let master = MasterKey::new();
        let be = backends.repository();
        be.create().map_err(err)?;
        key::add(be.as_ref(), &master, &self.password()?)?;
        let repo = repo
            .init(
                &Credentials::Masterkey(master),
                &KeyOptions::default(),
                &config,
            )
            .map_err(err)?;
        self.remember_key(repo);
        Ok(())
    }

    fn backup(
        &self,
        paths: &[PathBuf],
        label: &str,
        host: &str,
        tags: &[String],
        excludes: &[String],
        progress: Option<ProgressSender>,
    ) -> EngineResult<Snapshot> {
        let source = Source {
            paths,
            label,
            host,
            tags,
            excludes,
        };
        // rustic_core's archiver on request, to compare the two in bench/ only.
        let ours = std::env::var_os("CLAN_BENCH_RUSTIC_CORE_ARCHIVER").is_none();
        self.backup_with(ours, &source, progress)
            .map(|s| to_snapshot(&s))
    }

    fn snapshots(&self) -> EngineResult<Vec<Snapshot>> {
        // A repository not made yet (no backup so far) holds no snapshots; a password
        // that cannot be read is an error all the same.
        self.credentials()?;
        let backends = self.backends()?;
        let fresh = Repository::new(&RepositoryOptions::default(), &backends).map_err(err)?;
        if fresh.config_id().map_err(err)?.is_none() {
            return Ok(Vec::new());
        }
        let mut snaps = self.open()?.get_all_snapshots().map_err(err)?;
        snaps.sort_by(|a, b| a.time.cmp(&b.time));
        Ok(snaps.iter().map(to_snapshot).collect())
    }

    fn restore(
        &self,
        id: &str,
        path: &Path,
        dest: &Path,
        progress: Option<ProgressSender>,
    ) -> EngineResult<()> {
        let checks = Checks {
            room: &mut |_| true,
            each: &mut |_| {},
        };
        self.restore_to(id, path, dest, progress, checks, Afterwards::Kept)
            .map(drop)
    }

    fn restore_checked(
        &self,
        id: &str,
        path: &Path,
        dest: &Path,
        progress: Option<ProgressSender>,
        room: &mut dyn FnMut(u64) -> bool,
        each: &mut dyn FnMut(Entry),
    ) -> EngineResult<bool> {
        let checks = Checks { room, each };
        self.restore_to(id, path, dest, progress, checks, Afterwards::Deleted)
    }

    fn hard_links(&self, id: &str, paths: &[PathBuf]) -> EngineResult<Vec<Vec<PathBuf>>> {
        let repo = self.open()?;
        let _lock = self.lock(false)?;
        let repo = repo.to_indexed_ids().map_err(err)?;
        // As rustic's restore groups links: by device and inode, for files with more
        // than one link recorded.
        let mut groups: std::collections::BTreeMap<(u64, u64), Vec<PathBuf>> = Default::default();
        for path in paths {
            let node = repo
                .node_from_snapshot_path(&format!("{id}:{}", path.display()), |_| true)
                .map_err(err)?;
            if !node.is_dir() {
                continue;
            }
            for item in repo.ls(&node, &LsOptions::default()).map_err(err)? {
                let (rel, n) = item.map_err(err)?;
                if !n.is_dir() && n.meta.links > 1 && n.meta.device_id != 0 {
                    groups
                        .entry((n.meta.device_id, n.meta.inode))
                        .or_default()
                        .push(path.join(rel));
                }
            }
        }
        Ok(groups.into_values().filter(|g| g.len() > 1).collect())
    }

    fn check(&self, read_data: bool) -> EngineResult<()> {
        let mut opts = CheckOptions::default();
        opts.read_data = read_data;
        // Findings come back as a list (also logged by rustic); any error-level one
        // fails the check, with every finding named.
        let repo = self.open()?;
        let _lock = self.lock(false)?;
        let results = repo.check(opts).map_err(err)?;
        if results.is_ok().is_ok() {
            return Ok(());
        }
        let findings: Vec<String> = results
            .0
            .iter()
            .map(|(level, e)| format!("{}: {e}", format!("{level:?}").to_lowercase()))
            .collect();
        Err(EngineError::Repository(format!(
            "the repository has errors:\n  {}",
            findings.join("\n  ")
        )))
    }

    fn forget(&self, host: &str, keep: &Keep) -> EngineResult<Vec<String>> {
        let repo = self.open()?;
        let lock = self.lock(true)?;
        let mut snaps = repo.get_all_snapshots().map_err(err)?;
        snaps.retain(|s| s.hostname == host);
        let newest = snaps.iter().max_by_key(|s| s.time.clone()).map(|s| s.id);
        let mut k = KeepOptions::default();
        if keep.last > 0 {
            k = k.keep_last(keep.last as i32);
        }
        if keep.daily > 0 {
            k = k.keep_daily(keep.daily as i32);
        }
        if keep.weekly > 0 {
            k = k.keep_weekly(keep.weekly as i32);
        }
        if keep.monthly > 0 {
            k = k.keep_monthly(keep.monthly as i32);
        }
        if keep.yearly > 0 {
            k = k.keep_yearly(keep.yearly as i32);
        }
        // Every clan snapshot has its own label: group by host only.
        let criterion = SnapshotGroupCriterion::new()
            .hostname(true)
            .label(false)
            .paths(false)
            .tags(false);
        // No retention rule (rustic refuses empty ones): nothing is forgotten, and the
        // prune below still reclaims what killed backups left.
        let ids: Vec<_> = if keep.is_empty() {
            Vec::new()
        } else {
            let grouped = Grouped::from_items(snaps.clone(), criterion);
            ForgetGroups::from_grouped_snapshots_with_retention(grouped, &k, &jiff::Zoned::now())
                .map_err(err)?
                .into_forget_ids()
                .into_iter()
                .filter(|id| Some(*id) != newest)
                .collect()
        };
        let labels = snaps
            .iter()
            .filter(|s| ids.contains(&s.id))
            .map(|s| s.label.clone())
            .collect();
        delete_and_prune(&repo, &ids, lock.is_some())?;
        Ok(labels)
    }

    fn forget_one(&self, id: &str) -> EngineResult<()> {
        let repo = self.open()?;
        let lock = self.lock(true)?;
        let snap = repo
            .get_all_snapshots()
            .map_err(err)?
            .into_iter()
            .find(|s| s.id.to_hex().as_str() == id)
            .ok_or_else(|| EngineError::Repository(format!("no snapshot {id}")))?;
        delete_and_prune(&repo, &[snap.id], lock.is_some())
    }
}

/// Deletes snapshots `ids`, then prunes. Also when there are none: packs a killed
/// backup left unindexed are removed (at once under our exclusive lock, `locked`;
/// else restic's 23 hours later).
fn delete_and_prune(
    repo: &Repository<rustic_core::OpenStatus>,
    ids: &[rustic_core::repofile::SnapshotId],
    locked: bool,
) -> EngineResult<()> {
    if !ids.is_empty() {
        repo.delete_snapshots(ids).map_err(err)?;
    }
    let mut prune = PruneOptions::default();
    prune.instant_delete = locked;
    let plan = repo.prune_plan(&prune).map_err(err)?;
    repo.prune(&prune, plan).map_err(err)?;
    Ok(())
}

/// A node as a manifest entry; a file's blobs with their lengths from the index.
fn entry_of<S: rustic_core::IndexedFull>(
    repo: &Repository<S>,
    rel: PathBuf,
    n: &rustic_core::repofile::Node,
) -> EngineResult<Entry> {
    use rustic_core::repofile::NodeType;
    // restic stores Go's file modes: permissions, then setuid, setgid and sticky
    // as bits 23, 22 and 20.
    let from_go = |m: u32| {
        (m & 0o777)
            | if m & (1 << 23) != 0 { 0o4000 } else { 0 }
            | if m & (1 << 22) != 0 { 0o2000 } else { 0 }
            | if m & (1 << 20) != 0 { 0o1000 } else { 0 }
    };
    let kind = match &n.node_type {
        NodeType::File => Kind::File,
        NodeType::Dir => Kind::Dir,
        NodeType::Symlink { .. } => Kind::Symlink(n.node_type.to_link().to_path_buf()),
        _ => Kind::Other,
    };
    let mut e = Entry::new(rel, kind);
    e.size = n.meta.size;
    e.mode = n.meta.mode.map(from_go);
    e.uid = n.meta.uid;
    e.gid = n.meta.gid;
    e.mtime = n
        .meta
        .mtime
        .map(|t| (t.as_second(), t.subsec_nanosecond().max(0) as u32));
    if !n.is_dir() && n.meta.links > 1 && n.meta.device_id != 0 {
        e.link_group = Some(format!("inode {}:{}", n.meta.device_id, n.meta.inode));
    }
    if let Some(content) = &n.content {
        let mut blobs = Vec::with_capacity(content.len());
        for id in content {
            let length = repo.get_index_entry(id).map_err(err)?.data_length();
            let bytes = unhex(id.to_hex().as_str()).expect("an id is 32 bytes");
            blobs.push((bytes, u64::from(length)));
        }
        e.content = Content::Blobs(blobs);
    }
    Ok(e)
}
