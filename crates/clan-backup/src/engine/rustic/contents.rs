//! Writes restored files' contents a few files at a time.
//!
//! rustic_core's restorer reads up to 20 pack ranges at once and queues their decoded
//! blobs while the disk writes: ~500 MiB on the 2 GB bench/ dataset, against the
//! restic CLI's ~140 MiB. Here each of a few workers writes one file at a time, one blob
//! at a time (uncached), so memory stays at one blob per worker. Every file is
//! left with its size and mtime, which rustic's restore takes as "already present":
//! it then only creates links and special files and sets owners, modes and times.

use std::collections::HashSet;
use std::fs::{File, FileTimes};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};

use rustic_core::repofile::{BlobType, Node, NodeType};
use rustic_core::{IndexedFull, Progress, Repository, RusticResult};

/// Measured on the bench/ dataset (2 cores): 1 worker 12.9 s, 2–3 about 10 s
/// (60–75 MiB), 4 or more no faster and more memory.
const WORKERS: usize = 3;

/// Writes the contents of the files in `nodes` (as `Repository::ls` streams them)
/// below `dest` (or into `dest` itself when the restored node is one file).
pub fn write<S: IndexedFull + Sync>(
    repo: &Repository<S>,
    nodes: impl Iterator<Item = RusticResult<(PathBuf, Node)>>,
    dest: &Path,
    single_file: bool,
    progress: &Progress,
) -> Result<(), String> {
    let target = |path: &Path| {
        if single_file {
            dest.to_path_buf()
        } else {
            dest.join(path)
        }
    };
    let (tx, rx) = mpsc::sync_channel::<(PathBuf, Node)>(WORKERS * 4);
    let rx = Mutex::new(rx);
    // The first failure; after it, workers only drain the queue so the producer
    // never blocks, and the producer stops.
    let failed: Mutex<Option<String>> = Mutex::new(None);
    let fail = |e: String| {
        failed.lock().expect("failure").get_or_insert(e);
    };
    let has_failed = || failed.lock().expect("failure").is_some();
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    // The lock is held for the receive only, not while writing.
                    let job = rx.lock().expect("job queue").recv();
                    let Ok((path, node)) = job else {
                        return;
                    };
                    if has_failed() {
                        continue;
                    }
                    match write_file(repo, &node, &path) {
                        Ok(()) => progress.inc(node.meta.size),
                        Err(e) => fail(format!("restoring {}: {e}", path.display())),
                    }
                }
            });
        }
        // Hard links: only the first path gets contents; rustic links the others to it.
        let mut linked = HashSet::new();
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
                // Streamed before their contents.
                NodeType::Dir => {
                    if let Err(e) = std::fs::create_dir_all(&path) {
                        fail(format!("creating {}: {e}", path.display()));
                    }
                }
                NodeType::File => {
                    let m = &node.meta;
                    if m.links > 1 && !linked.insert((m.device_id, m.inode)) {
                        progress.inc(m.size);
                    } else {
                        tx.send((path, node))
                            .expect("workers run until the queue closes");
                    }
                }
                _ => {}
            }
        }
        drop(tx);
    });
    failed.into_inner().expect("failure").map_or(Ok(()), Err)
}

fn write_file<S: IndexedFull>(repo: &Repository<S>, node: &Node, path: &Path) -> io::Result<()> {
    // A symlink in the way (a --target that is not empty) is replaced, not followed.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) {
        std::fs::remove_file(path)?;
    }
    let file = File::create(path)?;
    let mut w = Sparse { file, pos: 0 };
    for id in node.content.iter().flatten() {
        let data = repo
            .cat_blob(BlobType::Data, &id.to_hex())
            .map_err(|e| io::Error::other(super::err(e)))?;
        w.write_all(&data)?;
    }
    w.file.set_len(w.pos)?;
    if let Some(mtime) = node.meta.mtime {
        w.file
            .set_times(FileTimes::new().set_modified(mtime.into()))?;
    }
    Ok(())
}

/// Skips runs of zeros (they stay holes), like a sparse copy.
struct Sparse {
    file: File,
    pos: u64,
}

impl Write for Sparse {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::tree::write_sparse_at(&self.file, buf, self.pos)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
