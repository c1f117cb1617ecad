//! Directories opened so that nobody else can redirect what clan does in them.
//!
//! clan runs as root in folders that other users own (`/home/alice/documents`).
//! Such a user can replace any entry of a directory she can write with a symbolic
//! link, at any moment. So clan never acts on a path twice: it opens each
//! directory once, walking from `/` one component at a time with
//! `O_NOFOLLOW|O_DIRECTORY`, and from then on works relative to the descriptor
//! (`openat`, `mkdirat`, `renameat2`, `unlinkat`, `fchmod`, `fchown`, `futimens`).
//! A symbolic link on the way is followed only when nobody but root (or the user
//! running clan) could have placed it: the link and the directory holding it belong
//! to root and the directory is not writable by group or others (or is sticky).
//! Any other link is refused with an error naming it.
//!
//! Programs and libraries that take paths get [`Dir::fd_path`]
//! (`/proc/<pid>/fd/<n>`), which the kernel resolves to the open directory itself,
//! whatever happens to its name meanwhile.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, RenameFlags, Timestamps};
use rustix::io::Errno;

const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

#[derive(Debug, thiserror::Error)]
pub enum SafeFsError {
    #[error(
        "{link} is a symbolic link that {who} could have placed; clan does not follow such links \
         as root. Replace the link with the directory it points to, or name the real path in the \
         configuration"
    )]
    UntrustedLink { link: PathBuf, who: String },
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("{0}: too many levels of symbolic links")]
    Loop(PathBuf),
    #[error("{0} must be an absolute path without '.' or '..'")]
    NotAbsolute(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = SafeFsError> = std::result::Result<T, E>;

fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(Errno) -> SafeFsError {
    let path = path.into();
    move |e| SafeFsError::Io {
        path,
        source: e.into(),
    }
}

/// An open directory and the path it was opened by (for messages).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// A directory's own metadata, as kept and restored by the swap.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: i64,
    /// Extended attributes (POSIX ACLs among them), by name. `None` (a journal of
    /// a clan that did not keep them) leaves the folder's as they are.
    #[serde(default)]
    pub xattrs: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Dir {
    /// Opens `path`; `None` when it (or a parent) does not exist.
    pub fn open(path: &Path) -> Result<Option<Dir>> {
        walk(path, None)
    }

    /// Opens `path` as the kernel resolves it, links included: only for paths whose
    /// every component clan trusts, such as `/proc/<pid>/fd/<n>/...` below a
    /// root-only directory. `None` when missing.
    pub fn open_through(path: &Path) -> Result<Option<Dir>> {
        match rfs::open(path, DIR.difference(OFlags::NOFOLLOW), Mode::empty()) {
            Ok(fd) => Ok(Some(Dir {
                fd,
                path: path.into(),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(Errno::LOOP | Errno::NOTDIR) => Err(SafeFsError::NotADirectory(path.into())),
            Err(e) => Err(io_at(path)(e)),
        }
    }

    /// Opens `path`, creating missing directories (root's, mode 0755 for parents,
    /// `mode` for the last); returns the directories it created, outermost first.
    pub fn create_all(path: &Path, mode: u32) -> Result<(Dir, Vec<PathBuf>)> {
        let mut created = Vec::new();
        let dir = walk(path, Some((&mut created, mode)))?.expect("created");
        Ok((dir, created))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// A path that names this open directory for programs and libraries.
    pub fn fd_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }

    fn err(&self, name: &OsStr) -> impl FnOnce(Errno) -> SafeFsError {
        io_at(self.path.join(name))
    }

    /// The entry `name` if it is a directory (never through a link); `Ok(None)`
    /// when missing; an error when it is something else.
    pub fn open_sub(&self, name: &OsStr) -> Result<Option<Dir>> {
        match rfs::openat(&self.fd, name, DIR, Mode::empty()) {
            Ok(fd) => Ok(Some(Dir {
                fd,
                path: self.path.join(name),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(Errno::LOOP | Errno::NOTDIR) => {
                Err(SafeFsError::NotADirectory(self.path.join(name)))
            }
            Err(e) => Err(self.err(name)(e)),
        }
    }

    /// The directory `rel` below this one, one component at a time, never through a
    /// link; `None` when missing.
    pub fn open_below(&self, rel: &Path) -> Result<Option<Dir>> {
        let mut dir = Dir {
            fd: rfs::openat(&self.fd, ".", DIR, Mode::empty()).map_err(io_at(&self.path))?,
            path: self.path.clone(),
        };
        for c in rel.components() {
            let Component::Normal(name) = c else {
                return Err(SafeFsError::NotAbsolute(rel.into()));
            };
            match dir.open_sub(name)? {
                Some(sub) => dir = sub,
                None => return Ok(None),
            }
        }
        Ok(Some(dir))
    }

    /// The status of entry `name` (a link's own); `None` when missing.
    pub fn stat(&self, name: &OsStr) -> Result<Option<rfs::Stat>> {
        match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.err(name)(e)),
        }
    }

    /// The regular file `name` opened for reading (never through a link).
    pub fn open_file(&self, name: &OsStr) -> std::io::Result<std::fs::File> {
        let fd = rfs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if FileType::from_raw_mode(rfs::fstat(&fd)?.st_mode) != FileType::RegularFile {
            return Err(std::io::ErrorKind::InvalidInput.into());
        }
        Ok(fd.into())
    }

    /// Makes `to/to_name` one more name of entry `name` (a hard link), replacing
    /// what `to_name` was in one step (a new link, then a rename over it).
    pub fn link_over(&self, name: &OsStr, to: &Dir, to_name: &OsStr) -> Result<()> {
        let tmp = OsString::from(format!(
            ".clan-link-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        rfs::linkat(&self.fd, name, &to.fd, &tmp, AtFlags::empty()).map_err(self.err(name))?;
        rfs::renameat(&to.fd, &tmp, &to.fd, to_name).map_err(|e| {
            let _ = rfs::unlinkat(&to.fd, &tmp, AtFlags::empty());
            to.err(to_name)(e)
        })
    }

    /// Makes a new directory `name` (refused if anything has that name) and opens it.
    pub fn create_sub(&self, name: &OsStr, mode: u32) -> Result<Dir> {
        rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode)).map_err(self.err(name))?;
        // mkdirat applies the umask.
        let dir = self.open_sub(name)?.ok_or_else(|| SafeFsError::Io {
            path: self.path.join(name),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        rfs::fchmod(&dir.fd, Mode::from_raw_mode(mode)).map_err(self.err(name))?;
        Ok(dir)
    }

    /// Names of the entries, sorted.
    pub fn entries(&self) -> Result<Vec<OsString>> {
        let mut dir = rfs::Dir::read_from(&self.fd).map_err(io_at(&self.path))?;
        let mut names = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(io_at(&self.path))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Whether `name` exists (of any type; links are not followed).
    pub fn has(&self, name: &OsStr) -> Result<bool> {
        match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(self.err(name)(e)),
        }
    }

    /// Writes everything written on this directory's filesystem to its disk
    /// (`syncfs`). Before restored files replace live ones: without it, a power cut
    /// soon after could leave the files empty (ext4 allocates their blocks only
    /// when it writes them out), with the old ones already gone.
    pub fn sync_fs(&self) -> Result<()> {
        rfs::syncfs(&self.fd).map_err(io_at(&self.path))
    }

    pub fn meta(&self) -> Result<DirMeta> {
        let st = rfs::fstat(&self.fd).map_err(io_at(&self.path))?;
        Ok(DirMeta {
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            mtime: st.st_mtime as i64,
            mtime_nsec: st.st_mtime_nsec as i64,
            xattrs: Some(self.xattrs()?),
        })
    }

    /// The directory as a `File`, for the extended attribute calls on its descriptor.
    fn file(&self) -> Result<std::fs::File> {
        Ok(rustix::io::dup(&self.fd).map_err(io_at(&self.path))?.into())
    }

    fn xattrs(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let attrs = read_xattrs(&self.fd_path(), true).map_err(|e| SafeFsError::Io {
            path: self.path.clone(),
            source: e,
        })?;
        Ok(attrs
            .into_iter()
            .map(|(name, value)| (std::os::unix::ffi::OsStringExt::into_vec(name), value))
            .collect())
    }

    /// Owner, mode, extended attributes and mtime, in that order (a new owner drops
    /// capabilities, an access ACL sets the mode's group bits again), on the
    /// descriptor (never through a path).
    pub fn set_meta(&self, m: &DirMeta) -> Result<()> {
        let fail = io_at(&self.path);
        rfs::fchown(
            &self.fd,
            Some(rfs::Uid::from_raw(m.uid)),
            Some(rfs::Gid::from_raw(m.gid)),
        )
        .map_err(io_at(&self.path))?;
        rfs::fchmod(&self.fd, Mode::from_raw_mode(m.mode)).map_err(io_at(&self.path))?;
        if let Some(wanted) = &m.xattrs {
            use xattr::FileExt;
            let io = |e: std::io::Error| SafeFsError::Io {
                path: self.path.clone(),
                source: e,
            };
            let file = self.file()?;
            for (name, _) in self.xattrs()? {
                if !wanted.iter().any(|(n, _)| *n == name) {
                    file.remove_xattr(OsStr::from_bytes(&name)).map_err(io)?;
                }
            }
            for (name, value) in wanted {
                file.set_xattr(OsStr::from_bytes(name), value).map_err(io)?;
            }
        }
        let t = rfs::Timespec {
            tv_sec: m.mtime,
            tv_nsec: m.mtime_nsec as _,
        };
        rfs::futimens(
            &self.fd,
            &Timestamps {
                last_access: t,
                last_modification: t,
            },
        )
        .map_err(fail)
    }

    /// Moves entry `name` to `to/to_name`; never replaces an existing entry.
    pub fn move_to(&self, name: &OsStr, to: &Dir, to_name: &OsStr) -> Result<()> {
        rfs::renameat_with(&self.fd, name, &to.fd, to_name, RenameFlags::NOREPLACE)
            .map_err(self.err(name))
    }

    /// Removes entry `name` and everything below it, without following links.
    pub fn remove(&self, name: &OsStr) -> Result<()> {
        match rfs::openat(&self.fd, name, DIR, Mode::empty()) {
            Ok(fd) => {
                let sub = Dir {
                    fd,
                    path: self.path.join(name),
                };
                // A read-only directory's entries cannot be removed by a user.
                let st = rfs::fstat(&sub.fd).map_err(io_at(&sub.path))?;
                if st.st_mode & 0o700 != 0o700 {
                    rfs::fchmod(&sub.fd, Mode::from_raw_mode((st.st_mode & 0o7777) | 0o700))
                        .map_err(io_at(&sub.path))?;
                }
                for e in sub.entries()? {
                    sub.remove(&e)?;
                }
                rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR).map_err(self.err(name))
            }
            Err(Errno::LOOP | Errno::NOTDIR) => {
                rfs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(self.err(name))
            }
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(self.err(name)(e)),
        }
    }

    /// Writes a small file atomically (temporary name, then rename), mode 0600.
    pub fn write_file(&self, name: &OsStr, data: &[u8]) -> Result<()> {
        let mut tmp = name.to_os_string();
        tmp.push(".tmp");
        let _ = rfs::unlinkat(&self.fd, &tmp, AtFlags::empty());
        let fd = rfs::openat(
            &self.fd,
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(self.err(&tmp))?;
        let mut file = std::fs::File::from(fd);
        std::io::Write::write_all(&mut file, data)
            .and_then(|()| file.sync_all())
            .map_err(|source| SafeFsError::Io {
                path: self.path.join(&tmp),
                source,
            })?;
        rfs::renameat(&self.fd, &tmp, &self.fd, name).map_err(self.err(name))
    }

    /// Reads a regular file (never through a link); `None` when missing.
    pub fn read_file(&self, name: &OsStr) -> Result<Option<Vec<u8>>> {
        match rfs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut data).map_err(
                    |source| SafeFsError::Io {
                        path: self.path.join(name),
                        source,
                    },
                )?;
                Ok(Some(data))
            }
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.err(name)(e)),
        }
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `path` as a list of names, refusing relative paths and `.`/`..`.
fn names(path: &Path) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    let mut comps = path.components();
    if comps.next() != Some(Component::RootDir) {
        return Err(SafeFsError::NotAbsolute(path.to_path_buf()));
    }
    for c in comps {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            _ => return Err(SafeFsError::NotAbsolute(path.to_path_buf())),
        }
    }
    Ok(out)
}

/// `path` with `.` and `..` resolved lexically (its prefix holds no links: it is
/// the walk's resolved part).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

fn root() -> Result<Dir> {
    let fd = rfs::open("/", DIR, Mode::empty()).map_err(io_at("/"))?;
    Ok(Dir {
        fd,
        path: "/".into(),
    })
}

/// Whether `uid` is root or the user clan runs as: the owners clan trusts.
pub(crate) fn trusted(uid: u32) -> bool {
    uid == 0 || uid == rustix::process::geteuid().as_raw()
}

/// Who besides root and us could have placed entry `link` (stat `l`) in a
/// directory with stat `d`; `None` when nobody.
fn who_else(d: &rfs::Stat, l: &rfs::Stat) -> Option<String> {
    if !trusted(l.st_uid) {
        return Some(format!("user {} (its owner)", l.st_uid));
    }
    if !trusted(d.st_uid) {
        return Some(format!("user {} (who owns its directory)", d.st_uid));
    }
    if d.st_mode & 0o022 != 0 && d.st_mode & 0o1000 == 0 {
        return Some("any user of its directory's group or others".into());
    }
    None
}

/// The extended attributes of `path` (with `follow`, of what it leads to), sorted
/// by name; none where the file system has none. The one reader of extended
/// attributes: copies, the swap and the engine's backups all use it.
pub fn read_xattrs(path: &Path, follow: bool) -> std::io::Result<Vec<(OsString, Vec<u8>)>> {
    let names = match if follow {
        xattr::list_deref(path)
    } else {
        xattr::list(path)
    } {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error()) => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let mut attrs = Vec::new();
    for name in names {
        let value = if follow {
            xattr::get_deref(path, &name)?
        } else {
            xattr::get(path, &name)?
        };
        // One removed since the listing is not copied.
        if let Some(value) = value {
            attrs.push((name, value));
        }
    }
    attrs.sort();
    Ok(attrs)
}

fn walk(path: &Path, mut create: Option<(&mut Vec<PathBuf>, u32)>) -> Result<Option<Dir>> {
    let mut todo = names(path)?;
    todo.reverse();
    let mut dir = root()?;
    let mut links = 0;
    while let Some(name) = todo.pop() {
        let here = dir.path.join(&name);
        match rfs::openat(&dir.fd, &name, DIR, Mode::empty()) {
            Ok(fd) => dir = Dir { fd, path: here },
            Err(Errno::NOENT) => {
                let Some((created, mode)) = create.as_mut() else {
                    return Ok(None);
                };
                let mode = if todo.is_empty() { *mode } else { 0o755 };
                match dir.create_sub(&name, mode) {
                    Ok(d) => {
                        created.push(here);
                        dir = d;
                    }
                    // Made by someone else meanwhile: look again.
                    Err(SafeFsError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        todo.push(name)
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(Errno::LOOP | Errno::NOTDIR) => {
                let l =
                    rfs::statat(&dir.fd, &name, AtFlags::SYMLINK_NOFOLLOW).map_err(io_at(&here))?;
                if FileType::from_raw_mode(l.st_mode) != FileType::Symlink {
                    return Err(SafeFsError::NotADirectory(here));
                }
                let d = rfs::fstat(&dir.fd).map_err(io_at(&dir.path))?;
                if let Some(who) = who_else(&d, &l) {
                    return Err(SafeFsError::UntrustedLink { link: here, who });
                }
                links += 1;
                if links > 40 {
                    return Err(SafeFsError::Loop(path.to_path_buf()));
                }
                let target = rfs::readlinkat(&dir.fd, &name, Vec::new()).map_err(io_at(&here))?;
                let mut next = dir.path.join(OsStr::from_bytes(target.as_bytes()));
                next.extend(todo.iter().rev());
                todo = names(&normalize(&next))?;
                todo.reverse();
                dir = root()?;
            }
            Err(e) => return Err(io_at(here)(e)),
        }
    }
    Ok(Some(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn own_links_are_followed_and_paths_must_be_absolute() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir_all(real.join("sub")).unwrap();
        symlink(&real, tmp.path().join("link")).unwrap();
        symlink("../real/sub", real.join("up")).unwrap();
        // The temporary directory is in a sticky /tmp or a private one: ours either way.
        let d = Dir::open(&tmp.path().join("link/up")).unwrap().unwrap();
        assert_eq!(d.path(), real.join("sub").canonicalize().unwrap().as_path());
        assert!(Dir::open(&tmp.path().join("missing/x")).unwrap().is_none());
        assert!(matches!(
            Dir::open(Path::new("rel")),
            Err(SafeFsError::NotAbsolute(_))
        ));
        assert!(matches!(
            Dir::open(&tmp.path().join("real/../real")),
            Err(SafeFsError::NotAbsolute(_))
        ));
        std::fs::write(tmp.path().join("file"), "x").unwrap();
        assert!(matches!(
            Dir::open(&tmp.path().join("file")),
            Err(SafeFsError::NotADirectory(_))
        ));
    }

    #[test]
    fn create_all_makes_what_is_missing_and_removal_does_not_follow_links() {
        let tmp = tempfile::tempdir().unwrap();
        let (d, created) = Dir::create_all(&tmp.path().join("a/b/c"), 0o700).unwrap();
        assert_eq!(created.len(), 3);
        assert_eq!(d.meta().unwrap().mode, 0o700);
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        std::fs::create_dir(tmp.path().join("a/b/c/sub")).unwrap();
        symlink(&outside, tmp.path().join("a/b/c/sub/link")).unwrap();
        let a = Dir::open(tmp.path()).unwrap().unwrap();
        a.remove(OsStr::new("a")).unwrap();
        assert!(!tmp.path().join("a").exists());
        assert!(outside.join("keep").exists());
    }
}
