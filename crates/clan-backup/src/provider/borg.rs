//! The `borg` provider: BorgBackup through the `borg` program, one repository per
//! destination (local path or ssh). The passphrase is read by borg from the secret
//! file (BORG_PASSCOMMAND), never passed on a command line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clan_core::process::{Cmd, CommandError, View, shell_quote};

use super::{Listed, Provider, SnapshotRequest};
use crate::config::{BorgConfig, BorgDestination};
use crate::engine::Keep;
use crate::error::{BackupError, Result};
use crate::event::{Event, Reporter};
use crate::safe_fs::Dir;

pub struct Borg {
    name: String,
    owner: String,
    /// clan's staging directory: pinned host keys for ssh, the mount point for
    /// extraction.
    staging: PathBuf,
    config: BorgConfig,
    /// Each destination's archives of the owner once listed (a restore looks a
    /// backup up several times); create and prune forget them.
    listed: std::sync::Mutex<std::collections::BTreeMap<String, Vec<Listed>>>,
}

impl Borg {
    pub fn new(name: &str, config: &BorgConfig, owner: &str, staging: &Path) -> Self {
        Self {
            name: name.to_string(),
            owner: owner.to_string(),
            staging: staging.to_path_buf(),
            config: config.clone(),
            listed: Default::default(),
        }
    }

    fn borg(&self, dest: &BorgDestination) -> Cmd {
        let mut cmd = Cmd::new("borg")
            .env(
                "BORG_PASSCOMMAND",
                format!(
                    "cat {}",
                    shell_quote(&self.config.passphrase_file.to_string_lossy())
                ),
            )
            .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes")
            .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "no")
            .env("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "NO")
            .env("BORG_DELETE_I_KNOW_WHAT_I_AM_DOING", "NO")
            .env("TZ", "UTC");
        if let Some(rsh) = self.rsh(dest) {
            cmd = cmd.env("BORG_RSH", rsh);
        }
        cmd
    }

    /// The ssh command for an ssh destination. Options given in `rsh` come first,
    /// so ssh keeps them; then the server's pinned host key (in a known_hosts file
    /// of the staging directory's), or trust on first use when none is known.
    fn rsh(&self, dest: &BorgDestination) -> Option<String> {
        let rsh = dest.rsh.as_deref()?;
        let host = ssh_host(&dest.repo);
        match (&dest.host_key, host) {
            (Some(key), Some(host)) => {
                let file = self.staging.join(format!("borg-known-hosts-{}", self.name));
                let line = format!("{host} {}\n", key.trim());
                let written = std::fs::create_dir_all(&self.staging)
                    .and_then(|()| std::fs::write(&file, line));
                if written.is_err() {
                    return Some(format!("{rsh} -o StrictHostKeyChecking=yes"));
                }
                Some(format!(
                    "{rsh} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
                    shell_quote(&file.to_string_lossy())
                ))
            }
            _ => Some(format!("{rsh} -o StrictHostKeyChecking=accept-new")),
        }
    }

    /// Whether borg runs in a private view (see `View`): as root where mount
    /// namespaces can be made; elsewhere it reads and writes by path (as root, with
    /// a warning).
    fn private_view(&self, reporter: &dyn Reporter) -> bool {
        let available = clan_core::process::private_mounts_available();
        if !available && rustix::process::geteuid().is_root() {
            reporter.report(Event::Warning {
                message: "cannot make a mount namespace here (no CAP_SYS_ADMIN): borg reads and \
                          writes the folders by path, so a user who swaps a folder for a link \
                          while borg runs could redirect it"
                    .into(),
            });
        }
        available
    }

    /// Where borg's private view of the filesystem appears (in its own mount
    /// namespace only): an empty directory of root's.
    fn view_root(&self) -> Result<PathBuf> {
        let root = self.staging.join("borg-view");
        Dir::create_all(&root, 0o700)?;
        Ok(root)
    }

    /// Runs borg; exit code 1 (a warning, e.g. a file changed while read) counts as
    /// success and is reported.
    fn run(&self, dest_name: &str, cmd: Cmd, reporter: &dyn Reporter) -> Result<String> {
        match cmd.run() {
            Ok(out) => Ok(out.stdout_string()),
            Err(CommandError::Failed {
                code: 1,
                stdout,
                stderr,
                ..
            }) => {
                reporter.report(Event::Warning {
                    message: format!("borg ({dest_name}): {}", stderr.trim()),
                });
                Ok(stdout)
            }
            Err(source) => Err(BackupError::Provider {
                provider: self.name.clone(),
                message: format!("destination '{dest_name}': {source}"),
            }),
        }
    }

    /// Missing, or an empty directory (a server prepares one per client): borg
    /// init makes it a repository.
    fn ensure_repo(&self, dest_name: &str, dest: &BorgDestination) -> Result<()> {
        match self.borg(dest).args(["info", "--json", &dest.repo]).run() {
            Ok(_) => Ok(()),
            Err(CommandError::Failed {
                code: 2, stderr, ..
            }) if not_initialised(&stderr) => {
                self.run(
                    dest_name,
                    self.borg(dest)
                        .args(["init", "--encryption=repokey", &dest.repo]),
                    &crate::event::Silent,
                )?;
                Ok(())
            }
            Err(source) => Err(BackupError::Provider {
                provider: self.name.clone(),
                message: format!("destination '{dest_name}' ({}): {source}", dest.repo),
            }),
        }
    }

    fn list_dest(&self, dest_name: &str, dest: &BorgDestination) -> Result<Vec<Listed>> {
        if let Some(l) = self.listed.lock().expect("listed").get(dest_name) {
            return Ok(l.clone());
        }
        let out = self.run(
            dest_name,
            self.borg(dest).args([
                "list",
                "--format",
                "{name}{TAB}{start}{TAB}{comment}{NL}",
                &dest.repo,
            ]),
            &crate::event::Silent,
        )?;
        let own: Vec<Listed> = out
            .lines()
            .filter_map(|l| parse_list_line(dest_name, l))
            .filter(|a| self.is_own(dest_name, a))
            .map(|l| l.listed)
            .collect();
        self.listed
            .lock()
            .expect("listed")
            .insert(dest_name.to_string(), own.clone());
        Ok(own)
    }

    fn is_own(&self, dest_name: &str, a: &Archive) -> bool {
        match &a.machine {
            Some(m) => *m == self.owner,
            None => a
                .listed
                .name
                .strip_prefix(&format!("{dest_name}::{}-{}-", self.owner, self.name))
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit())),
        }
    }

    /// `dest::archive`, or a plain archive name (the first destination that has it).
    fn locate(&self, name: &str) -> Result<(String, BorgDestination, String)> {
        if let Some((d, archive)) = name.split_once("::")
            && let Some(dest) = self.config.destinations.get(d)
        {
            return Ok((d.to_string(), dest.clone(), archive.to_string()));
        }
        for (d, dest) in &self.config.destinations {
            if self
                .list_dest(d, dest)?
                .iter()
                .any(|l| l.name == format!("{d}::{name}"))
            {
                return Ok((d.clone(), dest.clone(), name.to_string()));
            }
        }
        Err(BackupError::NoSuchBackup {
            provider: self.name.clone(),
            name: name.to_string(),
            machine: self.owner.clone(),
        })
    }

    /// What archive `name` holds below `path`, from `borg list`; with each file's
    /// SHA-256 when `checksums` (borg then reads every chunk). Times are listed in
    /// microseconds, in UTC here.
    fn listing(&self, name: &str, path: &Path, checksums: bool) -> Result<crate::drill::Manifest> {
        let (d, destination, archive) = self.locate(name)?;
        let rel = path.strip_prefix("/").unwrap_or(path);
        let format = if checksums {
            "{size}{mtime}{sha256}"
        } else {
            "{size}{mtime}"
        };
        let out = self.run(
            &d,
            self.borg(&destination)
                .env("TZ", "UTC")
                .args(["list", "--json-lines", "--format", format])
                .arg(format!("{}::{archive}", destination.repo))
                .arg(rel),
            &crate::event::Silent,
        )?;
        let entries = borg_manifest(&out, rel).map_err(|m| BackupError::Provider {
            provider: self.name.clone(),
            message: format!("destination '{d}': {m}"),
        })?;
        if entries.is_empty() {
            return Err(BackupError::NotInBackup {
                name: name.to_string(),
                path: path.to_path_buf(),
            });
        }
        Ok(crate::drill::Manifest {
            entries,
            mtime_precision_nanos: 1000,
        })
    }

    /// The original size of everything archive `name` holds, as borg recorded it.
    fn archive_size(&self, name: &str) -> Result<u64> {
        let (d, destination, archive) = self.locate(name)?;
        let out = self.run(
            &d,
            self.borg(&destination)
                .args(["info", "--json"])
                .arg(format!("{}::{archive}", destination.repo)),
            &crate::event::Silent,
        )?;
        serde_json::from_str::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v["archives"][0]["stats"]["original_size"].as_u64())
            .ok_or_else(|| BackupError::Provider {
                provider: self.name.clone(),
                message: format!("destination '{d}': borg info did not give the archive's size"),
            })
    }
}

/// A listed archive and the machine that made it: from the comment, or, for
/// archives made before clan recorded it, from the name (`<machine>-<provider>-<time>`).
struct Archive {
    listed: Listed,
    machine: Option<String>,
}

fn parse_list_line(dest: &str, line: &str) -> Option<Archive> {
    let mut parts = line.splitn(3, '\t');
    let name = parts.next()?.to_string();
    // "Sun, 2026-11-22 03:40:39" (TZ=UTC) -> "2026-11-22T03:40:39Z"
    let time = parts
        .next()
        .and_then(|t| t.split_once(", "))
        .map(|(_, t)| format!("{}Z", t.replace(' ', "T")))
        .unwrap_or_default();
    let comment = parts.next().unwrap_or_default();
    let field = |key: &str| {
        comment
            .split(' ')
            .find_map(|w| w.strip_prefix(key))
            .map(str::to_string)
    };
    let states = field("states=")
        .map(|s| {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let machine = field("machine=");
    let missing = field("missing=")
        .map(|s| {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(super::decode)
                .collect()
        })
        .unwrap_or_default();
    Some(Archive {
        listed: Listed {
            name: format!("{dest}::{name}"),
            time,
            states,
            reason: field("reason="),
            size: None,
            missing,
        },
        machine,
    })
}

impl Provider for Borg {
    fn name(&self) -> &str {
        &self.name
    }

    fn create(&self, req: &SnapshotRequest, reporter: &dyn Reporter) -> Result<Listed> {
        self.listed.lock().expect("listed").clear();
        if self.config.destinations.is_empty() {
            return Err(BackupError::Provider {
                provider: self.name.clone(),
                message: "no destinations".into(),
            });
        }
        let mut size = 0;
        for (d, dest) in &self.config.destinations {
            reporter.report(Event::Step {
                provider: Some(self.name.clone()),
                step: format!("borg create ({d})"),
            });
            self.ensure_repo(d, dest)?;
            let mut comment = format!(
                "clan machine={} states={} reason={}",
                req.machine,
                req.states.join(","),
                req.reason
            );
            if !req.missing.is_empty() {
                let missing: Vec<String> = req.missing.iter().map(|m| super::encode(m)).collect();
                comment.push_str(&format!(" missing={}", missing.join(",")));
            }
            let mut cmd = self.borg(dest).args([
                "create",
                "--json",
                "--compression",
                "auto,zstd",
                "--comment",
                &comment,
            ]);
            // Borg's own patterns as given; clan's state patterns with clan's meaning
            // (no '/': a name at any depth; with '/': the absolute path).
            cmd = cmd.args(["--exclude-if-present", crate::scratch::MARKER]);
            for e in &self.config.exclude {
                cmd = cmd.args(["--exclude", e]);
            }
            for e in &req.excludes {
                let pattern = match e.strip_prefix('/') {
                    Some(abs) => format!("sh:{abs}"),
                    None if !e.contains('/') => format!("sh:**/{e}"),
                    None => format!("sh:{e}"),
                };
                cmd = cmd.args(["--exclude", &pattern]);
            }
            cmd = cmd.arg(format!("{}::{}", dest.repo, req.name));
            // As root, borg reads the folders clan opened (see `View`), by relative
            // paths that name the same archive items as the absolute ones.
            let mut opened = Vec::new();
            if self.private_view(reporter) {
                let mut dirs = Vec::new();
                for path in &req.paths {
                    let dir = Dir::open(path)?.ok_or_else(|| {
                        BackupError::Config(format!("{} disappeared", path.display()))
                    })?;
                    let place = path.strip_prefix("/").unwrap_or(path).to_path_buf();
                    dirs.push((dir.fd_path(), place.clone()));
                    cmd = cmd.arg(place);
                    opened.push(dir);
                }
                cmd = cmd.in_view(View {
                    root: self.view_root()?,
                    dirs,
                });
            } else {
                cmd = cmd.args(&req.paths);
            }
            let out = self.run(d, cmd, reporter)?;
            drop(opened);
            let stats: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            size += stats["archive"]["stats"]["deduplicated_size"]
                .as_u64()
                .unwrap_or(0);
        }
        Ok(Listed {
            name: req.name.clone(),
            time: req.time.clone(),
            states: req.states.clone(),
            reason: Some(req.reason.clone()),
            size: Some(size),
            missing: req
                .missing
                .iter()
                .map(|m| m.display().to_string())
                .collect(),
        })
    }

    fn list(&self) -> Result<Vec<Listed>> {
        let mut all = Vec::new();
        for (d, dest) in &self.config.destinations {
            match self.list_dest(d, dest) {
                Ok(l) => all.extend(l),
                Err(BackupError::Provider { message, .. }) if not_initialised(&message) => {}
                Err(e) => return Err(e),
            }
        }
        all.sort_by(|a, b| a.time.cmp(&b.time).then(a.name.cmp(&b.name)));
        Ok(all)
    }

    fn restore_path(
        &self,
        name: &str,
        path: &Path,
        dest: &Path,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let (d, destination, archive) = self.locate(name)?;
        let parent_path = dest.parent().unwrap_or(Path::new("/"));
        let parent = Dir::open_through(parent_path)?
            .ok_or_else(|| BackupError::Config(format!("{} disappeared", parent_path.display())))?;
        let base = dest.file_name().expect("a folder has a name");
        // Fresh, root's and 0700: nobody else can enter it while borg fills it.
        let work_name = OsString::from(format!(
            ".borg-extract-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let work = parent.create_sub(&work_name, 0o700)?;
        let rel: PathBuf = path.strip_prefix("/").unwrap_or(path).to_path_buf();
        let extract = self
            .borg(&destination)
            .args(["extract", "--sparse"])
            .arg(format!("{}::{archive}", destination.repo))
            .arg(&rel);
        // borg writes to absolute paths made from its working directory's name,
        // which passes through the state folder and its parents: their owners could
        // swap them for links while borg runs. As root, borg works in a private
        // mount of the directory at a path of root's own instead.
        let extract = if self.private_view(reporter) {
            extract.in_view(View {
                root: self.view_root()?,
                dirs: vec![(work.fd_path(), PathBuf::new())],
            })
        } else {
            extract.cwd(work.fd_path())
        };
        let moved = self.run(&d, extract, &crate::event::Silent).and_then(|_| {
            let from = Dir::open_through(&work.fd_path().join(rel.parent().unwrap_or(&rel)))?;
            let leaf = rel.file_name().unwrap_or_default();
            match from {
                Some(from) if from.open_sub(leaf).is_ok_and(|d| d.is_some()) => {
                    Ok(from.move_to(leaf, &parent, base)?)
                }
                _ => Err(BackupError::NotInBackup {
                    name: name.to_string(),
                    path: path.to_path_buf(),
                }),
            }
        });
        parent.remove(&work_name)?;
        moved
    }

    /// The checksums take borg as long as the extract (it reads every chunk
    /// again): listed by a second borg while the first extracts. The room is
    /// checked against the whole archive's size first (`borg info`: 0.7 s for
    /// 80,000 files, where a listing takes 5 s), against the folder's only when
    /// that does not fit or borg does not tell it.
    fn restore_checked(
        &self,
        name: &str,
        path: &Path,
        dest: &Path,
        reporter: &dyn Reporter,
        room: &(dyn Fn(u64) -> Result<()> + Sync),
        check: &mut crate::drill::Verifier,
    ) -> Result<bool> {
        if !self.archive_size(name).is_ok_and(|size| room(size).is_ok()) {
            room(self.listing(name, path, false)?.file_bytes())?;
        }
        let (manifest, restored) = std::thread::scope(|scope| {
            let listing = scope.spawn(|| self.listing(name, path, true));
            let restored = self.restore_path(name, path, dest, reporter);
            (listing.join().expect("borg list thread"), restored)
        });
        restored?;
        check.check_all(&manifest?);
        Ok(true)
    }

    /// From the archive's hard-link items (`h` mode, `source` naming the first
    /// path). borg shows undecodable bytes of names as `?`; such a group finds
    /// nothing, or files that the relink compares byte by byte first.
    fn link_groups(&self, name: &str, folders: &[PathBuf]) -> Result<Vec<Vec<PathBuf>>> {
        if folders.is_empty() {
            return Ok(Vec::new());
        }
        let (d, destination, archive) = self.locate(name)?;
        let out = self.run(
            &d,
            self.borg(&destination)
                .args(["list", "--json-lines"])
                .arg(format!("{}::{archive}", destination.repo))
                .args(folders.iter().map(|f| f.strip_prefix("/").unwrap_or(f))),
            &crate::event::Silent,
        )?;
        let mut groups: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
        for line in out.lines() {
            let Ok(item) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let (Some(mode), Some(path), Some(source)) = (
                item["mode"].as_str(),
                item["path"].as_str(),
                item["source"].as_str(),
            ) && mode.starts_with('h')
                && !source.is_empty()
            {
                groups
                    .entry(source.to_string())
                    .or_insert_with(|| vec![Path::new("/").join(source)])
                    .push(Path::new("/").join(path));
            }
        }
        Ok(groups.into_values().collect())
    }

    fn check(&self, read_data: bool) -> Result<String> {
        for (d, dest) in &self.config.destinations {
            let mut cmd = self.borg(dest).arg("check");
            if read_data {
                cmd = cmd.arg("--verify-data");
            }
            self.run(d, cmd.arg(&dest.repo), &crate::event::Silent)?;
        }
        Ok(format!(
            "{} repositories intact",
            self.config.destinations.len()
        ))
    }

    fn prune(&self, keep: &Keep) -> Result<Vec<String>> {
        self.listed.lock().expect("listed").clear();
        if keep.is_empty() {
            return Ok(Vec::new());
        }
        let before = self.list()?;
        for (d, dest) in self
            .config
            .destinations
            .iter()
            .filter(|(_, d)| !d.append_only)
        {
            // Only this machine's archives (its names start so; see create).
            let mut cmd = self.borg(dest).args([
                "prune",
                "--glob-archives",
                &format!("{}-{}-[0-9]*", self.owner, self.name),
            ]);
            for (flag, n) in [
                ("--keep-last", keep.last),
                ("--keep-daily", keep.daily),
                ("--keep-weekly", keep.weekly),
                ("--keep-monthly", keep.monthly),
                ("--keep-yearly", keep.yearly),
            ] {
                if n > 0 {
                    cmd = cmd.arg(format!("{flag}={n}"));
                }
            }
            self.run(d, cmd.arg(&dest.repo), &crate::event::Silent)?;
            self.run(
                d,
                self.borg(dest).arg("compact").arg(&dest.repo),
                &crate::event::Silent,
            )?;
        }
        self.listed.lock().expect("listed").clear();
        let after: Vec<String> = self.list()?.into_iter().map(|l| l.name).collect();
        Ok(before
            .into_iter()
            .map(|l| l.name)
            .filter(|n| !after.contains(n))
            .collect())
    }

    fn forget(&self, name: &str) -> Result<()> {
        let (d, dest, archive) = self.locate(name)?;
        if dest.append_only {
            return Err(BackupError::Provider {
                provider: self.name.clone(),
                message: format!(
                    "destination '{d}' takes only new archives from this machine (append-only): \
                     `clan backups prune` removes old ones from the admin's side"
                ),
            });
        }
        self.listed.lock().expect("listed").clear();
        let target = format!("{}::{archive}", dest.repo);
        self.run(
            &d,
            self.borg(&dest).args(["delete", &target]),
            &crate::event::Silent,
        )?;
        self.run(
            &d,
            self.borg(&dest).arg("compact").arg(&dest.repo),
            &crate::event::Silent,
        )?;
        Ok(())
    }
}

/// The host of an ssh repository as known_hosts names it: `host`, or `[host]:port`.
fn ssh_host(repo: &str) -> Option<String> {
    let rest = repo.strip_prefix("ssh://")?;
    let authority = rest.split('/').next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(match hostport.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            format!("[{h}]:{p}")
        }
        _ => hostport.to_string(),
    })
}

/// borg's words for a repository that was never initialised.
fn not_initialised(message: &str) -> bool {
    message.contains("does not exist") || message.contains("is not a valid repository")
}

/// Manifest entries of `borg list --json-lines` output for the folder `rel`
/// (relative to `/`). A hard link (`h`) gets the size and checksum of the file it
/// names, which shares its link group.
fn borg_manifest(out: &str, rel: &Path) -> std::result::Result<Vec<crate::drill::Entry>, String> {
    use crate::drill::{Content, Entry, Kind, unhex};
    let mut entries = Vec::new();
    let mut sources = std::collections::HashSet::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let item: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("borg list: {e}: {line}"))?;
        let text = |k: &str| item[k].as_str().unwrap_or_default();
        let Ok(path) = Path::new(text("path")).strip_prefix(rel) else {
            continue;
        };
        let mode = text("mode");
        let kind = match mode.chars().next() {
            Some('-') | Some('h') => Kind::File,
            Some('d') => Kind::Dir,
            Some('l') => Kind::Symlink(PathBuf::from(text("linktarget"))),
            _ => Kind::Other,
        };
        let mut e = Entry::new(path.to_path_buf(), kind);
        e.mode = mode_bits(mode);
        e.uid = item["uid"].as_u64().map(|u| u as u32);
        e.gid = item["gid"].as_u64().map(|g| g as u32);
        e.size = item["size"].as_u64().unwrap_or(0);
        e.mtime = jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S%.f", text("mtime"))
            .ok()
            .and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| {
                let t = z.timestamp();
                (t.as_second(), t.subsec_nanosecond().max(0) as u32)
            });
        if let Some(sum) = unhex(text("sha256")) {
            e.content = Content::Sha256(sum);
        }
        if mode.starts_with('h') && !text("source").is_empty() {
            let source = text("source").to_string();
            e.link_group = Some(source.clone());
            sources.insert(source);
        }
        entries.push(e);
    }
    // The first path of each link group, and what its links take from it.
    let mut firsts = std::collections::HashMap::new();
    for e in &mut entries {
        let full = rel.join(&e.path).display().to_string();
        if sources.contains(&full) {
            e.link_group = Some(full.clone());
            firsts.insert(full, (e.size, e.content.clone()));
        }
    }
    for e in &mut entries {
        if let Some(g) = &e.link_group
            && let Some((size, content)) = firsts.get(g)
            && e.content == Content::Unknown
        {
            e.size = *size;
            e.content = content.clone();
        }
    }
    Ok(entries)
}

/// `-rwsr-x--T` as `0o4750` with the sticky bit.
fn mode_bits(mode: &str) -> Option<u32> {
    let c: Vec<char> = mode.chars().collect();
    if c.len() != 10 {
        return None;
    }
    let mut bits = 0;
    for (i, ch) in c[1..].iter().enumerate() {
        let bit = 1 << (8 - i);
        let special = match i {
            2 => 0o4000,
            5 => 0o2000,
            8 => 0o1000,
            _ => 0,
        };
        match ch {
            'r' | 'w' | 'x' => bits |= bit,
            's' | 't' => bits |= bit | special,
            'S' | 'T' => bits |= special,
            _ => {}
        }
    }
    Some(bits)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_hosts_names_hosts_as_ssh_does() {
        assert_eq!(
            super::ssh_host("ssh://borg@nas/srv/b").as_deref(),
            Some("nas")
        );
        assert_eq!(
            super::ssh_host("ssh://borg@10.0.0.2:2222/srv/b").as_deref(),
            Some("[10.0.0.2]:2222")
        );
        assert_eq!(super::ssh_host("/local/path"), None);
    }

    #[test]
    fn list_lines_are_parsed() {
        let l = super::parse_list_line(
            "nas",
            "m-borg-x\tSun, 2026-11-22 03:40:39\tclan states=docs,app reason=explicit",
        )
        .unwrap();
        assert_eq!(l.machine, None);
        let l = l.listed;
        assert_eq!(l.name, "nas::m-borg-x");
        assert_eq!(l.time, "2026-11-22T03:40:39Z");
        assert_eq!(l.states, ["docs", "app"]);
        assert_eq!(l.reason.as_deref(), Some("explicit"));
    }

    #[test]
    fn borg_modes_become_bits() {
        assert_eq!(super::mode_bits("-rw-r--r--"), Some(0o644));
        assert_eq!(super::mode_bits("drwxr-x--T"), Some(0o1750));
        assert_eq!(super::mode_bits("-rwsr-S---"), Some(0o6740));
        assert_eq!(super::mode_bits("----------"), Some(0));
        assert_eq!(super::mode_bits("short"), None);
    }
}
