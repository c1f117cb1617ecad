//! What a backup says a folder held (a manifest), and the check of a restored copy
//! against it: every entry there with its kind, size, mode, owner, mtime, link
//! target and content; hard links still one file; nothing more.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(PathBuf),
    /// Devices, FIFOs, sockets: checked for presence and kind only.
    Other,
}

/// How a file's content is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Not known (not a file, or the provider does not say).
    Unknown,
    Sha256([u8; 32]),
    /// The restic format: the file is these blobs in order, each the SHA-256 of
    /// its plaintext, with its length.
    Blobs(Vec<([u8; 32], u64)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the folder; empty for the folder itself.
    pub path: PathBuf,
    pub kind: Kind,
    pub size: u64,
    /// Permission bits with setuid, setgid and sticky (`0o7777`).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Seconds and nanoseconds since the epoch.
    pub mtime: Option<(i64, u32)>,
    /// Entries with the same key were one file (hard links).
    pub link_group: Option<String>,
    pub content: Content,
}

impl Entry {
    pub fn new(path: PathBuf, kind: Kind) -> Self {
        Self {
            path,
            kind,
            size: 0,
            mode: None,
            uid: None,
            gid: None,
            mtime: None,
            link_group: None,
            content: Content::Unknown,
        }
    }
}

/// A manifest's entries with the precision of its mtimes (borg lists
/// microseconds).
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub entries: Vec<Entry>,
    pub mtime_precision_nanos: u32,
}

impl Manifest {
    /// The size of its files: what restoring it writes.
    pub fn file_bytes(&self) -> u64 {
        let files = self.entries.iter().filter(|e| e.kind == Kind::File);
        files.map(|e| e.size).sum()
    }
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    pub files: u64,
    pub bytes: u64,
    pub mismatches: Vec<String>,
}

/// How many mismatches are kept: the first ones tell what is wrong.
pub const MAX_MISMATCHES: usize = 20;

impl Verified {
    fn mismatch(&mut self, message: String) {
        if self.mismatches.len() < MAX_MISMATCHES {
            self.mismatches.push(message);
        }
    }
}

/// Compares the restored copy at `restored` with `manifest`; `shown` is the folder
/// as messages name it (the live path).
pub fn verify(restored: &Path, manifest: &Manifest, shown: &Path) -> Verified {
    let mut v = Verifier::new(restored, shown);
    v.check_all(manifest);
    v.finish()
}

/// Checks a restored copy entry by entry as a backup lists them, holding only a
/// hash of each path seen (a large tree's listing is never held whole), then names
/// what the copy has beyond them. Owners are compared when running as root
/// (nobody else can restore them).
pub struct Verifier {
    restored: PathBuf,
    shown: PathBuf,
    /// Contents are hashed by workers (one per core), while the entries after
    /// them are checked; their mismatches are named by `finish`. Files go to
    /// them in batches (one hand-off per file cost a context switch each).
    contents: Option<std::sync::mpsc::SyncSender<Vec<HashJob>>>,
    batch: Vec<HashJob>,
    batch_bytes: u64,
    hashers: Vec<std::thread::JoinHandle<Vec<(String, String)>>>,
    /// borg lists microseconds.
    pub mtime_precision_nanos: u32,
    root: bool,
    seen: HashSet<u64>,
    /// Hard links: the inodes each link group was restored as.
    inodes: HashMap<String, BTreeMap<(u64, u64), Vec<PathBuf>>>,
    v: Verified,
}

impl Verifier {
    pub fn new(restored: &Path, shown: &Path) -> Self {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<HashJob>>(8);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let hashers = (0..workers)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    let mut found = Vec::new();
                    loop {
                        let jobs = rx.lock().expect("content queue").recv();
                        let Ok(jobs) = jobs else {
                            return found;
                        };
                        for (at, content, name) in jobs {
                            if let Err(why) = same_content(&at, &content) {
                                found.push((name.clone(), format!("{name}: {why}")));
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            restored: restored.to_path_buf(),
            shown: shown.to_path_buf(),
            contents: Some(tx),
            batch: Vec::new(),
            batch_bytes: 0,
            hashers,
            mtime_precision_nanos: 1,
            root: rustix::process::geteuid().is_root(),
            seen: HashSet::new(),
            inodes: HashMap::new(),
            v: Verified::default(),
        }
    }

    fn name(&self, rel: &Path) -> String {
        if rel.as_os_str().is_empty() {
            self.shown.display().to_string()
        } else {
            self.shown.join(rel).display().to_string()
        }
    }

    /// The restored path of `rel`: borg lists names that are not UTF-8 with `?` for
    /// each undecodable byte, found by looking through the parent directory.
    /// With its metadata, when it is there.
    fn locate(&self, rel: &Path) -> (PathBuf, Option<std::fs::Metadata>) {
        let meta = std::fs::symlink_metadata(self.restored.join(rel)).ok();
        if meta.is_some() || !rel.to_string_lossy().contains('?') {
            return (rel.to_path_buf(), meta);
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        let found = std::fs::read_dir(self.restored.join(parent))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| parent.join(e.file_name()))
            .find(|k| question_marks(k) == rel)
            .unwrap_or_else(|| rel.to_path_buf());
        let meta = std::fs::symlink_metadata(self.restored.join(&found)).ok();
        (found, meta)
    }

    /// Checks every entry of `manifest`, at its mtime precision.
    pub fn check_all(&mut self, manifest: &Manifest) {
        self.mtime_precision_nanos = manifest.mtime_precision_nanos;
        for e in &manifest.entries {
            self.check(e);
        }
    }

    /// Checks one entry of the backup against the restored copy.
    pub fn check(&mut self, e: &Entry) {
        let (key, meta) = self.locate(&e.path);
        let at = self.restored.join(&key);
        let Some(meta) = meta else {
            let m = format!("{}: missing from the restored copy", self.name(&e.path));
            self.v.mismatch(m);
            return;
        };
        // A path listed twice counts once; what is restored beyond them is named by `finish`.
        if !self.seen.insert(path_hash(&key)) {
            return;
        }
        for m in self.differences(e, &at, &meta) {
            self.v.mismatch(m);
        }
    }

    fn differences(&mut self, e: &Entry, at: &Path, meta: &std::fs::Metadata) -> Vec<String> {
        let name = self.name(&e.path);
        let kind_ok = match &e.kind {
            Kind::File => meta.is_file(),
            Kind::Dir => meta.is_dir(),
            Kind::Symlink(target) => {
                meta.file_type().is_symlink() && std::fs::read_link(at).is_ok_and(|t| &t == target)
            }
            Kind::Other => !meta.is_file() && !meta.is_dir() && !meta.file_type().is_symlink(),
        };
        if !kind_ok {
            return vec![format!(
                "{name}: restored as {}, backed up as {}",
                describe(meta, at),
                describe_kind(&e.kind)
            )];
        }
        let mut out = Vec::new();
        if let Some(mode) = e.mode
            && !matches!(e.kind, Kind::Symlink(_))
            && meta.mode() & 0o7777 != mode
        {
            out.push(format!(
                "{name}: mode {:o}, backed up as {mode:o}",
                meta.mode() & 0o7777
            ));
        }
        if self.root {
            for (what, got, want) in [("owner", meta.uid(), e.uid), ("group", meta.gid(), e.gid)] {
                if let Some(want) = want
                    && got != want
                {
                    out.push(format!("{name}: {what} {got}, backed up as {want}"));
                }
            }
        }
        // Within the listing's precision: borg lists microseconds, from a float
        // (rounded, and off by up to a quarter of one at today's times).
        let nanos = |s: i64, ns: i64| i128::from(s) * 1_000_000_000 + i128::from(ns);
        if let Some((s, ns)) = e.mtime
            && !matches!(e.kind, Kind::Symlink(_))
            && (nanos(meta.mtime(), meta.mtime_nsec()) - nanos(s, ns.into())).abs()
                >= i128::from(self.mtime_precision_nanos).max(1)
        {
            out.push(format!(
                "{name}: modified {}.{:09}, backed up as {s}.{ns:09}",
                meta.mtime(),
                meta.mtime_nsec()
            ));
        }
        if let Some(group) = &e.link_group {
            self.inodes
                .entry(group.clone())
                .or_default()
                .entry((meta.dev(), meta.ino()))
                .or_default()
                .push(e.path.clone());
        }
        if e.kind != Kind::File {
            return out;
        }
        self.v.files += 1;
        if meta.len() != e.size {
            out.push(format!(
                "{name}: {} bytes, backed up with {}",
                meta.len(),
                e.size
            ));
            return out;
        }
        self.v.bytes += e.size;
        self.batch.push((at.to_path_buf(), e.content.clone(), name));
        self.batch_bytes += e.size;
        if self.batch.len() >= BATCH_FILES || self.batch_bytes >= BATCH_BYTES {
            self.send_batch();
        }
        out
    }

    fn send_batch(&mut self) {
        self.batch_bytes = 0;
        let batch = std::mem::take(&mut self.batch);
        if batch.is_empty() {
            return;
        }
        self.contents
            .as_ref()
            .expect("checking until finish")
            .send(batch)
            .expect("content workers run until finish");
    }

    /// Hard links restored apart, and what the restored copy holds beyond the
    /// entries checked.
    pub fn finish(mut self) -> Verified {
        self.send_batch();
        drop(self.contents.take());
        // While the workers hash the last files.
        let mut extra: Vec<PathBuf> = Vec::new();
        walk(&self.restored, |rel| {
            if !self.seen.contains(&path_hash(rel)) {
                extra.push(rel.to_path_buf());
            }
        });
        let mut contents: Vec<(String, String)> = std::mem::take(&mut self.hashers)
            .into_iter()
            .flat_map(|h| h.join().expect("a content worker"))
            .collect();
        contents.sort();
        for (_, m) in contents {
            self.v.mismatch(m);
        }
        let groups = std::mem::take(&mut self.inodes);
        for (group, by_inode) in groups {
            if by_inode.len() > 1 {
                let paths: Vec<String> =
                    by_inode.values().flatten().map(|p| self.name(p)).collect();
                self.v.mismatch(format!(
                    "{}: one file in the backup ({group}), separate files in the restored copy",
                    paths.join(", ")
                ));
            }
        }
        extra.sort();
        for rel in extra {
            let m = format!(
                "{}: in the restored copy, not in the backup",
                self.name(&rel)
            );
            self.v.mismatch(m);
        }
        self.v
    }
}

/// A path's 64-bit hash: what a [`Verifier`] keeps of each entry.
fn path_hash(rel: &Path) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(rel)
}

/// `path` with each byte that is not UTF-8 as `?`.
fn question_marks(path: &Path) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(std::iter::repeat_n('?', chunk.invalid().len()));
    }
    PathBuf::from(out)
}

fn describe_kind(k: &Kind) -> String {
    match k {
        Kind::File => "a file".into(),
        Kind::Dir => "a directory".into(),
        Kind::Symlink(t) => format!("a link to {}", t.display()),
        Kind::Other => "a special file".into(),
    }
}

fn describe(meta: &std::fs::Metadata, at: &Path) -> String {
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(at).unwrap_or_default();
        describe_kind(&Kind::Symlink(target))
    } else if meta.is_dir() {
        describe_kind(&Kind::Dir)
    } else if meta.is_file() {
        describe_kind(&Kind::File)
    } else {
        describe_kind(&Kind::Other)
    }
}

/// Calls `each` with every entry below `root` (and `root` itself as the empty
/// path), links not followed, depth first: only the directories still to read are held.
fn walk(root: &Path, mut each: impl FnMut(&Path)) {
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(root.join(&rel)) else {
            continue;
        };
        if meta.is_dir()
            && let Ok(read) = std::fs::read_dir(root.join(&rel))
        {
            stack.extend(read.flatten().map(|e| rel.join(e.file_name())));
        }
        each(&rel);
    }
}

/// A restored file, what it must hold, and its name in messages.
type HashJob = (PathBuf, Content, String);

/// A batch of files for the content workers: this many, or this many bytes.
const BATCH_FILES: usize = 64;
const BATCH_BYTES: u64 = 8 << 20;

/// Read size of a content worker (one buffer each).
const BUF: usize = 256 << 10;

/// Whether the file at `path` has `content`; why not otherwise.
fn same_content(path: &Path, content: &Content) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    match content {
        Content::Unknown => Ok(()),
        Content::Sha256(want) => {
            let mut h = Sha256::new();
            std::io::copy(&mut file, &mut h).map_err(|e| format!("cannot read it: {e}"))?;
            if h.finalize().as_slice() == want {
                Ok(())
            } else {
                Err("content differs from the backup (SHA-256)".into())
            }
        }
        Content::Blobs(blobs) => {
            let mut buf = vec![0u8; BUF];
            for (i, (id, len)) in blobs.iter().enumerate() {
                let mut h = Sha256::new();
                let mut left = *len;
                while left > 0 {
                    let n = left.min(BUF as u64) as usize;
                    file.read_exact(&mut buf[..n]).map_err(|e| {
                        format!("cannot read blob {} of {}: {e}", i + 1, blobs.len())
                    })?;
                    h.update(&buf[..n]);
                    left -= n as u64;
                }
                if h.finalize().as_slice() != id {
                    return Err(format!(
                        "content differs from the backup (blob {} of {}, {})",
                        i + 1,
                        blobs.len(),
                        hex(id)
                    ));
                }
            }
            Ok(())
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 32 bytes of a 64-digit hex string.
pub fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn manifest_of(dir: &Path) -> Manifest {
        let mut paths = Vec::new();
        walk(dir, |rel| paths.push(rel.to_path_buf()));
        let mut entries = Vec::new();
        for rel in paths {
            let meta = std::fs::symlink_metadata(dir.join(&rel)).unwrap();
            let kind = if meta.is_dir() {
                Kind::Dir
            } else if meta.file_type().is_symlink() {
                Kind::Symlink(std::fs::read_link(dir.join(&rel)).unwrap())
            } else {
                Kind::File
            };
            let mut e = Entry::new(rel.clone(), kind.clone());
            e.mode = Some(meta.mode() & 0o7777);
            e.mtime = Some((meta.mtime(), meta.mtime_nsec() as u32));
            if kind == Kind::File {
                e.size = meta.len();
                let sum = Sha256::digest(std::fs::read(dir.join(&rel)).unwrap());
                e.content = Content::Sha256(sum.into());
            }
            entries.push(e);
        }
        Manifest {
            entries,
            mtime_precision_nanos: 1,
        }
    }

    #[test]
    fn a_faithful_copy_passes_and_each_difference_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("d");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/a"), "alpha").unwrap();
        std::fs::write(d.join("b"), "beta").unwrap();
        std::os::unix::fs::symlink("sub/a", d.join("l")).unwrap();
        let m = manifest_of(&d);
        let v = verify(&d, &m, Path::new("/srv/d"));
        assert_eq!(v.mismatches, Vec::<String>::new());
        assert_eq!((v.files, v.bytes), (2, 9));

        // Same size, other content; a mode; an extra file; a missing link.
        let mtime = std::fs::metadata(d.join("b")).unwrap().modified().unwrap();
        std::fs::write(d.join("b"), "BETA").unwrap();
        File::options()
            .write(true)
            .open(d.join("b"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        std::fs::set_permissions(d.join("sub/a"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(d.join("new"), "").unwrap();
        std::fs::remove_file(d.join("l")).unwrap();
        let root = m
            .entries
            .iter()
            .find(|e| e.path.as_os_str().is_empty())
            .unwrap();
        let (secs, nanos) = root.mtime.unwrap();
        filetime::set_symlink_file_times(
            &d,
            filetime::FileTime::from_unix_time(secs, nanos),
            filetime::FileTime::from_unix_time(secs, nanos),
        )
        .unwrap();
        let v = verify(&d, &m, Path::new("/srv/d"));
        let mut got = v.mismatches.clone();
        got.sort();
        let mode = m
            .entries
            .iter()
            .find(|e| e.path == Path::new("sub/a"))
            .unwrap()
            .mode
            .unwrap();
        assert_eq!(
            got,
            [
                "/srv/d/b: content differs from the backup (SHA-256)".to_string(),
                "/srv/d/l: missing from the restored copy".to_string(),
                "/srv/d/new: in the restored copy, not in the backup".to_string(),
                format!("/srv/d/sub/a: mode 600, backed up as {mode:o}"),
            ]
        );
    }

    #[test]
    fn blobs_are_checked_piece_by_piece() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, "hello world").unwrap();
        let blob = |s: &str| (Sha256::digest(s).into(), s.len() as u64);
        let good = Content::Blobs(vec![blob("hello "), blob("world")]);
        assert_eq!(same_content(&f, &good), Ok(()));
        let bad = Content::Blobs(vec![blob("hello "), blob("wørld")]);
        assert!(
            same_content(&f, &bad)
                .unwrap_err()
                .starts_with("cannot read blob 2 of 2")
        );
        let bad = Content::Blobs(vec![blob("hello "), blob("WORLD")]);
        assert!(
            same_content(&f, &bad)
                .unwrap_err()
                .starts_with("content differs from the backup (blob 2 of 2")
        );
    }
}
