//! The walk over the backed-up folders: what rustic_core's `LocalSource` lists,
//! in its order and with its metadata, read through directory descriptors.
//!
//! clan backs up as root folders that other users own. Each directory is opened
//! from its parent's descriptor without following links, entries are stat'ed by
//! name in it, and files are opened the same way from the backed-up folder: a user
//! who swaps a folder or a file for a link during the backup cannot make it read
//! what the link points to (a file she could not read, which a restore would give
//! her). It also spares the kernel a path lookup per file, and the walk the path
//! comparisons of a generic walker: it was a third of an unchanged run's CPU.
//!
//! Like `LocalSource`: each backed-up folder itself is not listed (the tree stores
//! it as a bare directory); names sort as bytes; excluded entries and folders
//! holding the scratch marker are left out with what is below them; an entry that
//! cannot be read is reported and skipped; the backed-up paths themselves may lead
//! through links that root or the running user placed (`Dir::open`).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustic_core::repofile::{Metadata, Node, NodeType};
use rustix::fs::{self as rfs, AtFlags, FileType};

use crate::safe_fs::{Dir, SafeFsError};

/// Something to back up: its path, its node (without extended attributes) and
/// the backed-up folder it was found in, through which it is opened.
pub(in crate::engine::rustic) struct Found {
    pub path: PathBuf,
    pub node: Node,
    pub root: Arc<Dir>,
}

pub(in crate::engine::rustic) type Entry = Result<Found, String>;

/// Excluded entries: rustic_core's matcher for the backup's globs.
type Excludes = ignore::overrides::Override;

pub(in crate::engine::rustic) struct Walker<'a> {
    paths: &'a [PathBuf],
    excludes: Excludes,
    marker: &'a OsStr,
}

impl<'a> Walker<'a> {
    pub fn new(paths: &'a [PathBuf], excludes: Excludes, marker: &'a str) -> Self {
        Self {
            paths,
            excludes,
            marker: OsStr::new(marker),
        }
    }

    /// Calls `each` for every entry in walk order, until it breaks.
    pub fn walk(&self, mut each: impl FnMut(Entry) -> ControlFlow<()>) {
        let mut owners = Owners::default();
        for root in self.paths {
            if self.walk_root(root, &mut owners, &mut each).is_break() {
                return;
            }
        }
    }

    /// The bytes below the backed-up folders (for a progress bar).
    pub fn size(&self) -> u64 {
        let mut size = 0;
        self.walk(|e| {
            if let Ok(f) = e {
                size += f.node.meta.size;
            }
            ControlFlow::Continue(())
        });
        size
    }

    fn walk_root(
        &self,
        path: &Path,
        owners: &mut Owners,
        each: &mut impl FnMut(Entry) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let fail = |e: &dyn std::fmt::Display| Err(format!("{}: {e}", path.display()));
        let dir = match Dir::open(path) {
            Ok(Some(dir)) => dir,
            Ok(None) => return each(fail(&"not found")),
            // A file: found in its folder, which is then its root.
            Err(SafeFsError::NotADirectory(_)) => {
                let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                    return each(fail(&"not a directory"));
                };
                let root = match Dir::open(parent) {
                    Ok(Some(dir)) => Arc::new(dir),
                    Ok(None) => return each(fail(&"not found")),
                    Err(e) => return each(fail(&e)),
                };
                return match self.entry(&root, name, path.into(), owners) {
                    Some(Ok((found, _))) => each(Ok(Found { root, ..found })),
                    Some(Err(e)) => each(Err(e)),
                    None => ControlFlow::Continue(()),
                };
            }
            Err(e) => return each(fail(&e)),
        };
        let root = Arc::new(dir);
        // Directories being listed: their names still to do, in reverse order.
        let mut stack: Vec<(Arc<Dir>, Vec<OsString>)> = Vec::new();
        match names(&root) {
            Ok(names) => stack.push((root.clone(), names)),
            Err(e) => return each(Err(e)),
        }
        while let Some((dir, todo)) = stack.last_mut() {
            let Some(name) = todo.pop() else {
                stack.pop();
                continue;
            };
            let dir = dir.clone();
            let path = dir.path().join(&name);
            match self.entry(&dir, &name, path, owners) {
                None => {}
                Some(Err(e)) => each(Err(e))?,
                Some(Ok((found, sub))) => {
                    each(Ok(Found {
                        root: root.clone(),
                        ..found
                    }))?;
                    if let Some(sub) = sub {
                        match names(&sub) {
                            Ok(names) => stack.push((Arc::new(sub), names)),
                            Err(e) => each(Err(e))?,
                        }
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Entry `name` of `dir` and, for a directory, the directory opened; `None`
    /// when excluded. `root` is set by the caller.
    fn entry(
        &self,
        dir: &Arc<Dir>,
        name: &OsStr,
        path: PathBuf,
        owners: &mut Owners,
    ) -> Option<Result<(Found, Option<Dir>), String>> {
        let fail = |e: &dyn std::fmt::Display| Some(Err(format!("{}: {e}", path.display())));
        let st = match rfs::statat(dir.fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) => return fail(&std::io::Error::from(e)),
        };
        let kind = FileType::from_raw_mode(st.st_mode);
        let is_dir = kind == FileType::Directory;
        if self.excludes.matched(&path, is_dir).is_ignore() {
            return None;
        }
        let sub = if is_dir {
            match dir.open_sub(name) {
                Ok(Some(sub)) => match sub.has(self.marker) {
                    Ok(true) => return None,
                    Ok(false) => Some(sub),
                    Err(e) => return fail(&e),
                },
                Ok(None) => return fail(&"vanished"),
                Err(e) => return fail(&e),
            }
        } else {
            None
        };
        let node_type = match kind {
            FileType::Directory => NodeType::Dir,
            FileType::Symlink => match rfs::readlinkat(dir.fd(), name, Vec::new()) {
                Ok(target) => NodeType::from_link(Path::new(OsStr::from_bytes(target.as_bytes()))),
                Err(e) => return fail(&std::io::Error::from(e)),
            },
            FileType::BlockDevice => NodeType::Dev { device: st.st_rdev },
            FileType::CharacterDevice => NodeType::Chardev { device: st.st_rdev },
            FileType::Fifo => NodeType::Fifo,
            FileType::Socket => NodeType::Socket,
            _ => NodeType::File,
        };
        let node = Node::new_node(name, node_type, metadata(&st, owners));
        Some(Ok((
            Found {
                path,
                node,
                root: dir.clone(),
            },
            sub,
        )))
    }
}

/// The names in `dir`, in reverse walk order.
fn names(dir: &Dir) -> Result<Vec<OsString>, String> {
    let mut names = dir.entries().map_err(|e| e.to_string())?;
    names.reverse();
    Ok(names)
}

/// What `LocalSource` stores by default: the access time is the modification
/// time, the device only for files with several names, sizes and link counts of
/// directories 0, the mode in Go's form (as restic writes it).
// `stat`'s field types differ between architectures.
#[allow(clippy::unnecessary_cast)]
fn metadata(st: &rfs::Stat, owners: &mut Owners) -> Metadata {
    let time = |s: i64, ns: u64| jiff::Timestamp::new(s, ns as i32).ok();
    let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
    let mtime = time(st.st_mtime as i64, st.st_mtime_nsec as u64);
    Metadata {
        mode: Some(go_mode(st.st_mode)),
        mtime,
        atime: mtime,
        ctime: time(st.st_ctime as i64, st.st_ctime_nsec as u64),
        uid: Some(st.st_uid),
        gid: Some(st.st_gid),
        user: owners.user(st.st_uid),
        group: owners.group(st.st_gid),
        inode: st.st_ino,
        device_id: if st.st_nlink > 1 && !is_dir {
            st.st_dev
        } else {
            0
        },
        size: if is_dir { 0 } else { st.st_size as u64 },
        links: if is_dir { 0 } else { st.st_nlink as u64 },
        extended_attributes: Vec::new(),
    }
}

/// A POSIX `st_mode` as Go's `fs.FileMode`: permission bits, the type as a high
/// bit, setuid, setgid and sticky as their own bits.
fn go_mode(mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const FIFO: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHARDEV: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    const IRREGULAR: u32 = 1 << 19;
    let kind = match FileType::from_raw_mode(mode) {
        FileType::RegularFile => 0,
        FileType::Directory => DIR,
        FileType::Symlink => SYMLINK,
        FileType::BlockDevice => DEVICE,
        // rustic_core writes a character device as Go's "device" bit alone.
        FileType::CharacterDevice => CHARDEV & DEVICE,
        FileType::Fifo => FIFO,
        FileType::Socket => SOCKET,
        FileType::Unknown => IRREGULAR,
    };
    let flag = |bit: u32, go: u32| if mode & bit != 0 { go } else { 0 };
    (mode & 0o777) | kind | flag(0o4000, SETUID) | flag(0o2000, SETGID) | flag(0o1000, STICKY)
}

/// User and group names by id, looked up once each.
#[derive(Default)]
struct Owners {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
}

impl Owners {
    fn user(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(uid.into())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }

    fn group(&mut self, gid: u32) -> Option<String> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(gid.into())
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .clone()
    }
}

/// Opens the files the walk found, and the folders they are in, through their
/// backed-up folder one directory at a time and never through a link; keeps the
/// last folder open (the walk hands out entries folder by folder).
#[derive(Default)]
pub(in crate::engine::rustic) struct Opener {
    last: Option<(PathBuf, Dir)>,
}

impl Opener {
    pub fn open(&mut self, root: &Dir, path: &Path) -> std::io::Result<File> {
        let (dir, name) = self.dir(root, path)?;
        dir.open_file(name)
    }

    /// The folder `path` is in, opened, and its name there.
    pub fn dir<'p>(&mut self, root: &Dir, path: &'p Path) -> std::io::Result<(&Dir, &'p OsStr)> {
        let invalid = || std::io::Error::from(std::io::ErrorKind::InvalidInput);
        let rel = path.strip_prefix(root.path()).map_err(|_| invalid())?;
        let (Some(parent), Some(name)) = (path.parent(), rel.file_name()) else {
            return Err(invalid());
        };
        if self.last.as_ref().is_none_or(|(at, _)| at != parent) {
            let dir = root
                .open_below(rel.parent().unwrap_or(Path::new("")))
                .map_err(|e| std::io::Error::other(e.to_string()))?
                .ok_or(std::io::ErrorKind::NotFound)?;
            self.last = Some((parent.to_path_buf(), dir));
        }
        let (_, dir) = self.last.as_ref().expect("set");
        Ok((dir, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walker<'a>(paths: &'a [PathBuf], excludes: &[&str]) -> Walker<'a> {
        let mut b = ignore::overrides::OverrideBuilder::new("");
        for e in excludes {
            b.add(&format!("!{e}")).unwrap();
        }
        b.case_insensitive(true).unwrap();
        Walker::new(paths, b.build().unwrap(), ".marker")
    }

    fn listing(w: &Walker<'_>) -> Vec<String> {
        let mut out = Vec::new();
        w.walk(|e| {
            out.push(match e {
                Ok(f) => f.path.display().to_string(),
                Err(e) => format!("error {e}"),
            });
            ControlFlow::Continue(())
        });
        out
    }

    /// Order, excludes, markers, a file as a backed-up path, a missing one.
    #[test]
    fn lists_as_rustic_core_does() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        for d in ["a/b", "a/skip", "a/marked/inner", "B"] {
            std::fs::create_dir_all(t.join(d)).unwrap();
        }
        for f in [
            "a/b/z",
            "a/b/é",
            "a/x.log",
            "a/x",
            "a/skip/f",
            "a/marked/.marker",
            "B/f",
        ] {
            std::fs::write(t.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("/etc", t.join("a/link")).unwrap();
        let paths = [t.join("a"), t.join("B/f"), t.join("missing")];
        let w = walker(&paths, &["*.log", "skip"]);
        let got = listing(&w);
        let at = |p: &str| t.join(p).display().to_string();
        let want = vec![
            at("a/b"),
            at("a/b/z"),
            at("a/b/é"),
            at("a/link"),
            at("a/x"),
            at("B/f"),
            format!("error {}: not found", at("missing")),
        ];
        assert_eq!(got, want);
        // Bytes of a/b/z, a/b/é, the link's target, a/x and B/f.
        assert_eq!(w.size(), 5 + 6 + 4 + 3 + 3);
    }

    /// Nodes equal rustic_core's for every kind of entry.
    #[test]
    fn nodes_equal_rustic_core_s() {
        use rustic_core::{LocalSource, ReadSource};
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().join("src");
        std::fs::create_dir_all(t.join("d")).unwrap();
        std::fs::write(t.join("f"), "data").unwrap();
        std::fs::hard_link(t.join("f"), t.join("d/again")).unwrap();
        std::os::unix::fs::symlink("f", t.join("l")).unwrap();
        std::os::unix::fs::symlink(OsStr::from_bytes(b"\xff"), t.join("raw")).unwrap();
        let fifo = t.join("p");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        std::fs::set_permissions(
            t.join("d"),
            std::os::unix::fs::PermissionsExt::from_mode(0o2751),
        )
        .unwrap();
        let paths = [t.clone()];
        let theirs = LocalSource::new(
            rustic_core::LocalSourceSaveOptions::default().set_xattrs(rustic_core::XattrOption::No),
            &Default::default(),
            &Default::default(),
            &paths,
        )
        .unwrap();
        let theirs: Vec<_> = theirs
            .entries()
            .map(|e| {
                let e = e.unwrap();
                (e.path, e.node)
            })
            .collect();
        let mut ours = Vec::new();
        walker(&paths, &[]).walk(|e| {
            let f = e.unwrap();
            ours.push((f.path, f.node));
            ControlFlow::Continue(())
        });
        assert_eq!(ours.len(), 6);
        assert_eq!(ours, theirs);
    }

    /// A file swapped for a link after the walk is not read through it, nor is a
    /// folder swapped for a link on the way to it.
    #[test]
    fn files_open_without_following_links() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        std::fs::create_dir_all(t.join("src/sub")).unwrap();
        std::fs::create_dir_all(t.join("secret")).unwrap();
        std::fs::write(t.join("secret/f"), "secret").unwrap();
        std::fs::write(t.join("src/sub/f"), "mine").unwrap();
        std::fs::write(t.join("src/g"), "mine").unwrap();
        let paths = [t.join("src")];
        let mut found = Vec::new();
        walker(&paths, &[]).walk(|e| {
            found.push(e.unwrap());
            ControlFlow::Continue(())
        });
        let file = |name: &str| found.iter().find(|f| f.path.ends_with(name)).unwrap();
        let read = |f: &Found| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut Opener::default().open(&f.root, &f.path)?, &mut s)?;
            Ok::<_, std::io::Error>(s)
        };
        assert_eq!(read(file("sub/f")).unwrap(), "mine");
        std::fs::remove_file(t.join("src/g")).unwrap();
        std::os::unix::fs::symlink(t.join("secret/f"), t.join("src/g")).unwrap();
        assert!(read(file("src/g")).is_err());
        std::fs::rename(t.join("src/sub"), t.join("src/old")).unwrap();
        std::os::unix::fs::symlink(t.join("secret"), t.join("src/sub")).unwrap();
        assert!(read(file("sub/f")).is_err());
    }
}
