//! What the agent serves: one machine, from the configuration `clan machines update`
//! installed, or from a clan directory (`--machine NAME`: developers, tests, and a
//! machine that holds its own clan).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use clan_backup::BackupInfo;
use clan_core::services::MachineService;
use clan_core::{ClanDir, ResolvedMachine};

use crate::AgentError;
use crate::held::Held;
use crate::jobs::Jobs;
use crate::store::Store;
use crate::system::{UnitStatus, Volume};

/// Where the served machine's configuration comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The configuration `clan machines update` wrote (`/etc/clan/machine.json`).
    Installed(PathBuf),
    /// A machine of the clan in this directory, resolved here.
    Clan { dir: ClanDir, machine: String },
}

impl Source {
    /// When the configuration last changed: the installed file, or a clan's
    /// clan.nix and inventory.json (which the agent's own changes write).
    fn modified(&self) -> Option<std::time::SystemTime> {
        let mtime = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        match self {
            Source::Installed(path) => mtime(path),
            Source::Clan { dir, .. } => mtime(&dir.inventory_json()).max(mtime(&dir.clan_nix())),
        }
    }

    /// The clan this machine holds, where configuration changes go: the served
    /// clan directory, or for an installed machine /var/lib/clan/clan when it
    /// updates this machine here.
    pub fn held(&self, machine: &str, admin_key: &std::path::Path) -> Option<Held> {
        match self {
            Source::Clan { dir, machine } => Some(Held {
                dir: dir.clone(),
                machine: machine.clone(),
                admin_key: admin_key.to_path_buf(),
            }),
            Source::Installed(_) => Held::find(
                std::path::Path::new(clan_core::clan_dir::MACHINE_HELD_DIR),
                machine,
                admin_key,
            ),
        }
    }

    pub fn load(&self) -> Result<ResolvedMachine, AgentError> {
        match self {
            Source::Installed(path) => {
                let text = std::fs::read(path).map_err(|source| AgentError::Io {
                    context: format!(
                        "reading {} (run `clan machines update` for this machine first, or \
                         serve a machine of a clan with --machine NAME)",
                        path.display()
                    ),
                    source,
                })?;
                serde_json::from_slice(&text).map_err(|e| AgentError::Machine {
                    message: format!("{}: {e}", path.display()),
                })
            }
            Source::Clan { dir, machine } => {
                let fleet = clan_ops::Fleet::load_only(
                    dir.clone(),
                    std::slice::from_ref(machine),
                    &clan_core::event::Silent,
                )
                .map_err(|e| AgentError::Machine {
                    message: e.to_string(),
                })?;
                fleet
                    .machine(machine)
                    .cloned()
                    .map_err(|e| AgentError::Machine {
                        message: e.to_string(),
                    })
            }
        }
    }
}

/// How long measured sizes and listed backups are reused.
const SIZE_TTL: Duration = Duration::from_secs(60);
const SNAPSHOT_TTL: Duration = Duration::from_secs(60);
/// How long the list of volumes is reused (one `lsblk` for a whole request).
const VOLUMES_TTL: Duration = Duration::from_secs(5);
/// How long unit states are reused (one `systemctl show` for all units meanwhile).
const UNITS_TTL: Duration = Duration::from_secs(1);

/// The agent's state, shared by every request.
pub struct Agent {
    pub store: Arc<Store>,
    pub jobs: Arc<Jobs>,
    pub source: Source,
    /// The clan admin's age key the machine-held clan's vars and updates use
    /// (root's, `clan init --machine-held` makes it).
    admin_key: PathBuf,
    /// The machine, and the modification time of its file when installed.
    machine: RwLock<(Option<std::time::SystemTime>, Arc<ResolvedMachine>)>,
    sizes: Mutex<HashMap<String, (Instant, u64)>>,
    snapshots: Mutex<Option<(Instant, Arc<Vec<BackupInfo>>)>>,
    units: Mutex<Option<(Instant, HashMap<String, UnitStatus>)>>,
    volumes: Mutex<Option<(Instant, Arc<Vec<Volume>>)>>,
}

impl Agent {
    pub fn new(store: Arc<Store>, source: Source) -> Result<Arc<Self>, AgentError> {
        Self::with_admin_key(store, source, clan_vars::keys::admin_key_file())
    }

    /// [`Agent::new`] with another admin key than the user's.
    pub fn with_admin_key(
        store: Arc<Store>,
        source: Source,
        admin_key: PathBuf,
    ) -> Result<Arc<Self>, AgentError> {
        let machine = (source.modified(), Arc::new(source.load()?));
        Ok(Arc::new(Self {
            admin_key,
            jobs: Arc::new(Jobs::new(store.clone())),
            store,
            source,
            machine: RwLock::new(machine),
            sizes: Mutex::default(),
            snapshots: Mutex::default(),
            units: Mutex::default(),
            volumes: Mutex::default(),
        }))
    }

    /// The machine served. An installed configuration is read again when
    /// `clan machines update` changed it (a file that cannot be read then leaves the
    /// last one in use).
    pub fn machine(&self) -> Arc<ResolvedMachine> {
        let modified = self.source.modified();
        {
            let current = self.machine.read().expect("machine");
            if current.0 == modified {
                return current.1.clone();
            }
        }
        let mut current = self.machine.write().expect("machine");
        if current.0 != modified {
            match self.source.load() {
                Ok(m) => *current = (modified, Arc::new(m)),
                Err(e) => tracing::warn!("keeping the machine as it was: {e}"),
            }
            current.0 = modified;
        }
        current.1.clone()
    }

    /// The clan this machine holds, if it holds one (see [`Source::held`]).
    pub fn held(&self) -> Option<Held> {
        self.source
            .held(self.machine().name.as_str(), &self.admin_key)
    }

    pub fn service(&self, id: &str) -> Option<MachineService> {
        self.machine().services.iter().find(|s| s.id == id).cloned()
    }

    /// The machine's backups, run here.
    pub fn backups(&self) -> clan_runtime::backups::Backups {
        clan_runtime::backups::Backups {
            machine: clan_backup::Machine::from_resolved(&self.machine()),
            place: clan_runtime::backups::Place::Here,
        }
    }

    /// A service's status: its worst unit's (INACTIVE without units, as SelfPrivacy).
    /// All units of the machine are asked at once, at most once a second; callers
    /// meanwhile wait for that one answer.
    pub fn status(&self, units: &[String]) -> UnitStatus {
        if units.is_empty() {
            return UnitStatus::Inactive;
        }
        let mut cache = self.units.lock().expect("units");
        if cache
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= UNITS_TTL)
        {
            let mut all: Vec<String> = self
                .machine()
                .services
                .iter()
                .flat_map(|s| s.units.iter().cloned())
                .chain(units.iter().cloned())
                .collect();
            all.sort();
            all.dedup();
            let states = crate::system::statuses(&all);
            *cache = Some((Instant::now(), all.into_iter().zip(states).collect()));
        }
        let (_, states) = cache.as_ref().expect("filled");
        units
            .iter()
            .map(|u| states.get(u).copied().unwrap_or(UnitStatus::Off))
            .max()
            .unwrap_or(UnitStatus::Inactive)
    }

    /// Forgets unit states (after starting or stopping units).
    pub fn units_changed(&self) {
        *self.units.lock().expect("units") = None;
    }

    /// The machine's volumes, listed at most every few seconds (a request that shows
    /// every service's volume lists them once).
    pub fn volumes(&self) -> Arc<Vec<Volume>> {
        let mut cache = self.volumes.lock().expect("volumes");
        if let Some((at, list)) = &*cache
            && at.elapsed() < VOLUMES_TTL
        {
            return list.clone();
        }
        let list = Arc::new(crate::system::volumes());
        *cache = Some((Instant::now(), list.clone()));
        list
    }

    /// Bytes in a folder (regular files, links not followed), measured at most once
    /// a minute.
    pub fn folder_size(&self, folder: &str) -> u64 {
        if let Some((at, size)) = self.sizes.lock().expect("sizes").get(folder)
            && at.elapsed() < SIZE_TTL
        {
            return *size;
        }
        let size = crate::system::tree_size(std::path::Path::new(folder));
        self.sizes
            .lock()
            .expect("sizes")
            .insert(folder.to_string(), (Instant::now(), size));
        size
    }

    /// Every backup of every provider (a provider that cannot be read is left out
    /// and its error returned beside).
    pub fn snapshots(&self) -> (Arc<Vec<BackupInfo>>, Vec<String>) {
        if let Some((at, list)) = &*self.snapshots.lock().expect("snapshots")
            && at.elapsed() < SNAPSHOT_TTL
        {
            return (list.clone(), Vec::new());
        }
        let mut all = Vec::new();
        let mut errors = Vec::new();
        match self.backups().list(None, &clan_core::event::Silent) {
            Ok(per) => {
                for (provider, r) in per {
                    match r {
                        Ok(list) => all.extend(list),
                        Err(e) => errors.push(format!("{provider}: {e}")),
                    }
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
        let all = Arc::new(all);
        if errors.is_empty() {
            *self.snapshots.lock().expect("snapshots") = Some((Instant::now(), all.clone()));
        }
        (all, errors)
    }

    /// Forgets listed backups (after a backup, restore or forget of ours).
    pub fn snapshots_changed(&self) {
        *self.snapshots.lock().expect("snapshots") = None;
    }
}
