//! The scratch directory a restore fills inside a state folder, and the swap that
//! puts its contents in place without ever losing an entry.
//!
//! On disk, at every step (F is the state folder, S = `F/.clan-restore-<id>`,
//! root's, mode 0700, so nobody else can see into it or move things inside it):
//!
//! | phase (`S/.clan-scratch.json`) | F | S |
//! |---|---|---|
//! | `restoring` | untouched | `tree/` being filled by the provider |
//! | `swapping` | old entries leaving, then restored entries arriving | `names` (the restored entries), `old/` (F's entries), `tree/` (restored entries not yet moved) |
//! | `done` | the backup's contents and metadata | `old/` being removed |
//!
//! Every entry is in exactly one of F, `S/old`, `S/tree` at every moment (moves are
//! `renameat2(RENAME_NOREPLACE)` on one filesystem, so none replaces another). A
//! failure during the swap, or the next run after a kill, rolls back: restored
//! entries go back into `S/tree`, old ones back into F, F's own metadata as it was,
//! and S is removed. An old entry whose name someone reused meanwhile stays in
//! `S/old` and is named in the error; nothing is deleted that is not in the backup
//! being restored or in `S/tree`.
//!
//! The phase becomes `swapping` only after the filesystem is synced: from then on
//! the restored tree's contents are on disk, so a power cut during the swap or
//! after it cannot leave empty files where the old ones were.
//!
//! Only directories with the marker file, owned by root (or the user running clan)
//! and mode 0700, are clan's: anything else with that name is the user's and is
//! restored, backed up and left alone like any other entry. Every provider skips
//! directories holding the marker when it backs up.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use serde::{Deserialize, Serialize};

use crate::fault;
use crate::safe_fs::{Dir, DirMeta, Result, SafeFsError};

/// Prefix of scratch directories inside state folders.
pub const PREFIX: &str = ".clan-restore-";
/// The marker file that makes a directory clan's scratch directory; every provider
/// excludes directories holding it from backups.
pub const MARKER: &str = ".clan-scratch.json";

const TREE: &str = "tree";
const OLD: &str = "old";
const NAMES: &str = "names";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Phase {
    Restoring,
    Swapping,
    Done,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Journal {
    phase: Phase,
    /// The folder's own metadata before the restore; `None` when the restore
    /// created the folder.
    previous: Option<DirMeta>,
    /// The restored folder's own metadata (known once the swap begins).
    #[serde(default)]
    target: Option<DirMeta>,
}

/// A scratch directory inside a state folder.
pub struct Scratch {
    name: OsString,
    dir: Dir,
    journal: Journal,
}

/// What a roll-back could not put back: entries kept in the scratch directory.
#[derive(Debug)]
pub struct Kept(pub Vec<std::path::PathBuf>);

impl Scratch {
    /// Makes a new scratch directory in `folder`; `created` says whether the restore
    /// made the folder itself.
    pub fn create(folder: &Dir, created: bool) -> Result<Scratch> {
        let name = OsString::from(format!(
            "{PREFIX}{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        // Before the scratch directory changes the folder's mtime.
        let previous = if created { None } else { Some(folder.meta()?) };
        let dir = folder.create_sub(&name, 0o700)?;
        let journal = Journal {
            phase: Phase::Restoring,
            previous,
            target: None,
        };
        let s = Scratch { name, dir, journal };
        s.save()?;
        Ok(s)
    }

    fn save(&self) -> Result<()> {
        self.dir.write_file(
            OsStr::new(MARKER),
            &serde_json::to_vec(&self.journal).expect("serialises"),
        )
    }

    /// Where the provider puts the restored folder (a path to a directory that does
    /// not exist yet, reached through the open scratch directory).
    pub fn tree_path(&self) -> std::path::PathBuf {
        self.dir.fd_path().join(TREE)
    }

    /// The restored tree, once the provider made it.
    pub fn tree(&self) -> Result<Option<Dir>> {
        self.dir.open_sub(OsStr::new(TREE))
    }

    /// Entry `name` of `folder` if it is one of clan's scratch directories: the
    /// prefix, root's (or ours), mode 0700, with a journal.
    fn open(folder: &Dir, name: &OsStr) -> Option<Scratch> {
        if !name.as_bytes().starts_with(PREFIX.as_bytes()) {
            return None;
        }
        let dir = folder.open_sub(name).ok()??;
        let meta = dir.meta().ok()?;
        if meta.mode != 0o700 || !crate::safe_fs::trusted(meta.uid) {
            return None;
        }
        let journal = serde_json::from_slice(&dir.read_file(OsStr::new(MARKER)).ok()??).ok()?;
        Some(Scratch {
            name: name.to_os_string(),
            dir,
            journal,
        })
    }

    /// Makes `folder` hold exactly the restored tree: old entries out, restored
    /// ones in, the folder's metadata from the tree; rolls back on any failure.
    pub fn swap_in(mut self, folder: &Dir) -> Result<(), (SafeFsError, Kept)> {
        let prepared = (|| {
            let tree = self
                .dir
                .open_sub(OsStr::new(TREE))?
                .ok_or_else(|| SafeFsError::NotADirectory(self.dir.path().join(TREE)))?;
            // The restored files on disk before any live one leaves.
            tree.sync_fs()?;
            let names = tree.entries()?;
            let mut list = Vec::new();
            for n in &names {
                list.extend_from_slice(n.as_bytes());
                list.push(0);
            }
            self.dir.write_file(OsStr::new(NAMES), &list)?;
            let old = self.dir.create_sub(OsStr::new(OLD), 0o700)?;
            let meta = tree.meta()?;
            Ok((tree, names, old, meta))
        })();
        let (tree, names, old, meta) = prepared.map_err(|e| (e, Kept(Vec::new())))?;
        self.journal.phase = Phase::Swapping;
        self.journal.target = Some(meta.clone());
        self.save().map_err(|e| (e, Kept(Vec::new())))?;
        fault::point();
        let moved = (|| {
            for e in folder.entries()? {
                if e != self.name && Self::open(folder, &e).is_none() {
                    folder.move_to(&e, &old, &e)?;
                    fault::point();
                }
            }
            for n in &names {
                tree.move_to(n, folder, n)?;
                fault::point();
            }
            folder.set_meta(&meta)
        })();
        match moved {
            Ok(()) => {
                self.journal.phase = Phase::Done;
                // The restore is complete once this is saved; what follows is cleanup.
                let _ = self.save();
                fault::point();
                let _ = folder.remove(&self.name);
                // Removing the scratch directory changed the folder's mtime.
                let _ = folder.set_meta(&meta);
                Ok(())
            }
            Err(e) => Err((e, self.roll_back(folder))),
        }
    }

    /// Puts the folder back as it was before the swap (see the module's table).
    fn roll_back(self, folder: &Dir) -> Kept {
        let mut kept = Vec::new();
        let tree = match self.dir.open_sub(OsStr::new(TREE)) {
            Ok(Some(t)) => Some(t),
            _ => None,
        };
        if let (Some(tree), Ok(Some(list))) = (&tree, self.dir.read_file(OsStr::new(NAMES))) {
            for n in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
                let n = OsString::from_vec(n.to_vec());
                if !tree.has(&n).unwrap_or(true) && folder.has(&n).unwrap_or(false) {
                    let _ = folder.move_to(&n, tree, &n);
                }
            }
        }
        if let Ok(Some(old)) = self.dir.open_sub(OsStr::new(OLD)) {
            for e in old.entries().unwrap_or_default() {
                if old.move_to(&e, folder, &e).is_err() {
                    kept.push(old.path().join(&e));
                }
            }
        }
        if kept.is_empty() {
            let _ = folder.remove(&self.name);
        }
        let _ = put_back(folder, self.journal.previous);
        Kept(kept)
    }

    /// Discards a scratch directory whose swap never began.
    pub fn discard(self, folder: &Dir) -> Result<()> {
        folder.remove(&self.name)?;
        put_back(folder, self.journal.previous)
    }

    /// Finishes what an interrupted run left in `folder`: scratch directories
    /// still restoring are removed, swaps are rolled back, finished ones cleaned up.
    /// Returns entries that could not be put back (kept in place, named).
    pub fn recover(folder: &Dir) -> Result<Vec<std::path::PathBuf>> {
        let mut kept = Vec::new();
        for s in folder
            .entries()?
            .iter()
            .filter_map(|n| Self::open(folder, n))
        {
            match s.journal.phase {
                Phase::Restoring => s.discard(folder)?,
                Phase::Done => {
                    folder.remove(&s.name)?;
                    put_back(folder, s.journal.target)?;
                }
                Phase::Swapping => kept.extend(s.roll_back(folder).0),
            }
        }
        Ok(kept)
    }
}

/// The folder's own metadata once a scratch directory is gone (making or removing
/// one changes the folder's mtime).
fn put_back(folder: &Dir, meta: Option<DirMeta>) -> Result<()> {
    match meta {
        Some(m) => folder.set_meta(&m),
        None => Ok(()),
    }
}
