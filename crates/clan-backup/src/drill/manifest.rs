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
/// as messages name it (the live path). Owners are compared when running as root
/// (nobody else can restore them).
pub fn verify(restored: &Path, manifest: &Manifest, shown: &Path) -> Verified {
    let mut v = Verified::default();
    let name = |rel: &Path| {
        if rel.as_os_str().is_empty() {
            shown.display().to_string()
        } else {
            shown.join(rel).display().to_string()
        }
    };
    let root = rustix::process::geteuid().is_root();
    let precision = manifest.mtime_precision_nanos;
    let mut found = walk(restored);
    let mut inodes: HashMap<&str, BTreeMap<(u64, u64), Vec<&Path>>> = HashMap::new();
    for e in &manifest.entries {
        // borg lists names that are not UTF-8 with `?` for each undecodable byte.
        let key = if found.contains(&e.path) || !e.path.to_string_lossy().contains('?') {
            e.path.clone()
        } else {
            found
                .iter()
                .find(|k| question_marks(k) == e.path)
                .cloned()
                .unwrap_or_else(|| e.path.clone())
        };
        let at = restored.join(&key);
        let meta = match found.remove(&key) {
            true => std::fs::symlink_metadata(&at).ok(),
            false => None,
        };
        let Some(meta) = meta else {
            v.mismatch(format!("{}: missing from the restored copy", name(&e.path)));
            continue;
        };
        let kind_ok = match &e.kind {
            Kind::File => meta.is_file(),
            Kind::Dir => meta.is_dir(),
            Kind::Symlink(target) => {
                meta.file_type().is_symlink() && std::fs::read_link(&at).is_ok_and(|t| &t == target)
            }
            Kind::Other => !meta.is_file() && !meta.is_dir() && !meta.file_type().is_symlink(),
        };
        if !kind_ok {
            v.mismatch(format!(
                "{}: restored as {}, backed up as {}",
                name(&e.path),
                describe(&meta, &at),
                describe_kind(&e.kind)
            ));
            continue;
        }
        if let Some(mode) = e.mode
            && !matches!(e.kind, Kind::Symlink(_))
            && meta.mode() & 0o7777 != mode
        {
            v.mismatch(format!(
                "{}: mode {:o}, backed up as {mode:o}",
                name(&e.path),
                meta.mode() & 0o7777
            ));
        }
        if root {
            for (what, got, want) in [("owner", meta.uid(), e.uid), ("group", meta.gid(), e.gid)] {
                if let Some(want) = want
                    && got != want
                {
                    v.mismatch(format!(
                        "{}: {what} {got}, backed up as {want}",
                        name(&e.path)
                    ));
                }
            }
        }
        // Within the listing's precision: borg lists microseconds, from a float
        // (rounded, and off by up to a quarter of one at today's times).
        let nanos = |s: i64, ns: i64| i128::from(s) * 1_000_000_000 + i128::from(ns);
        if let Some((s, ns)) = e.mtime
            && !matches!(e.kind, Kind::Symlink(_))
            && (nanos(meta.mtime(), meta.mtime_nsec()) - nanos(s, ns.into())).abs()
                >= i128::from(precision).max(1)
        {
            v.mismatch(format!(
                "{}: modified {}.{:09}, backed up as {s}.{ns:09}",
                name(&e.path),
                meta.mtime(),
                meta.mtime_nsec()
            ));
        }
        if let Some(group) = &e.link_group {
            inodes
                .entry(group)
                .or_default()
                .entry((meta.dev(), meta.ino()))
                .or_default()
                .push(&e.path);
        }
        if e.kind != Kind::File {
            continue;
        }
        v.files += 1;
        if meta.len() != e.size {
            v.mismatch(format!(
                "{}: {} bytes, backed up with {}",
                name(&e.path),
                meta.len(),
                e.size
            ));
            continue;
        }
        v.bytes += e.size;
        if let Err(why) = same_content(&at, &e.content) {
            v.mismatch(format!("{}: {why}", name(&e.path)));
        }
    }
    for (group, by_inode) in inodes {
        if by_inode.len() > 1 {
            let paths: Vec<String> = by_inode.values().flatten().map(|p| name(p)).collect();
            v.mismatch(format!(
                "{}: one file in the backup ({group}), separate files in the restored copy",
                paths.join(", ")
            ));
        }
    }
    let mut extra: Vec<_> = found.into_iter().collect();
    extra.sort();
    for rel in extra {
        v.mismatch(format!(
            "{}: in the restored copy, not in the backup",
            name(&rel)
        ));
    }
    v
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

/// Every entry below `root` (and `root` itself as the empty path), links not
/// followed: paths only (metadata is read again per entry, which costs a stat and
/// saves holding it for every file of a large tree).
fn walk(root: &Path) -> HashSet<PathBuf> {
    let mut out = HashSet::new();
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
        out.insert(rel);
    }
    out
}

const BUF: usize = 1 << 20;

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
        let mut entries = Vec::new();
        for rel in walk(dir) {
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
