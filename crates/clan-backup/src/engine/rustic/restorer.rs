//! The engine's restore: contents, links, special files and metadata in one pass
//! over the snapshot's tree, as rustic_core's restore leaves them.
//!
//! rustic_core's restorer reads up to 20 pack ranges at once and queues their decoded
//! blobs while the disk writes: ~500 MiB on the 2 GB bench/ dataset, against the
//! restic CLI's ~140 MiB. Here each of a few workers writes one file at a time, one blob
//! at a time (uncached), so memory stays at one blob per worker. The worker then sets
//! the file's owner, mode, extended attributes and times on the descriptor it wrote
//! through; rustic_core's restore planned and set them in two more passes that
//! opened and stat'ed every file again by path (a quarter of a restore's time).
//!
//! Order, as rustic_core's: directories are created as the tree streams them (before
//! what is in them); files and special files get their metadata as they are written
//! or created; once every file is written, the other names of hard-linked files are
//! linked to the first; last, directories get theirs, deepest first (creating an
//! entry changes a directory's mtime). Metadata that cannot be set (owners, when not
//! run as root) is a warning, as in rustic_core; contents that cannot be written
//! fail the restore.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};

use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{
    DataId, FileType, Id, IndexedFull, Progress, ReadBackend, Repository, RusticResult,
};
use rustix::fs::{self as rfs, AtFlags, Timespec, Timestamps};

/// Measured on the bench/ dataset (2 cores) with the first version of this
/// writer: 1 worker 12.9 s, 2–3 about 10 s (60–75 MiB), 4 or more no faster and
/// more memory.
const WORKERS: usize = 3;

/// What becomes of the restored files.
#[derive(Clone, Copy)]
pub enum Afterwards {
    /// A restore keeps them, so each file of [`WRITE_BACK_FROM`] bytes or more is
    /// written out as soon as it is restored, while the next ones are: else the
    /// kernel keeps it in memory (for up to 30 s, or until the dirty pages reach
    /// 10% of memory) and the sync at the end of the restore writes it with the
    /// disk otherwise idle.
    Kept,
    /// A drill checks and deletes them: written out early, they would cost disk
    /// writes that deleting them first avoids (a drill took 13–16 s instead of 10).
    Deleted,
}

/// Measured on the bench/ data, restore with its sync: 8.7 → 7.3 s (medians of
/// 3); starting the writeback of every file slowed the small files' part. Where
/// the previous restore had just been deleted: 10.1 s with the workers starting
/// it, 9.5 s with a thread of its own (medians of 6; bench/README).
const WRITE_BACK_FROM: u64 = 16 << 20;

/// Restores the nodes in `nodes` (as `Repository::ls` streams them) below `dest`
/// (or into `dest` itself when the restored node is one file).
pub fn restore<S: IndexedFull + Sync>(
    repo: &Repository<S>,
    packs: &Packs<'_>,
    nodes: impl Iterator<Item = RusticResult<(PathBuf, Node)>>,
    dest: &Path,
    single_file: bool,
    afterwards: Afterwards,
    progress: &Progress,
) -> Result<(), String> {
    let target = |path: &Path| {
        if single_file {
            dest.to_path_buf()
        } else {
            dest.join(path)
        }
    };
    if !single_file {
        std::fs::create_dir_all(dest).map_err(|e| format!("creating {}: {e}", dest.display()))?;
    }
    let (tx, rx) = mpsc::sync_channel::<(PathBuf, Node)>(WORKERS * 4);
    let rx = Mutex::new(rx);
    let owners = Owners::default();
    let warnings = Warnings::default();
    // The first failure; after it, workers only drain the queue so the producer
    // never blocks, and the producer stops.
    let failed: Mutex<Option<String>> = Mutex::new(None);
    let fail = |e: String| {
        failed.lock().expect("failure").get_or_insert(e);
    };
    let has_failed = || failed.lock().expect("failure").is_some();
    // Directories in tree order, and the other names of hard-linked files with
    // the first one's path.
    let mut dirs = Vec::new();
    let mut links = Vec::new();
    std::thread::scope(|s| {
        // Large files go to a thread of their own to be written out: starting a
        // writeback waits while the disk's queue is full, and the workers need not.
        let write_out = match afterwards {
            Afterwards::Kept => {
                let (write_out, written) = mpsc::channel::<File>();
                s.spawn(move || {
                    for file in written {
                        // On Linux this starts the writeback of the file's dirty
                        // pages and does not wait for it. Advice only: a failure
                        // costs time.
                        let _ = rfs::fadvise(&file, 0, None, rfs::Advice::DontNeed);
                    }
                });
                Some(write_out)
            }
            Afterwards::Deleted => None,
        };
        let (rx, owners, warnings) = (&rx, &owners, &warnings);
        for _ in 0..WORKERS {
            let write_out = write_out.clone();
            s.spawn(move || {
                let mut blobs = Blobs::new(repo, packs);
                loop {
                    // The lock is held for the receive only, not while writing.
                    let job = rx.lock().expect("job queue").recv();
                    let Ok((path, node)) = job else {
                        return;
                    };
                    if has_failed() {
                        continue;
                    }
                    match write_file(&mut blobs, &node, &path) {
                        Ok(file) => {
                            set_metadata(At::Open(&file), &path, &node, owners, warnings);
                            progress.inc(node.meta.size);
                            let large = node.meta.size >= WRITE_BACK_FROM;
                            if let Some(write_out) = write_out.as_ref().filter(|_| large) {
                                let _ = write_out.send(file);
                            }
                        }
                        Err(e) => fail(format!("restoring {}: {e}", path.display())),
                    }
                }
            });
        }
        drop(write_out);
        let mut first_names: HashMap<(u64, u64), PathBuf> = HashMap::new();
        for item in nodes {
            if has_failed() {
                break;
            }
            // Ctrl-C: stop between files (the restore is then rolled back).
            if let Err(e) = crate::interrupt::check() {
                fail(e.to_string());
                break;
            }
            let (path, node) = match item {
                Ok((path, node)) => (target(&path), node),
                Err(e) => {
                    fail(super::err(e).to_string());
                    break;
                }
            };
            match node.node_type {
                NodeType::Dir => {
                    if let Err(e) = std::fs::create_dir_all(&path) {
                        fail(format!("creating {}: {e}", path.display()));
                    }
                    dirs.push((path, node));
                }
                NodeType::File => match hard_link_key(&node) {
                    Some(key) if first_names.contains_key(&key) => {
                        progress.inc(node.meta.size);
                        links.push((path, first_names[&key].clone()));
                    }
                    key => {
                        if let Some(key) = key {
                            first_names.insert(key, path.clone());
                        }
                        tx.send((path, node))
                            .expect("workers run until the queue closes");
                    }
                },
                _ => match create_special(&path, &node) {
                    Ok(()) => set_metadata(At::Path, &path, &node, owners, warnings),
                    Err(e) => warnings.add("creating special files", &path, e),
                },
            }
        }
        drop(tx);
    });
    if let Some(e) = failed.into_inner().expect("failure") {
        return Err(e);
    }
    for (path, first) in links {
        link(&first, &path)
            .map_err(|e| format!("linking {} to {}: {e}", path.display(), first.display()))?;
    }
    for (path, node) in dirs.iter().rev() {
        match open_dir(path) {
            Ok(dir) => set_metadata(At::Open(&dir), path, node, &owners, &warnings),
            Err(e) => warnings.add("opening directories", path, e),
        }
    }
    warnings.log();
    Ok(())
}

/// rustic_core's test for a file with other names: more than one link and the
/// device and inode recorded.
fn hard_link_key(node: &Node) -> Option<(u64, u64)> {
    let m = &node.meta;
    (m.links > 1 && m.device_id != 0 && m.inode != 0).then_some((m.device_id, m.inode))
}

/// Where the workers read blobs: the repository's own folder when it is local
/// (pack files are then read directly, each kept open while its blobs are read,
/// so the kernel reads ahead in it: the backend opens the file for every blob),
/// else the backend.
pub struct Packs<'a> {
    pub key: [u8; 64],
    pub dir: Option<PathBuf>,
    pub be: &'a dyn ReadBackend,
}

/// A worker's reader: decrypts in place and decompresses into a buffer of its
/// own, so a blob costs no allocation.
struct Blobs<'a, S> {
    repo: &'a Repository<S>,
    packs: &'a Packs<'a>,
    open: Option<(Id, File)>,
    raw: Vec<u8>,
    plain: Vec<u8>,
    zstd: zstd::bulk::Decompressor<'static>,
}

impl<'a, S: IndexedFull> Blobs<'a, S> {
    fn new(repo: &'a Repository<S>, packs: &'a Packs<'a>) -> Self {
        Self {
            repo,
            packs,
            open: None,
            raw: Vec::new(),
            plain: Vec::new(),
            zstd: zstd::bulk::Decompressor::new().expect("a zstd context"),
        }
    }

    /// The blob's plain text, until the next call.
    fn read(&mut self, id: &DataId) -> io::Result<&[u8]> {
        let other = |e| io::Error::other(super::err(e));
        let entry = self.repo.get_index_entry(id).map_err(other)?;
        let (pack, at) = (*entry.pack, entry.location);
        let in_pack =
            |what: String| io::Error::other(format!("pack {}: {what}", pack.to_hex().as_str()));
        match &self.packs.dir {
            Some(dir) => {
                if self.open.as_ref().is_none_or(|(open, _)| *open != pack) {
                    let hex = pack.to_hex();
                    let path = dir.join("data").join(&hex[..2]).join(hex.as_str());
                    let file = File::open(path).map_err(|e| in_pack(e.to_string()))?;
                    self.open = Some((pack, file));
                }
                let (_, file) = self.open.as_ref().expect("opened");
                self.raw.resize(at.length as usize, 0);
                file.read_exact_at(&mut self.raw, at.offset.into())
                    .map_err(|e| in_pack(e.to_string()))?;
            }
            None => {
                let data = self
                    .packs
                    .be
                    .read_partial(FileType::Pack, &pack, false, at.offset, at.length)
                    .map_err(other)?;
                self.raw.clear();
                self.raw.extend_from_slice(&data);
            }
        }
        let text = super::key::open_in_place(&self.packs.key, &mut self.raw)
            .ok_or_else(|| in_pack(format!("blob {id} failed its authentication (damaged)")))?;
        let Some(len) = at.uncompressed_length else {
            return Ok(text);
        };
        self.plain.clear();
        self.plain.reserve(len.get() as usize);
        self.zstd
            .decompress_to_buffer(text, &mut self.plain)
            .map_err(|e| in_pack(format!("blob {id}: {e}")))?;
        if self.plain.len() != len.get() as usize {
            return Err(in_pack(format!("blob {id} has the wrong length")));
        }
        Ok(&self.plain)
    }
}

/// Writes a file's contents and returns it open. A link in the way (in a
/// `--target` that is not empty) is replaced, not followed; a new file is only
/// its owner's until its mode is set.
fn write_file<S: IndexedFull>(
    blobs: &mut Blobs<'_, S>,
    node: &Node,
    path: &Path,
) -> io::Result<File> {
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(rfs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
    };
    let file = match create() {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            std::fs::remove_file(path)?;
            create()?
        }
        other => other?,
    };
    let (mut pos, mut zero_end) = (0, false);
    for id in node.content.iter().flatten() {
        let data = blobs.read(id)?;
        crate::tree::write_sparse_at(&file, data, pos)?;
        pos += data.len() as u64;
        zero_end = data.last() == Some(&0);
    }
    // A file whose last block was zeros (left a hole) has not reached its size.
    if zero_end {
        file.set_len(pos)?;
    }
    Ok(file)
}

fn open_dir(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rfs::OFlags::DIRECTORY | rfs::OFlags::NOFOLLOW).bits() as i32)
        .open(path)
}

/// Links `path` to `first`, replacing what is there.
fn link(first: &Path, path: &Path) -> io::Result<()> {
    match std::fs::hard_link(first, path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            std::fs::hard_link(first, path)
        }
        other => other,
    }
}

fn create_special(path: &Path, node: &Node) -> io::Result<()> {
    let node_at = |kind, device| {
        rfs::mknodat(rfs::CWD, path, kind, rfs::Mode::empty(), device).map_err(io::Error::from)
    };
    match node.node_type {
        NodeType::Symlink { .. } => std::os::unix::fs::symlink(node.node_type.to_link(), path),
        NodeType::Dev { device } => node_at(rfs::FileType::BlockDevice, device),
        NodeType::Chardev { device } => node_at(rfs::FileType::CharacterDevice, device),
        NodeType::Fifo => node_at(rfs::FileType::Fifo, 0),
        NodeType::Socket => node_at(rfs::FileType::Socket, 0),
        NodeType::File | NodeType::Dir => Ok(()),
    }
}

/// Where metadata is set: through an open file or directory, or by path without
/// following the last component (special files and links, which cannot be
/// opened for it).
#[derive(Clone, Copy)]
enum At<'a> {
    Open(&'a File),
    Path,
}

/// rustic_core's order: owner (which clears set-id bits), mode, extended
/// attributes (an access ACL sets the group bits again), times.
fn set_metadata(at: At<'_>, path: &Path, node: &Node, owners: &Owners, warnings: &Warnings) {
    let m = &node.meta;
    let (uid, gid) = owners.ids(m);
    let owned = match at {
        At::Open(f) => rfs::fchown(f, uid, gid),
        At::Path => rfs::chownat(rfs::CWD, path, uid, gid, AtFlags::SYMLINK_NOFOLLOW),
    };
    if let Err(e) = owned {
        warnings.add("setting owners", path, e.into());
    }
    if let (Some(mode), false) = (m.mode, node.is_symlink()) {
        let mode = rfs::Mode::from_raw_mode(mode_from_go(mode));
        let set = match at {
            At::Open(f) => rfs::fchmod(f, mode),
            At::Path => rfs::chmod(path, mode),
        };
        if let Err(e) = set {
            warnings.add("setting modes", path, e.into());
        }
    }
    if let Err(e) = set_xattrs(at, path, m) {
        warnings.add("setting extended attributes", path, e);
    }
    if let Some(mtime) = m.mtime {
        let ts = |t: jiff::Timestamp| Timespec {
            tv_sec: t.as_second(),
            tv_nsec: t.subsec_nanosecond().into(),
        };
        let times = Timestamps {
            last_access: ts(m.atime.unwrap_or(mtime)),
            last_modification: ts(mtime),
        };
        let set = match at {
            At::Open(f) => rfs::futimens(f, &times),
            At::Path => rfs::utimensat(rfs::CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW),
        };
        if let Err(e) = set {
            warnings.add("setting times", path, e.into());
        }
    }
}

/// Leaves exactly the recorded extended attributes (a new file may have inherited
/// a default ACL or a security label).
fn set_xattrs(at: At<'_>, path: &Path, m: &Metadata) -> io::Result<()> {
    use xattr::FileExt;
    let wanted = &m.extended_attributes;
    let present: Vec<_> = match at {
        At::Open(f) => f.list_xattr()?.collect(),
        At::Path => xattr::list(path)?.collect(),
    };
    for name in present {
        if !wanted.iter().any(|a| OsStr::new(&a.name) == name) {
            match at {
                At::Open(f) => f.remove_xattr(&name)?,
                At::Path => xattr::remove(path, &name)?,
            }
        }
    }
    for a in wanted {
        let value = a.value.as_deref().unwrap_or_default();
        match at {
            At::Open(f) => f.set_xattr(&a.name, value)?,
            At::Path => xattr::set(path, &a.name, value)?,
        }
    }
    Ok(())
}

/// Go's `fs.FileMode` (as restic stores it) as POSIX permission and set-id bits.
fn mode_from_go(mode: u32) -> u32 {
    let flag = |go: u32, bit: u32| if mode & go != 0 { bit } else { 0 };
    (mode & 0o777) | flag(1 << 23, 0o4000) | flag(1 << 22, 0o2000) | flag(1 << 20, 0o1000)
}

/// Owners by name where this system knows the name (as rustic_core restores
/// them), else by the recorded id; names looked up once each.
#[derive(Default)]
struct Owners {
    users: Mutex<HashMap<String, Option<u32>>>,
    groups: Mutex<HashMap<String, Option<u32>>>,
}

impl Owners {
    fn ids(&self, m: &Metadata) -> (Option<rfs::Uid>, Option<rfs::Gid>) {
        let user = m.user.as_ref().and_then(|name| {
            *self
                .users
                .lock()
                .expect("users")
                .entry(name.clone())
                .or_insert_with(|| {
                    nix::unistd::User::from_name(name)
                        .ok()
                        .flatten()
                        .map(|u| u.uid.as_raw())
                })
        });
        let group = m.group.as_ref().and_then(|name| {
            *self
                .groups
                .lock()
                .expect("groups")
                .entry(name.clone())
                .or_insert_with(|| {
                    nix::unistd::Group::from_name(name)
                        .ok()
                        .flatten()
                        .map(|g| g.gid.as_raw())
                })
        });
        (
            user.or(m.uid).map(rfs::Uid::from_raw),
            group.or(m.gid).map(rfs::Gid::from_raw),
        )
    }
}

/// Metadata that could not be set, by what failed: one warning each, with a
/// count, instead of one per file (a restore without root fails every owner).
#[derive(Default)]
struct Warnings(Mutex<BTreeMap<&'static str, (u64, String)>>);

impl Warnings {
    fn add(&self, what: &'static str, path: &Path, e: io::Error) {
        let mut all = self.0.lock().expect("warnings");
        let (n, _) = all
            .entry(what)
            .or_insert_with(|| (0, format!("{}: {e}", path.display())));
        *n += 1;
    }

    fn log(self) {
        for (what, (n, first)) in self.0.into_inner().expect("warnings") {
            match n {
                1 => tracing::warn!("restore: {what} failed: {first}"),
                n => tracing::warn!("restore: {what} failed for {n} entries, first {first}"),
            }
        }
    }
}
