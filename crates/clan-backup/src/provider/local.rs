//! The `local` provider: snapshot directories on attached storage, rsnapshot style.
//! Each backup is `<directory>/<name>/tree/<absolute path>` plus `clan-backup.json`;
//! files unchanged since the previous snapshot are hard links to it. A backup is
//! written as `.incomplete-<name>` and renamed when complete, so a killed backup
//! leaves nothing half-made behind (the next run removes the leftover).

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Listed, Provider, SnapshotRequest};
use crate::config::LocalConfig;
use crate::engine::{Keep, retention};
use crate::error::{BackupError, Result, io};
use crate::event::{Event, Reporter};
use crate::tree;

const META: &str = "clan-backup.json";
/// SHA-256 of every file of the snapshot's tree (`HEX PATH\0`, paths relative to
/// `tree/`), recorded at backup, so that `check --read-data` finds bit rot and
/// tampering.
const SUMS: &str = "checksums";
const INCOMPLETE: &str = ".incomplete-";

pub struct Local {
    name: String,
    owner: String,
    config: LocalConfig,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    name: String,
    machine: String,
    time: String,
    states: Vec<String>,
    reason: String,
    size: u64,
    #[serde(default)]
    missing: Vec<String>,
}

impl Local {
    pub fn new(name: &str, config: &LocalConfig, owner: &str) -> Self {
        Self {
            name: name.to_string(),
            owner: owner.to_string(),
            config: config.clone(),
        }
    }

    fn fail(&self, message: String) -> BackupError {
        BackupError::Provider {
            provider: self.name.clone(),
            message,
        }
    }

    fn hook(&self, script: &Option<String>, what: &str) -> Result<()> {
        if let Some(script) = script {
            crate::hooks::run_script(
                &format!("{what} command of provider '{}'", self.name),
                script,
                &[],
                &crate::event::Silent,
            )?;
        }
        Ok(())
    }

    /// Runs `f` with the storage mounted (mount/unmount commands around it).
    fn mounted<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.hook(&self.config.mount_command, "mount")?;
        let result = f();
        let unmounted = self.hook(&self.config.unmount_command, "unmount");
        let value = result?;
        unmounted?;
        Ok(value)
    }

    fn read_all(&self) -> Result<Vec<Meta>> {
        let dir = &self.config.directory;
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut metas = Vec::new();
        for entry in fs::read_dir(dir).map_err(io(format!("reading {}", dir.display())))? {
            let entry = entry.map_err(io(format!("reading {}", dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(text) = fs::read_to_string(entry.path().join(META)) else {
                continue;
            };
            let meta: Meta = serde_json::from_str(&text)
                .map_err(|e| self.fail(format!("{}: {e}", entry.path().join(META).display())))?;
            if meta.machine == self.owner {
                metas.push(meta);
            }
        }
        metas.sort_by(|a, b| a.time.cmp(&b.time).then(a.name.cmp(&b.name)));
        Ok(metas)
    }

    /// The directory of this machine's snapshot `name`; refused for other names.
    fn snapshot(&self, name: &str) -> Result<PathBuf> {
        if name.starts_with('.')
            || name.contains('/')
            || !self.read_all()?.iter().any(|m| m.name == name)
        {
            return Err(BackupError::NoSuchBackup {
                provider: self.name.clone(),
                name: name.to_string(),
                machine: self.owner.clone(),
            });
        }
        Ok(self.config.directory.join(name))
    }

    fn remove(&self, names: &[String]) -> Result<()> {
        for n in names {
            let p = self.config.directory.join(n);
            tree::remove_any(&p).map_err(io(format!("removing {}", p.display())))?;
        }
        Ok(())
    }
}

fn listed(m: Meta) -> Listed {
    Listed {
        name: m.name,
        time: m.time,
        states: m.states,
        reason: Some(m.reason),
        size: Some(m.size),
        missing: m.missing,
    }
}

impl Provider for Local {
    fn name(&self) -> &str {
        &self.name
    }

    fn create(&self, req: &SnapshotRequest, reporter: &dyn Reporter) -> Result<Listed> {
        self.mounted(|| {
            let dir = &self.config.directory;
            fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
            for entry in fs::read_dir(dir)
                .map_err(io(format!("reading {}", dir.display())))?
                .flatten()
            {
                if entry.file_name().to_string_lossy().starts_with(INCOMPLETE) {
                    reporter.report(Event::Warning {
                        message: format!(
                            "removing an unfinished backup: {}",
                            entry.path().display()
                        ),
                    });
                    tree::remove_any(&entry.path())
                        .map_err(io(format!("removing {}", entry.path().display())))?;
                }
            }
            let exclude = tree::Exclude::new(&req.excludes)
                .map_err(|e| BackupError::Config(format!("exclude pattern: {e}")))?;
            let previous = self
                .read_all()?
                .pop()
                .map(|m| dir.join(m.name).join("tree"));
            let mut sums = tree::Sums::default();
            if let Some(prev) = &previous
                && let Ok(known) = read_sums(&prev.with_file_name(SUMS))
            {
                sums.previous = known
                    .into_iter()
                    .map(|(rel, s)| (prev.join(rel), s))
                    .collect();
            }
            let work = dir.join(format!("{INCOMPLETE}{}", req.name));
            // Private: the copies keep their modes, but the parents of the folders
            // inside the tree are made anew; nobody else may pass through them.
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&work)
                .map_err(io(format!("creating {}", work.display())))?;
            let mut size = 0;
            let mut links = tree::LinkMap::new();
            for path in &req.paths {
                let stats = tree::copy_tree(
                    path,
                    &tree::under(&work.join("tree"), path),
                    previous.as_ref().map(|p| tree::under(p, path)).as_deref(),
                    &exclude,
                    &mut links,
                    Some(&mut sums),
                )
                .map_err(io(format!("copying {}", path.display())))?;
                size += stats.bytes_copied;
            }
            let sums_path = work.join(SUMS);
            write_sums(&sums_path, &work.join("tree"), &sums.files)
                .map_err(io(format!("writing {}", sums_path.display())))?;
            let meta = Meta {
                name: req.name.clone(),
                machine: req.machine.clone(),
                time: req.time.clone(),
                states: req.states.clone(),
                reason: req.reason.clone(),
                size,
                missing: req
                    .missing
                    .iter()
                    .map(|m| m.display().to_string())
                    .collect(),
            };
            let meta_path = work.join(META);
            fs::write(
                &meta_path,
                serde_json::to_vec_pretty(&meta).expect("serialises"),
            )
            .map_err(io(format!("writing {}", meta_path.display())))?;
            let done = dir.join(&req.name);
            fs::rename(&work, &done).map_err(io(format!("completing {}", done.display())))?;
            let all: Vec<(String, String)> = self
                .read_all()?
                .into_iter()
                .map(|m| (m.name, m.time))
                .collect();
            self.remove(&retention::to_remove(
                &all,
                &Keep {
                    last: self.config.snapshots.max(1),
                    ..Keep::default()
                },
            ))?;
            Ok(listed(meta))
        })
    }

    fn list(&self) -> Result<Vec<Listed>> {
        self.mounted(|| Ok(self.read_all()?.into_iter().map(listed).collect()))
    }

    fn restore_path(
        &self,
        name: &str,
        path: &Path,
        dest: &Path,
        _reporter: &dyn Reporter,
    ) -> Result<()> {
        self.mounted(|| self.restore_here(name, path, dest))
    }

    /// Checked against the snapshot's own tree, with the checksums recorded at
    /// backup (so the drill also finds bit rot in the snapshot; files of snapshots
    /// made before clan recorded them are hashed now). The tree is walked twice
    /// and never held: once for the sizes and the files linked within the folder,
    /// after the restore for the entries.
    fn restore_checked(
        &self,
        name: &str,
        path: &Path,
        dest: &Path,
        _reporter: &dyn Reporter,
        room: &(dyn Fn(u64) -> Result<()> + Sync),
        check: &mut crate::drill::Verifier,
    ) -> Result<bool> {
        self.mounted(|| {
            let tree_dir = self.snapshot(name)?.join("tree");
            let src = tree::under(&tree_dir, path);
            if !src.is_dir() {
                return Err(BackupError::NotInBackup {
                    name: name.to_string(),
                    path: path.to_path_buf(),
                });
            }
            // Snapshots share unchanged files with older ones: only files that are
            // one within this tree were hard links at backup.
            let mut bytes = 0;
            let mut inodes: std::collections::HashMap<u64, u32> = Default::default();
            walk_tree(&src, &mut |_, meta| {
                use std::os::unix::fs::MetadataExt;
                if meta.is_file() {
                    bytes += meta.len();
                    if meta.nlink() > 1 {
                        *inodes.entry(meta.ino()).or_default() += 1;
                    }
                }
                Ok(())
            })?;
            // Held through the restore: only the few linked within the tree.
            inodes.retain(|_, n| *n > 1);
            inodes.shrink_to_fit();
            room(bytes)?;
            self.restore_here(name, path, dest)?;
            let sums = read_sum_keys(&tree_dir.with_file_name(SUMS)).unwrap_or_default();
            walk_tree(&src, &mut |rel, meta| {
                check.check(&entry_of(&tree_dir, &src, rel, meta, &sums, &inodes)?);
                Ok(())
            })?;
            Ok(true)
        })
    }

    /// Files of the snapshot that share an inode across `folders` (the backup copied
    /// all folders with one link map).
    fn link_groups(&self, name: &str, folders: &[PathBuf]) -> Result<Vec<Vec<PathBuf>>> {
        use std::os::unix::fs::MetadataExt;
        self.mounted(|| {
            let tree_dir = self.config.directory.join(name).join("tree");
            let mut groups: std::collections::BTreeMap<u64, Vec<PathBuf>> = Default::default();
            for folder in folders {
                let mut stack = vec![tree::under(&tree_dir, folder)];
                while let Some(d) = stack.pop() {
                    let Ok(entries) = fs::read_dir(&d) else {
                        continue;
                    };
                    for e in entries {
                        let e = e.map_err(io(format!("reading {}", d.display())))?;
                        let meta = e
                            .metadata()
                            .map_err(io(format!("reading {}", e.path().display())))?;
                        if meta.is_dir() {
                            stack.push(e.path());
                        } else if meta.nlink() > 1 {
                            let rel = e.path().strip_prefix(&tree_dir).map(Path::to_path_buf);
                            if let Ok(rel) = rel {
                                groups
                                    .entry(meta.ino())
                                    .or_default()
                                    .push(Path::new("/").join(rel));
                            }
                        }
                    }
                }
            }
            Ok(groups.into_values().filter(|g| g.len() > 1).collect())
        })
    }

    fn check(&self, read_data: bool) -> Result<String> {
        self.mounted(|| {
            let metas = self.read_all()?;
            let mut files = 0u64;
            for m in &metas {
                let t = self.config.directory.join(&m.name).join("tree");
                if !t.is_dir() {
                    return Err(self.fail(format!("backup '{}' has no tree", m.name)));
                }
                if read_data {
                    files +=
                        verify(&t).map_err(|e| self.fail(format!("backup '{}': {e}", m.name)))?;
                }
            }
            Ok(if read_data {
                format!("{} backups, {files} files read", metas.len())
            } else {
                format!("{} backups complete", metas.len())
            })
        })
    }

    fn prune(&self, keep: &Keep) -> Result<Vec<String>> {
        self.mounted(|| {
            let all: Vec<(String, String)> = self
                .read_all()?
                .into_iter()
                .map(|m| (m.name, m.time))
                .collect();
            let gone = retention::to_remove(&all, keep);
            self.remove(&gone)?;
            Ok(gone)
        })
    }

    fn forget(&self, name: &str) -> Result<()> {
        self.mounted(|| {
            if !self.read_all()?.iter().any(|m| m.name == name) {
                return Err(BackupError::NoSuchBackup {
                    provider: self.name.clone(),
                    name: name.to_string(),
                    machine: self.owner.clone(),
                });
            }
            self.remove(&[name.to_string()])
        })
    }
}

fn write_sums(
    path: &Path,
    root: &Path,
    files: &std::collections::HashMap<PathBuf, [u8; 32]>,
) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut lines: Vec<(&[u8], &[u8; 32])> = files
        .iter()
        .filter_map(|(p, s)| Some((p.strip_prefix(root).ok()?.as_os_str().as_bytes(), s)))
        .collect();
    lines.sort();
    let mut out = Vec::new();
    for (rel, sum) in lines {
        out.extend(sum.iter().flat_map(|b| format!("{b:02x}").into_bytes()));
        out.push(b' ');
        out.extend_from_slice(rel);
        out.push(0);
    }
    fs::write(path, out)
}

impl Local {
    /// Copies `path` of snapshot `name` to `dest` (the snapshot directory mounted).
    fn restore_here(&self, name: &str, path: &Path, dest: &Path) -> Result<()> {
        let snap = self.snapshot(name)?;
        let src = tree::under(&snap.join("tree"), path);
        if !src.is_dir() {
            return Err(BackupError::NotInBackup {
                name: name.to_string(),
                path: path.to_path_buf(),
            });
        }
        tree::copy_tree(
            &src,
            dest,
            None,
            &tree::Exclude::default(),
            &mut tree::LinkMap::new(),
            None,
        )
        .map_err(io(format!("restoring {}", path.display())))?;
        Ok(())
    }
}

/// Calls `each` with every entry below `src` (and `src` itself as the empty path),
/// links not followed.
fn walk_tree(src: &Path, each: &mut dyn FnMut(&Path, &fs::Metadata) -> Result<()>) -> Result<()> {
    let reading = |p: &Path| io(format!("reading {}", p.display()));
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let at = src.join(&rel);
        let meta = fs::symlink_metadata(&at).map_err(reading(&at))?;
        if meta.is_dir() {
            for e in fs::read_dir(&at).map_err(reading(&at))? {
                stack.push(rel.join(e.map_err(reading(&at))?.file_name()));
            }
        }
        each(&rel, &meta)?;
    }
    Ok(())
}

/// A checksum file's path as a key: 8 bytes instead of the path.
fn path_key(p: &Path) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(p)
}

/// The drill entry of `rel` below `src` in the snapshot tree `tree_dir`.
fn entry_of(
    tree_dir: &Path,
    src: &Path,
    rel: &Path,
    meta: &fs::Metadata,
    sums: &std::collections::HashMap<u64, [u8; 32]>,
    linked: &std::collections::HashMap<u64, u32>,
) -> Result<crate::drill::Entry> {
    use crate::drill::{Content, Entry, Kind};
    use std::os::unix::fs::MetadataExt;
    let at = src.join(rel);
    let reading = |p: &Path| io(format!("reading {}", p.display()));
    let kind = if meta.is_dir() {
        Kind::Dir
    } else if meta.file_type().is_symlink() {
        Kind::Symlink(fs::read_link(&at).map_err(reading(&at))?)
    } else if meta.is_file() {
        Kind::File
    } else {
        Kind::Other
    };
    let mut e = Entry::new(rel.to_path_buf(), kind);
    e.mode = Some(meta.mode() & 0o7777);
    e.uid = Some(meta.uid());
    e.gid = Some(meta.gid());
    e.mtime = Some((meta.mtime(), meta.mtime_nsec() as u32));
    if e.kind == Kind::File {
        e.size = meta.len();
        let in_tree = at.strip_prefix(tree_dir).unwrap_or(&at);
        let sum = match sums.get(&path_key(in_tree)) {
            Some(s) => *s,
            None => tree::hash_file(&at).map_err(reading(&at))?,
        };
        e.content = Content::Sha256(sum);
        if linked.contains_key(&meta.ino()) {
            e.link_group = Some(format!("inode {}", meta.ino()));
        }
    }
    Ok(e)
}

fn read_sums(path: &Path) -> std::io::Result<Vec<(PathBuf, [u8; 32])>> {
    let data = fs::read(path)?;
    data.split(|b| *b == 0)
        .filter(|l| !l.is_empty())
        .map(sum_line)
        .collect()
}

/// The checksums file read line by line into path keys (a drill of a large tree
/// holds 40 bytes a file).
fn read_sum_keys(path: &Path) -> std::io::Result<std::collections::HashMap<u64, [u8; 32]>> {
    use std::io::BufRead;
    let lines = std::io::BufReader::new(fs::File::open(path)?).split(0);
    let mut out = std::collections::HashMap::new();
    for line in lines {
        let line = line?;
        if !line.is_empty() {
            let (p, sum) = sum_line(&line)?;
            out.insert(path_key(&p), sum);
        }
    }
    Ok(out)
}

/// `<64 hex digits> <path>`.
fn sum_line(l: &[u8]) -> std::io::Result<(PathBuf, [u8; 32])> {
    use std::os::unix::ffi::OsStrExt;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "damaged checksums file");
    let (hex, rel) = (l.get(..64).ok_or_else(bad)?, l.get(65..).ok_or_else(bad)?);
    let mut sum = [0u8; 32];
    for (i, b) in sum.iter_mut().enumerate() {
        let pair = std::str::from_utf8(&hex[2 * i..2 * i + 2]).map_err(|_| bad())?;
        *b = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok((PathBuf::from(std::ffi::OsStr::from_bytes(rel)), sum))
}

/// Reads every file of a snapshot's tree and compares it with the checksums
/// recorded at backup (snapshots made before clan recorded them are only read).
fn verify(tree_dir: &Path) -> std::io::Result<u64> {
    let Ok(sums) = read_sums(&tree_dir.with_file_name(SUMS)) else {
        return read_every_file(tree_dir);
    };
    for (rel, sum) in &sums {
        let path = tree_dir.join(rel);
        if tree::hash_file(&path)? != *sum {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} does not match the checksum recorded at backup (bit rot or tampering)",
                    path.display()
                ),
            ));
        }
    }
    Ok(sums.len() as u64)
}

fn read_every_file(dir: &Path) -> std::io::Result<u64> {
    let mut n = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                std::io::copy(&mut fs::File::open(e.path())?, &mut std::io::sink())?;
                n += 1;
            }
        }
    }
    Ok(n)
}
