//! File trees: copying with all metadata (modes, owners, mtimes, extended attributes
//! and ACLs, symlinks, hard links, empty directories, sparse files), optionally
//! hard-linking files unchanged since a previous copy (rsnapshot style), and
//! replacing a folder's contents exactly with a restored copy.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;

use crate::safe_fs::read_xattrs;

/// State exclude patterns, as every provider applies them: a pattern without '/'
/// matches an entry's name at any depth (`*.bak`, `cache`); one with '/' matches the
/// whole absolute path (`/srv/app/tmp/*`).
#[derive(Debug, Clone, Default)]
pub struct Exclude {
    names: Option<globset::GlobSet>,
    paths: Option<globset::GlobSet>,
}

impl Exclude {
    pub fn new(patterns: &[String]) -> Result<Self, globset::Error> {
        let (mut names, mut paths) = (
            globset::GlobSetBuilder::new(),
            globset::GlobSetBuilder::new(),
        );
        let (mut any_name, mut any_path) = (false, false);
        for p in patterns {
            let glob = globset::GlobBuilder::new(p)
                .literal_separator(true)
                .build()?;
            if p.contains('/') {
                paths.add(glob);
                any_path = true;
            } else {
                names.add(glob);
                any_name = true;
            }
        }
        Ok(Self {
            names: any_name.then(|| names.build()).transpose()?,
            paths: any_path.then(|| paths.build()).transpose()?,
        })
    }

    pub fn excludes(&self, path: &Path) -> bool {
        self.names
            .as_ref()
            .is_some_and(|n| path.file_name().is_some_and(|f| n.is_match(f)))
            || self.paths.as_ref().is_some_and(|p| p.is_match(path))
    }
}

/// What a copy did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyStats {
    pub files: u64,
    pub bytes_copied: u64,
    /// Files hard-linked to the previous copy instead of copied.
    pub linked: u64,
}

/// Where each file with more than one link was first copied to, by the source's
/// (device, inode), so that its other links are made links again, also across the
/// folders of a snapshot copied with one map. Kept relative to the copy's root: in
/// a `local` snapshot every file has links (to older snapshots), and 80,000
/// absolute paths took 12 MiB.
#[derive(Debug, Default)]
pub struct LinkMap {
    roots: Vec<PathBuf>,
    first: HashMap<(u64, u64), (usize, Box<Path>)>,
}

impl LinkMap {
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, key: &(u64, u64)) -> Option<PathBuf> {
        let (root, rel) = self.first.get(key)?;
        Some(self.roots[*root].join(rel))
    }

    /// Records `path`, which lies below the root of the copy being made.
    fn insert(&mut self, key: (u64, u64), path: &Path) {
        let root = self.roots.len() - 1;
        let rel = path.strip_prefix(&self.roots[root]).unwrap_or(path);
        self.first.insert(key, (root, rel.into()));
    }
}

/// SHA-256 of every regular file of a copy, by its path: computed while copying;
/// for files linked to the previous copy, taken from `previous` (its sums, by path).
#[derive(Debug, Default)]
pub struct Sums {
    pub previous: HashMap<PathBuf, [u8; 32]>,
    pub files: HashMap<PathBuf, [u8; 32]>,
}

/// The sum `known` has for `path`, else read from the file.
fn known_or_read(known: &HashMap<PathBuf, [u8; 32]>, path: &Path) -> io::Result<[u8; 32]> {
    known.get(path).copied().map_or_else(|| hash_file(path), Ok)
}

/// SHA-256 of a file's contents.
pub fn hash_file(path: &Path) -> io::Result<[u8; 32]> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(hasher.finalize().into())
}

/// Copies `src` (a directory) to `dst` (created), preserving metadata. With
/// `previous`, a regular file whose counterpart under `previous` has the same size,
/// mtime, mode and owner is hard-linked to it instead of copied. Directories that
/// hold clan's scratch marker are not copied.
pub fn copy_tree(
    src: &Path,
    dst: &Path,
    previous: Option<&Path>,
    exclude: &Exclude,
    links: &mut LinkMap,
    mut sums: Option<&mut Sums>,
) -> io::Result<CopyStats> {
    let mut stats = CopyStats::default();
    // Read through descriptors from here on: the folder as the safe walk opened it,
    // each entry opened once (O_PATH, not following links) and used by that
    // descriptor, so that a user who swaps a folder or a subdirectory for a link
    // meanwhile cannot make root copy what the link points to.
    let top = crate::safe_fs::Dir::open(src)
        .map_err(io::Error::other)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, src.display().to_string()))?;
    let meta = File::from(rustix::io::dup(top.fd())?).metadata()?;
    fs::create_dir_all(dst)?;
    links.roots.push(dst.to_path_buf());
    copy_dir(
        top.fd(),
        src,
        dst,
        previous,
        exclude,
        links,
        &mut sums,
        &mut stats,
    )?;
    set_metadata(dst, &meta)?;
    copy_xattrs(top.fd(), dst)?;
    Ok(stats)
}

/// The extended attributes (POSIX ACLs among them) of the file or folder that the
/// descriptor `fd` holds (also an `O_PATH` one: through its `/proc` link, which
/// leads to that very file), sorted by name.
fn xattrs_at(fd: &impl AsRawFd) -> io::Result<Vec<(OsString, Vec<u8>)>> {
    read_xattrs(
        Path::new(&format!("/proc/self/fd/{}", fd.as_raw_fd())),
        true,
    )
}

/// Gives `dst` (a file or folder this copy made) the extended attributes of the
/// file `fd` holds. After the owner and mode: a new owner drops file capabilities,
/// and an access ACL sets the group bits of the mode again.
fn copy_xattrs(fd: &impl AsRawFd, dst: &Path) -> io::Result<()> {
    for (name, value) in xattrs_at(fd)? {
        xattr::set(dst, &name, &value).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "setting the extended attribute {} of {}: {e}",
                    name.to_string_lossy(),
                    dst.display()
                ),
            )
        })?;
    }
    Ok(())
}

const DIR_FLAGS: rustix::fs::OFlags = rustix::fs::OFlags::RDONLY
    .union(rustix::fs::OFlags::DIRECTORY)
    .union(rustix::fs::OFlags::CLOEXEC);

#[allow(clippy::too_many_arguments)]
fn copy_dir(
    dir: &rustix::fd::OwnedFd,
    src: &Path,
    dst: &Path,
    previous: Option<&Path>,
    exclude: &Exclude,
    links: &mut LinkMap,
    sums: &mut Option<&mut Sums>,
    stats: &mut CopyStats,
) -> io::Result<()> {
    use rustix::fs::{Mode, OFlags, openat};
    let mut entries: Vec<OsString> = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            entries.push(std::ffi::OsStr::from_bytes(name).to_os_string());
        }
    }
    entries.sort();
    for name in entries {
        let (s, d) = (src.join(&name), dst.join(&name));
        if exclude.excludes(&s) {
            continue;
        }
        let prev = previous.map(|p| p.join(&name));
        let entry = match openat(
            dir,
            &name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            // Removed since the listing: not in this copy.
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let meta = File::from(rustix::io::dup(&entry)?).metadata()?;
        let ft = meta.file_type();
        if ft.is_dir() {
            let sub = openat(&entry, ".", DIR_FLAGS, Mode::empty())?;
            if rustix::fs::statat(
                &sub,
                crate::scratch::MARKER,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .is_ok()
            {
                continue;
            }
            fs::create_dir(&d)?;
            copy_dir(&sub, &s, &d, prev.as_deref(), exclude, links, sums, stats)?;
            set_metadata(&d, &meta)?;
            copy_xattrs(&sub, &d)?;
        } else if ft.is_symlink() {
            let target = rustix::fs::readlinkat(&entry, "", Vec::new())?;
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target.as_bytes()), &d)?;
            set_metadata(&d, &meta)?;
        } else if ft.is_file() {
            stats.files += 1;
            if meta.nlink() > 1
                && let Some(first) = links.get(&(meta.dev(), meta.ino()))
            {
                fs::hard_link(&first, &d)?;
                if let Some(sums) = sums.as_deref_mut() {
                    let sum = known_or_read(&sums.files, &first)?;
                    sums.files.insert(d, sum);
                }
                continue;
            }
            if let Some(p) = prev.as_deref()
                && unchanged(&meta, p)
                && xattrs_at(&entry)? == read_xattrs(p, false)?
            {
                fs::hard_link(p, &d)?;
                stats.linked += 1;
                if let Some(sums) = sums.as_deref_mut() {
                    let sum = known_or_read(&sums.previous, p)?;
                    sums.files.insert(d.clone(), sum);
                }
            } else {
                // The same file again, now for reading.
                let input = File::open(format!("/proc/self/fd/{}", entry.as_raw_fd()))?;
                let (copied, sum) = copy_file_sparse(input, &d, meta.len())?;
                stats.bytes_copied += copied;
                if let Some(sums) = sums.as_deref_mut() {
                    sums.files.insert(d.clone(), sum);
                }
                set_metadata(&d, &meta)?;
                copy_xattrs(&entry, &d)?;
            }
            if meta.nlink() > 1 {
                links.insert((meta.dev(), meta.ino()), &d);
            }
        } else {
            // FIFOs, sockets and device nodes: made again as they were.
            use rustix::fs::{FileType, Mode};
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &d,
                FileType::from_raw_mode(meta.mode()),
                Mode::from_raw_mode(meta.mode() & 0o7777),
                meta.rdev(),
            )?;
            set_metadata(&d, &meta)?;
        }
    }
    Ok(())
}

fn unchanged(meta: &Metadata, previous: &Path) -> bool {
    fs::symlink_metadata(previous).is_ok_and(|p| {
        p.is_file()
            && p.len() == meta.len()
            && p.mtime() == meta.mtime()
            && p.mtime_nsec() == meta.mtime_nsec()
            && p.mode() == meta.mode()
            && p.uid() == meta.uid()
            && p.gid() == meta.gid()
    })
}

/// Copies contents, leaving holes where the source has blocks of zeros; returns the
/// bytes written and the contents' SHA-256.
fn copy_file_sparse(mut input: File, dst: &Path, len: u64) -> io::Result<(u64, [u8; 32])> {
    use sha2::Digest;
    let output = File::create(dst)?;
    let mut buf = vec![0u8; 128 * 1024];
    let (mut pos, mut written) = (0, 0);
    let mut hasher = sha2::Sha256::new();
    loop {
        let n = read_full(&mut input, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        written += write_sparse_at(&output, &buf[..n], pos)?;
        pos += n as u64;
    }
    output.set_len(len)?;
    Ok((written, hasher.finalize().into()))
}

/// Writes `buf` at `pos`, leaving each 4 KiB block of the file that would hold
/// only zeros a hole (the filesystem's own granularity, so a sparse file comes back
/// as sparse as it was). Returns the bytes written.
pub fn write_sparse_at(file: &File, buf: &[u8], pos: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    const BLOCK: u64 = 4096;
    let (mut at, mut run, mut written) = (0usize, None::<usize>, 0u64);
    let mut flush = |from: usize, to: usize| -> io::Result<()> {
        file.write_all_at(&buf[from..to], pos + from as u64)?;
        written += (to - from) as u64;
        Ok(())
    };
    while at < buf.len() {
        let end = ((((pos + at as u64) / BLOCK + 1) * BLOCK - pos) as usize).min(buf.len());
        let zero = buf[at..end].iter().all(|b| *b == 0);
        match (zero, run) {
            (false, None) => run = Some(at),
            (true, Some(from)) => {
                flush(from, at)?;
                run = None;
            }
            _ => {}
        }
        at = end;
    }
    if let Some(from) = run {
        flush(from, buf.len())?;
    }
    Ok(written)
}

fn read_full(r: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Owner, mode (not for symlinks) and mtime, in that order.
pub fn set_metadata(path: &Path, meta: &Metadata) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid()))?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    let mtime = FileTime::from_last_modification_time(meta);
    let atime = FileTime::from_last_access_time(meta);
    filetime::set_symlink_file_times(path, atime, mtime)
}

/// Removes a file, symlink or directory tree; read-only directories are made
/// writable first (as root they need not be; as a user they must).
pub fn remove_any(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        make_writable(path)?;
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

fn make_writable(dir: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    if meta.mode() & 0o700 != 0o700 {
        fs::set_permissions(
            dir,
            fs::Permissions::from_mode((meta.mode() & 0o7777) | 0o700),
        )?;
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            make_writable(&entry.path())?;
        }
    }
    Ok(())
}

/// `root` joined with an absolute `path` (`/a/b` under `/r` is `/r/a/b`).
pub fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn copy_keeps_links_modes_mtimes_and_links_unchanged_files() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("d/empty")).unwrap();
        fs::write(src.join("d/a"), "hello").unwrap();
        fs::hard_link(src.join("d/a"), src.join("b")).unwrap();
        symlink("d/a", src.join("l")).unwrap();
        fs::set_permissions(src.join("d/a"), fs::Permissions::from_mode(0o640)).unwrap();
        filetime::set_file_mtime(src.join("d/a"), FileTime::from_unix_time(1_000_000, 5)).unwrap();

        let one = tmp.path().join("one");
        copy_tree(
            &src,
            &one,
            None,
            &Exclude::default(),
            &mut LinkMap::new(),
            None,
        )
        .unwrap();
        let a = fs::metadata(one.join("d/a")).unwrap();
        assert_eq!(a.mode() & 0o777, 0o640);
        assert_eq!(a.mtime(), 1_000_000);
        assert_eq!(
            a.ino(),
            fs::metadata(one.join("b")).unwrap().ino(),
            "hard link kept"
        );
        assert_eq!(fs::read_link(one.join("l")).unwrap(), Path::new("d/a"));
        assert!(one.join("d/empty").is_dir());

        let two = tmp.path().join("two");
        let stats = copy_tree(
            &src,
            &two,
            Some(&one),
            &Exclude::default(),
            &mut LinkMap::new(),
            None,
        )
        .unwrap();
        assert_eq!(stats.linked, 1);
        assert_eq!(
            fs::metadata(two.join("d/a")).unwrap().ino(),
            a.ino(),
            "unchanged file linked to the previous copy"
        );
    }

    /// ACLs and other extended attributes are copied with files and folders; a
    /// file whose attributes changed (its mtime did not) is copied, not linked.
    /// Without the ACL, the mode's group bits (the ACL's mask) would let the
    /// owning group read a file it could not.
    #[test]
    fn copy_keeps_acls_and_extended_attributes() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        for f in ["d/acl", "same"] {
            fs::write(src.join(f), f).unwrap();
            fs::set_permissions(src.join(f), fs::Permissions::from_mode(0o600)).unwrap();
        }
        // user::rw-, user nobody r--, group::---, mask::r--, other::---
        let acl = [
            2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255, 2, 0, 4, 0, 254, 255, 0, 0, 4, 0, 0, 0,
            255, 255, 255, 255, 16, 0, 4, 0, 255, 255, 255, 255, 32, 0, 0, 0, 255, 255, 255, 255,
        ];
        xattr::set(src.join("d/acl"), "system.posix_acl_access", &acl).unwrap();
        xattr::set(src.join("same"), "user.kept", b"1").unwrap();
        xattr::set(src.join("d"), "user.folder", b"2").unwrap();
        xattr::set(&src, "user.top", b"3").unwrap();
        let copy = |to: &str, previous: Option<&Path>| {
            let dst = tmp.path().join(to);
            let stats = copy_tree(
                &src,
                &dst,
                previous,
                &Exclude::default(),
                &mut LinkMap::new(),
                None,
            )
            .unwrap();
            (dst, stats)
        };
        let (one, _) = copy("one", None);
        let get = |p: PathBuf, name: &str| xattr::get(p, name).unwrap();
        assert_eq!(
            get(one.join("d/acl"), "system.posix_acl_access"),
            Some(acl.to_vec())
        );
        assert_eq!(
            fs::metadata(one.join("d/acl")).unwrap().mode() & 0o777,
            0o640,
            "the mask shows as the group bits"
        );
        assert_eq!(get(one.join("same"), "user.kept"), Some(b"1".to_vec()));
        assert_eq!(get(one.join("d"), "user.folder"), Some(b"2".to_vec()));
        assert_eq!(get(one.clone(), "user.top"), Some(b"3".to_vec()));

        let mtime = fs::metadata(src.join("d/acl")).unwrap().modified().unwrap();
        xattr::set(src.join("d/acl"), "user.new", b"4").unwrap();
        filetime::set_file_mtime(src.join("d/acl"), FileTime::from_system_time(mtime)).unwrap();
        let (two, stats) = copy("two", Some(&one));
        assert_eq!(stats.linked, 1, "only the file whose attributes stayed");
        assert_eq!(get(two.join("d/acl"), "user.new"), Some(b"4".to_vec()));
        assert_eq!(
            get(one.join("d/acl"), "user.new"),
            None,
            "the older copy as it was"
        );
        assert_eq!(
            get(two.join("d/acl"), "system.posix_acl_access"),
            Some(acl.to_vec())
        );
    }
}
