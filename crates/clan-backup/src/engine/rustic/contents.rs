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
use std::os::unix::fs::FileExt;
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
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                s.spawn(|| -> Result<(), String> {
                    loop {
                        let job = rx.lock().expect("job queue").recv();
                        let Ok((path, node)) = job else {
                            return Ok(());
                        };
                        write_file(repo, &node, &path)
                            .map_err(|e| format!("restoring {}: {e}", path.display()))?;
                        progress.inc(node.meta.size);
                    }
                })
            })
            .collect();
        // Hard links: only the first path gets contents; rustic links the others to it.
        let mut linked = HashSet::new();
        let produce = || -> Result<(), String> {
            for item in nodes {
                let (path, node) = item.map_err(|e| e.to_string())?;
                let path = target(&path);
                match node.node_type {
                    NodeType::Dir => std::fs::create_dir_all(&path)
                        .map_err(|e| format!("creating {}: {e}", path.display()))?,
                    NodeType::File => {
                        let m = &node.meta;
                        if m.links > 1 && !linked.insert((m.device_id, m.inode)) {
                            progress.inc(m.size);
                            continue;
                        }
                        if tx.send((path, node)).is_err() {
                            break; // a worker failed: its error is reported below
                        }
                    }
                    _ => {}
                }
            }
            Ok(())
        };
        let produced = produce();
        drop(tx);
        for w in workers {
            w.join().expect("restore worker panicked")?;
        }
        produced
    })
}

fn write_file<S: IndexedFull>(repo: &Repository<S>, node: &Node, path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // A symlink in the way (a --target that is not empty) is replaced, not followed.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) {
        std::fs::remove_file(path)?;
    }
    let file = File::create(path)?;
    let mut w = Sparse { file, pos: 0 };
    for id in node.content.iter().flatten() {
        let data = repo
            .cat_blob(BlobType::Data, &id.to_hex())
            .map_err(io::Error::other)?;
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
        if buf.iter().any(|b| *b != 0) {
            self.file.write_all_at(buf, self.pos)?;
        }
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
