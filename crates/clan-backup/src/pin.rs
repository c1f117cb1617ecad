//! Pins state folders for the calling thread, for code that reads them by path in
//! this thread and the threads it starts (the embedded engine's source walker).
//!
//! In a mount namespace of the thread's own, each folder is a copy of the mount of
//! the directory clan opened safely, mounted at the folder's own path with
//! symbolic links inside it not followed (`nosymfollow`). A directory on the way
//! whose entries another user can change (`/home/alice` for
//! `/home/alice/documents`) is covered by a private tmpfs that holds only the way
//! to what is pinned. Swapping the folder, a parent or a subdirectory for a link
//! then changes nothing the thread sees. Root only; a no-op otherwise.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fd::OwnedFd;
use rustix::fs::{CWD, Mode, OFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags};

use crate::safe_fs::{Dir, Result, SafeFsError};

/// Pins `folders` (directories; missing ones are left out) for this thread. `also`
/// are other paths the thread needs (a repository, a password file): they stay
/// reachable when they lie below a directory that gets covered. False when mount
/// namespaces cannot be made here (not root, or no CAP_SYS_ADMIN): nothing pinned.
pub fn this_thread(folders: &[PathBuf], also: &[PathBuf]) -> Result<bool> {
    if !clan_core::process::private_mounts_available() {
        return Ok(false);
    }
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |e: rustix::io::Errno| SafeFsError::Io {
            path,
            source: e.into(),
        }
    };
    // Copies of the mounts, taken in the machine's namespace (a mount of another
    // namespace cannot be copied from the new one).
    let mut pins: Vec<(PathBuf, OwnedFd, bool)> = Vec::new();
    for f in folders {
        let Some(dir) = Dir::open(f)? else { continue };
        pins.push((f.clone(), copy(dir.fd()).map_err(fail(f))?, true));
    }
    let covered: Vec<PathBuf> = pins
        .iter()
        .filter_map(|(f, _, _)| changeable_parent(f))
        .collect();
    for p in also {
        if !covered.iter().any(|c| p.starts_with(c)) {
            continue;
        }
        let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
            continue;
        };
        let Some(dir) = Dir::open(parent)? else {
            continue;
        };
        let Ok(fd) = rustix::fs::openat(
            dir.fd(),
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        pins.push((p.clone(), copy(&fd).map_err(fail(p))?, false));
    }
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).expect("no NUL in a path");

    // SAFETY: a new mount namespace (and so a filesystem context of its own) for
    // this thread only; nothing else of the thread's state changes.
    #[allow(unsafe_code)]
    unsafe {
        rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS)
            .map_err(fail(Path::new("/")))?;
    }
    rustix::mount::mount_change(
        c"/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(fail(Path::new("/")))?;
    let mut tmpfs: Vec<&PathBuf> = covered.iter().collect();
    tmpfs.sort();
    tmpfs.dedup();
    for dir in &tmpfs {
        rustix::mount::mount(
            c"tmpfs",
            c(dir).as_c_str(),
            c"tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            c"mode=0755",
        )
        .map_err(fail(dir))?;
    }
    for (path, tree, folder) in &pins {
        // Under a tmpfs: the way to it, then a mount point of its kind.
        if let Some(top) = tmpfs.iter().find(|t| path.starts_with(t)) {
            let below = path.strip_prefix(top).expect("below");
            let mut at = top.to_path_buf();
            let parts: Vec<_> = below.components().collect();
            for (i, part) in parts.iter().enumerate() {
                at.push(part);
                let last = i + 1 == parts.len();
                let made = if last && !*folder && !is_dir(tree) {
                    rustix::fs::open(
                        c(&at).as_c_str(),
                        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                    .map(drop)
                } else {
                    rustix::fs::mkdir(c(&at).as_c_str(), Mode::from_raw_mode(0o755))
                };
                match made {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(fail(&at)(e)),
                }
            }
        }
        rustix::mount::move_mount(
            tree,
            c"",
            CWD,
            c(path).as_c_str(),
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(fail(path))?;
        if *folder {
            rustix::mount::mount_remount(
                c(path).as_c_str(),
                MountFlags::BIND | MountFlags::NOSYMFOLLOW,
                c"",
            )
            .map_err(fail(path))?;
        }
    }
    Ok(true)
}

/// A detached copy of the mount (and the mounts below it) at `fd`.
fn copy(fd: &OwnedFd) -> rustix::io::Result<OwnedFd> {
    rustix::mount::open_tree(
        fd,
        c"",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH
            | OpenTreeFlags::AT_RECURSIVE,
    )
}

fn is_dir(fd: &OwnedFd) -> bool {
    rustix::fs::fstat(fd).is_ok_and(|s| {
        rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Directory
    })
}

/// The first directory on the way to `folder` whose entry for the next step
/// someone other than root (or clan's user) could rename or replace.
fn changeable_parent(folder: &Path) -> Option<PathBuf> {
    use crate::safe_fs::trusted;
    let mut dir = PathBuf::from("/");
    for part in folder.strip_prefix("/").ok()?.components() {
        let next = dir.join(part);
        let d = std::fs::metadata(&dir).ok()?;
        let shared = d.mode() & 0o022 != 0;
        let sticky = d.mode() & 0o1000 != 0;
        let entry_owner = std::fs::symlink_metadata(&next)
            .map(|m| m.uid())
            .unwrap_or(0);
        if !trusted(d.uid()) || (shared && (!sticky || !trusted(entry_owner))) {
            return Some(dir);
        }
        dir = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_first_directory_others_can_change_is_found() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home/alice");
        std::fs::create_dir_all(home.join("docs")).unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(changeable_parent(&home.join("docs")), None);
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&home, Some(4242), Some(4242)).unwrap();
            assert_eq!(changeable_parent(&home.join("docs")), Some(home.clone()));
        }
        std::fs::set_permissions(
            tmp.path().join("home"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        assert_eq!(
            changeable_parent(&home.join("docs")),
            Some(tmp.path().join("home"))
        );
    }
}
