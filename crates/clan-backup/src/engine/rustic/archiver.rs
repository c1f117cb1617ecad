//! The engine's backup, on rustic_core's lower-level pieces.
//!
//! The walk (walker.rs) lists the source in path order, as rustic_core's
//! `LocalSource` does, through directory descriptors; the parent snapshot's trees
//! (parent.rs) tell which files are unchanged. Extended attributes are read here,
//! only where they may have changed.
//! Files unchanged since the parent snapshot keep its contents; the others go to
//! one worker per core plus one (to cover disk waits), each reading, chunking,
//! hashing, compressing and encrypting whole files and packing new blobs (whichever
//! worker fills a pack writes it). Trees are built in walk order on their own thread.
//! See bench/README.md for why rustic_core's own archiver was replaced: its chunker
//! tables were rebuilt per file, every blob was decrypted again, and its pipeline
//! ran ~28 threads on 2 cores.
//!
//! On disk, in order: packs, then the index files naming them, then the snapshot. A
//! backup killed at any point leaves packs without index (removed by the next prune)
//! or an index without snapshot (its blobs are reused by the next backup).

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rustic_core::repofile::{
    BlobType, ConfigFile, IndexFile, Metadata, Node, NodeType, SnapshotFile, SnapshotSummary, Tree,
};
use rustic_core::{
    BackupOptions, DataId, FileType, Id, OpenStatus, Repository, TreeId, WriteBackend,
};

mod parent;
mod walker;

use parent::{Parents, TreeAt, read_ahead, read_tree};
use walker::{Entry, Found, Opener, Walker};

use super::chunker::Chunker;
use super::pack::{Added, Encoder, Packer, Writer, sha256};
use super::{err, key};
use crate::engine::{EngineResult, ProgressSender, ProgressUpdate};
use crate::safe_fs::Dir;

/// What the repository holds already, from its index files. Data blobs are kept
/// apart, under a lock: the workers add what they store.
struct Known {
    trees: HashMap<Id, TreeAt>,
    data_bytes: u64,
    tree_bytes: u64,
}

fn load_index(repo: &Repository<OpenStatus>) -> EngineResult<(Known, HashSet<Id>)> {
    let mut data = HashSet::new();
    let mut known = Known {
        trees: HashMap::new(),
        data_bytes: 0,
        tree_bytes: 0,
    };
    for file in repo.stream_files::<IndexFile>().map_err(err)? {
        let (_, file) = file.map_err(err)?;
        // Packs marked for deletion (by a prune that delays it) do not count.
        for pack in file.packs {
            for blob in pack.blobs {
                let length = blob.location.length;
                match blob.tpe {
                    BlobType::Data => {
                        data.insert(*blob.id);
                        known.data_bytes += u64::from(length);
                    }
                    BlobType::Tree => {
                        known.trees.insert(
                            *blob.id,
                            TreeAt {
                                pack: *pack.id,
                                offset: blob.location.offset,
                                length,
                                uncompressed: blob.location.uncompressed_length.map(|n| n.get()),
                            },
                        );
                        known.tree_bytes += u64::from(length);
                    }
                }
            }
        }
    }
    Ok((known, data))
}

/// How a file compares with the parent snapshot.
#[derive(Clone, Copy, PartialEq)]
enum Seen {
    New,
    Changed,
    Unchanged,
}

/// A file a worker could not read is left out of the snapshot with a warning (as
/// rustic_core and restic do); a repository that cannot be written ends the backup.
enum Failure {
    Source(String),
    Repository(String),
}

type Contents = Result<Vec<DataId>, Failure>;

/// What the tree builder gets, in walk order.
enum Item {
    Enter(Node, Option<Id>),
    Leave,
    Entry(Node, Seen, Option<mpsc::Receiver<Contents>>),
}

struct Job {
    path: PathBuf,
    /// The backed-up folder the file is opened through.
    root: Arc<Dir>,
    done: mpsc::SyncSender<Contents>,
}

/// Bytes backed up so far, sent at most ten times a second.
struct Progress {
    tx: Option<Mutex<(ProgressSender, Instant)>>,
    done: AtomicU64,
    total: Mutex<Option<u64>>,
}

impl Progress {
    fn add(&self, bytes: u64, force: bool) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let Some(tx) = &self.tx else { return };
        let mut tx = tx.lock().expect("progress");
        if force || tx.1.elapsed() >= Duration::from_millis(100) {
            tx.1 = Instant::now();
            let _ = tx.0.send(ProgressUpdate {
                title: "backing up...".into(),
                done,
                total: *self.total.lock().expect("total"),
                bytes: true,
            });
        }
    }
}

pub struct Source<'a> {
    pub opts: &'a BackupOptions,
    pub paths: Vec<PathBuf>,
}

/// Backs up `source` as `snap` (its label, host, tags and description set); `None`
/// when the repository's chunker is one this archiver does not implement.
pub fn backup(
    repo: &Repository<OpenStatus>,
    be: Arc<dyn WriteBackend>,
    source: Source<'_>,
    mut snap: SnapshotFile,
    progress: Option<ProgressSender>,
) -> EngineResult<Option<SnapshotFile>> {
    let config = repo.config();
    if config.chunker() != rustic_core::repofile::Chunker::Rabin {
        return Ok(None);
    }
    let chunker = Chunker::new(
        config.poly().map_err(err)?,
        config.chunk_size(),
        config.chunk_min_size(),
        config.chunk_max_size(),
    )?;
    let key = key::master_bytes(&repo.key())?;
    let writer = Writer::new(be.clone(), key, config.zstd().map_err(err)?);
    let start = jiff::Zoned::now();

    for p in &source.paths {
        let s = p
            .to_str()
            .ok_or_else(|| format!("{} is not valid UTF-8", p.display()))?;
        snap.paths.add(s.to_string());
    }
    let excludes = source.opts.excludes.as_override().map_err(err)?;
    let walker = Walker::new(&source.paths, excludes, crate::scratch::MARKER);
    let progress = Progress {
        tx: progress.map(|tx| Mutex::new((tx, Instant::now()))),
        done: AtomicU64::new(0),
        total: Mutex::new(None),
    };
    // Entries and tree items travel in batches: one hand-off per entry cost a
    // context switch each (178k futex calls for an unchanged run of 40k files).
    let (entry_tx, entry_rx) = mpsc::sync_channel::<Vec<Entry>>(64);
    let (data, trees, root, mut summary) = std::thread::scope(|s| -> EngineResult<_> {
        // The walker lists (and reads metadata) on its own thread from the start:
        // the disk works while the snapshots and the index are read.
        let walker = &walker;
        s.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            walker.walk(|entry| {
                batch.push(entry);
                if batch.len() == BATCH
                    && entry_tx
                        .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                        .is_err()
                {
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            });
            let _ = entry_tx.send(batch);
        });
        // The parent: the newest snapshot of the same host and paths.
        let parent = repo
            .get_all_snapshots()
            .map_err(err)?
            .into_iter()
            .filter(|s| s.hostname == snap.hostname && s.paths == snap.paths)
            .max_by(|a, b| a.time.cmp(&b.time));
        if let Some(p) = &parent {
            snap.parent = Some(p.id);
            snap.parents = vec![p.id];
        }
        // The progress bar's total: the parent's size, or else a walk of its own
        // (one more pass over the metadata, which a re-run can do without).
        match parent.as_ref().and_then(|p| p.summary.as_ref()) {
            Some(sum) => *progress.total.lock().expect("total") = Some(sum.total_bytes_processed),
            None if !source.opts.no_scan => {
                s.spawn(|| *progress.total.lock().expect("total") = Some(walker.size()));
            }
            None => {}
        }
        let (known, stored) = load_index(repo)?;
        let parent_root = parent.as_ref().map(|p| *p.tree);
        archive(
            &writer,
            &be,
            &key,
            &chunker,
            &known,
            stored,
            parent_root,
            entry_rx,
            &progress,
            config,
        )
    })?;
    writer.finish()?;
    progress.add(0, true);

    summary.data_blobs = data.blobs;
    summary.tree_blobs = trees.blobs;
    summary.data_added_files = data.bytes;
    summary.data_added_files_packed = data.packed;
    summary.data_added_trees = trees.bytes;
    summary.data_added_trees_packed = trees.packed;
    summary.data_added = data.bytes + trees.bytes;
    summary.data_added_packed = data.packed + trees.packed;
    let end = jiff::Zoned::now();
    let seconds = |from: &jiff::Zoned| {
        end.since(from)
            .and_then(|d| d.total(jiff::Unit::Second))
            .unwrap_or_default()
    };
    summary.backup_duration = seconds(&start);
    summary.total_duration = seconds(&snap.time);
    summary.backup_start = start;
    summary.backup_end = end;
    snap.summary = Some(summary);
    snap.tree = TreeId::from(root);
    let json = serde_json::to_vec(&snap).map_err(|e| e.to_string())?;
    snap.id = writer.save_file(FileType::Snapshot, &json)?.into();
    Ok(Some(snap))
}

/// The backup once the index is read: files go to the workers, trees to the
/// builder; returns what the packers added, the root tree and the summary's counts.
#[allow(clippy::too_many_arguments)]
fn archive(
    writer: &Writer,
    be: &Arc<dyn WriteBackend>,
    key: &[u8; 64],
    chunker: &Chunker,
    known: &Known,
    stored: HashSet<Id>,
    parent_root: Option<Id>,
    entry_rx: mpsc::Receiver<Vec<Entry>>,
    progress: &Progress,
    config: &ConfigFile,
) -> EngineResult<(Added, Added, Id, SnapshotSummary)> {
    let stored = Mutex::new(stored);
    let pack_size = |tpe: BlobType, current: u64| {
        // Data packs of the restic CLI's size where the repository sets none (one
        // the restic CLI made): rustic_core's default is 32 MiB and growing, and
        // the packers hold up to three at once. clan's own repositories set
        // 4 MiB growing to 16 (`init`).
        if tpe == BlobType::Data && config.datapack_size.is_none() {
            return RESTIC_DATA_PACK;
        }
        let (size, grow, limit) = config.packsize(tpe);
        let size = u64::from(size) + u64::from(grow) * current.isqrt();
        size.min(u64::from(limit)) as usize
    };
    let data_packer = Packer::new(
        writer,
        BlobType::Data,
        pack_size(BlobType::Data, known.data_bytes),
    );
    let tree_packer = Packer::new(
        writer,
        BlobType::Tree,
        pack_size(BlobType::Tree, known.tree_bytes),
    );
    let stop = AtomicBool::new(false);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(workers * 2);
    let job_rx = Mutex::new(job_rx);
    let (item_tx, item_rx) = mpsc::sync_channel::<Vec<Item>>(16);
    let read = |id| read_tree(&**be, key, known, id);
    let (root, summary) = std::thread::scope(|s| -> EngineResult<_> {
        for _ in 0..workers {
            let mut encoder = Encoder::new(writer)?;
            let (job_rx, stored, stop, packer) = (&job_rx, &stored, &stop, &data_packer);
            s.spawn(move || {
                let mut opener = Opener::default();
                loop {
                    let job = job_rx.lock().expect("jobs").recv();
                    let Ok(job) = job else { return };
                    let result = if stop.load(Ordering::Relaxed) {
                        Err(Failure::Repository("stopped".into()))
                    } else {
                        let file = opener.open(&job.root, &job.path);
                        read_file(
                            &job.path,
                            file,
                            chunker,
                            &mut encoder,
                            stored,
                            packer,
                            progress,
                        )
                    };
                    let _ = job.done.send(result);
                }
            });
        }
        let (tree_packer, stop) = (&tree_packer, &stop);
        let builder = s.spawn(move || {
            let trees = build_trees(item_rx, writer, tree_packer, known, parent_root);
            if trees.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            trees
        });
        let read = &read;
        let ahead = parent_root.map(|root| {
            let (tx, rx) = mpsc::sync_channel(256);
            s.spawn(move || read_ahead(read, root, &tx));
            rx
        });
        let parents = Parents { ahead, read };
        walk(
            entry_rx.into_iter().flatten(),
            parents,
            &stored,
            parent_root,
            &job_tx,
            item_tx,
            progress,
        );
        drop(job_tx);
        Ok(builder.join().expect("tree builder")?)
    })?;
    Ok((data_packer.finish()?, tree_packer.finish()?, root, summary))
}

fn read_file(
    path: &Path,
    file: std::io::Result<std::fs::File>,
    chunker: &Chunker,
    encoder: &mut Encoder,
    stored: &Mutex<HashSet<Id>>,
    packer: &Packer<'_>,
    progress: &Progress,
) -> Contents {
    let source = |e: std::io::Error| Failure::Source(format!("{}: {e}", path.display()));
    let file = file.map_err(source)?;
    let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential);
    let mut ids = Vec::new();
    for chunk in chunker.chunks(file) {
        let chunk = chunk.map_err(source)?;
        let raw = sha256(&chunk);
        let id = Id::new(raw);
        if stored.lock().expect("stored").insert(id) {
            let blob = encoder.encode(&chunk).map_err(Failure::Repository)?;
            packer
                .add(raw, blob, chunk.len())
                .map_err(Failure::Repository)?;
        }
        progress.add(chunk.len() as u64, false);
        ids.push(DataId::from(id));
    }
    Ok(ids)
}

/// Walks the source in path order, opening and closing directories as the paths
/// ask (parents of the backed-up folders become bare directories, mode 755, as
/// rustic_core and restic store them) and sending files to the workers.
#[allow(clippy::too_many_arguments)]
fn walk(
    entries: impl Iterator<Item = Entry>,
    mut trees: Parents<'_>,
    stored: &Mutex<HashSet<Id>>,
    parent_root: Option<Id>,
    jobs: &mpsc::SyncSender<Job>,
    items: mpsc::SyncSender<Vec<Item>>,
    progress: &Progress,
) {
    let mut items = Batcher::new(items);
    let mut dirs = Opener::default();
    let mut open: Vec<PathBuf> = Vec::new();
    let mut parents = vec![trees.get(parent_root)];
    for entry in entries {
        let Found {
            path,
            mut node,
            root,
        } = match entry {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!("not backed up: {e}");
                continue;
            }
        };
        let dir = if node.is_dir() {
            read_xattrs(&mut dirs, &root, &path, &mut node.meta);
            path.clone()
        } else {
            match path.parent() {
                Some(p) => p.to_path_buf(),
                None => continue,
            }
        };
        while open.last().is_some_and(|top| !dir.starts_with(top)) {
            open.pop();
            parents.pop();
            if items.send(Item::Leave).is_err() {
                return;
            }
        }
        let mut at = open.last().cloned().unwrap_or_default();
        let rest = dir.strip_prefix(&at).unwrap_or(&dir).to_path_buf();
        for comp in rest.components() {
            at.push(comp);
            let Component::Normal(name) = comp else {
                continue;
            };
            let dir_node = if node.is_dir() && at == path {
                node.clone()
            } else {
                let meta = Metadata {
                    mode: Some(0o755),
                    ..Default::default()
                };
                Node::new_node(name, NodeType::Dir, meta)
            };
            let old = parents
                .last()
                .and_then(|p| p.get(&dir_node.name))
                .and_then(|n| n.subtree)
                .map(|t| *t);
            parents.push(trees.get(old));
            open.push(at.clone());
            if items.send(Item::Enter(dir_node, old)).is_err() {
                return;
            }
        }
        if node.is_dir() {
            continue;
        }
        let old = parents.last().and_then(|p| p.get(&node.name));
        let seen = match old {
            None => Seen::New,
            Some(o)
                if o.unchanged(&node) && {
                    let stored = stored.lock().expect("stored");
                    o.content.iter().flatten().all(|id| stored.contains(&**id))
                } =>
            {
                node.content.clone_from(&o.content);
                Seen::Unchanged
            }
            Some(_) => Seen::Changed,
        };
        // Listing them costs a syscall per file; setting one changes the ctime.
        let kept = old.is_some_and(|o| {
            seen == Seen::Unchanged
                && o.ctime.is_some()
                && o.ctime == node.meta.ctime
                && o.copy_xattrs(&mut node.meta)
        });
        if !kept {
            read_xattrs(&mut dirs, &root, &path, &mut node.meta);
        }
        let pending = if node.node_type == NodeType::File && seen != Seen::Unchanged {
            let (done, result) = mpsc::sync_channel(1);
            if jobs.send(Job { path, root, done }).is_err() {
                return;
            }
            Some(result)
        } else {
            if seen == Seen::Unchanged {
                progress.add(node.meta.size, false);
            }
            None
        };
        if items.send(Item::Entry(node, seen, pending)).is_err() {
            return;
        }
    }
    while open.pop().is_some() {
        if items.send(Item::Leave).is_err() {
            return;
        }
    }
    let _ = items.flush();
}

/// The extended attributes of `path` (a symlink's own), as rustic_core's walker
/// reads them: when they cannot be read, none, with a warning. Read by name in its
/// folder, opened as the walk opens it (a folder swapped for a link meanwhile is
/// not followed).
fn read_xattrs(dirs: &mut Opener, root: &Dir, path: &Path, meta: &mut Metadata) {
    let attrs = dirs.dir(root, path).and_then(|(dir, name)| {
        let attrs = super::xattrs(&dir.fd_path().join(name))?;
        let attrs: Vec<_> = attrs
            .into_iter()
            .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
            .collect();
        // rustic_core does not export the attribute's type; its serde form builds it.
        Ok(serde_json::from_value(attrs.into())?)
    });
    match attrs {
        Ok(attrs) => meta.extended_attributes = attrs,
        Err(e) => tracing::warn!("extended attributes of {} not read: {e}", path.display()),
    }
}

const BATCH: usize = 256;

/// The restic CLI's default `--pack-size`.
const RESTIC_DATA_PACK: usize = 16 << 20;

/// Sends items to the tree builder in batches.
struct Batcher {
    tx: mpsc::SyncSender<Vec<Item>>,
    batch: Vec<Item>,
}

impl Batcher {
    fn new(tx: mpsc::SyncSender<Vec<Item>>) -> Self {
        Self {
            tx,
            batch: Vec::with_capacity(BATCH),
        }
    }

    /// Fails when the builder has stopped.
    fn send(&mut self, item: Item) -> Result<(), ()> {
        self.batch.push(item);
        if self.batch.len() < BATCH {
            return Ok(());
        }
        self.flush()
    }

    fn flush(&mut self) -> Result<(), ()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.tx.send(batch).map_err(|_| ())
    }
}

/// Builds and stores the trees as the walk leaves directories; returns the root
/// tree's id and the summary's counts.
fn build_trees(
    items: mpsc::Receiver<Vec<Item>>,
    writer: &Writer,
    packer: &Packer<'_>,
    known: &Known,
    parent_root: Option<Id>,
) -> Result<(Id, SnapshotSummary), String> {
    let mut summary = SnapshotSummary::default();
    let mut encoder = Encoder::new(writer)?;
    let mut stored: HashSet<Id> = HashSet::new();
    let mut save = |tree: &Tree, old: Option<Id>, summary: &mut SnapshotSummary| {
        let (bytes, id) = tree.serialize().map_err(|e| e.to_string())?;
        let id = *id;
        summary.total_dirs_processed += 1;
        summary.total_dirsize_processed += bytes.len() as u64;
        match old {
            Some(o) if o == id => summary.dirs_unmodified += 1,
            Some(_) => summary.dirs_changed += 1,
            None => summary.dirs_new += 1,
        }
        if !known.trees.contains_key(&id) && stored.insert(id) {
            let blob = encoder.encode(&bytes)?;
            let raw = sha256(&bytes);
            packer.add(raw, blob, bytes.len())?;
        }
        Ok::<_, String>(id)
    };
    let mut stack: Vec<(Node, Option<Id>, Tree)> = Vec::new();
    let mut tree = Tree::default();
    for item in items.into_iter().flatten() {
        match item {
            Item::Enter(node, old) => stack.push((node, old, std::mem::take(&mut tree))),
            Item::Leave => {
                let (mut node, old, outer) = stack.pop().ok_or("the walk left the root")?;
                node.subtree = Some(save(&tree, old, &mut summary)?.into());
                tree = outer;
                tree.nodes.push(node);
            }
            Item::Entry(mut node, seen, pending) => {
                if let Some(result) = pending {
                    match result.recv() {
                        Ok(Ok(content)) => node.content = Some(content),
                        Ok(Err(Failure::Source(e))) => {
                            tracing::warn!("not backed up: {e}");
                            continue;
                        }
                        Ok(Err(Failure::Repository(e))) => return Err(e),
                        Err(_) => return Err("a backup worker ended".into()),
                    }
                }
                match seen {
                    Seen::New => summary.files_new += 1,
                    Seen::Changed => summary.files_changed += 1,
                    Seen::Unchanged => summary.files_unmodified += 1,
                }
                summary.total_files_processed += 1;
                summary.total_bytes_processed += node.meta.size;
                tree.nodes.push(node);
            }
        }
    }
    let root = save(&tree, parent_root, &mut summary)?;
    Ok((root, summary))
}

#[cfg(test)]
mod tests {
    use super::super::{Rustic, Source};
    use crate::engine::{Engine, RepoSpec};
    use std::path::{Path, PathBuf};

    fn tree(root: &Path) {
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        // Several chunks (512 KiB to 8 MiB each), one repeated inside another file.
        let big = crate::engine::tests::noise(9 << 20);
        std::fs::write(root.join("big.bin"), &big).unwrap();
        std::fs::write(root.join("sub/tail.bin"), &big[3 << 20..]).unwrap();
        for i in 0..50 {
            let at = i * 4099;
            std::fs::write(
                root.join(format!("sub/deeper/f{i}.txt")),
                &big[at..at + i * 97],
            )
            .unwrap();
        }
        std::fs::write(root.join("zero"), "").unwrap();
        std::os::unix::fs::symlink("big.bin", root.join("link")).unwrap();
        std::fs::hard_link(root.join("zero"), root.join("sub/zero-again")).unwrap();
    }

    /// An engine with a new repository in `dir`.
    fn engine(dir: &Path) -> Rustic {
        let pw = dir.join("pw");
        std::fs::write(&pw, "secret\n").unwrap();
        let engine = Rustic::new(RepoSpec {
            repository: dir.join("repo").display().to_string(),
            password_file: pw,
        });
        engine.ensure_initialized().unwrap();
        engine
    }

    fn source(paths: &[PathBuf]) -> Source<'_> {
        Source {
            paths,
            label: "m-x",
            host: "m",
            tags: &[],
            excludes: &[],
        }
    }

    /// Extended attributes are read by name in the folder the walk opened: a folder
    /// swapped for a link to one the user cannot read is not followed.
    #[test]
    fn extended_attributes_are_not_read_through_a_swapped_folder() {
        use super::{Opener, read_xattrs};
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        std::fs::create_dir_all(t.join("src/sub")).unwrap();
        std::fs::create_dir_all(t.join("secret")).unwrap();
        std::fs::write(t.join("src/sub/f"), "mine").unwrap();
        std::fs::write(t.join("secret/f"), "root's").unwrap();
        xattr::set(t.join("src/sub/f"), "user.mine", b"yes").unwrap();
        xattr::set(t.join("secret/f"), "user.secret", b"root's").unwrap();
        let root = crate::safe_fs::Dir::open(&t.join("src")).unwrap().unwrap();
        let names = |path: &Path| {
            let mut meta = rustic_core::repofile::Metadata::default();
            read_xattrs(&mut Opener::default(), &root, path, &mut meta);
            let names: Vec<String> = meta
                .extended_attributes
                .into_iter()
                .map(|a| a.name)
                .collect();
            names
        };
        assert_eq!(names(&t.join("src/sub/f")), ["user.mine"]);
        std::fs::rename(t.join("src/sub"), t.join("src/old")).unwrap();
        std::os::unix::fs::symlink(t.join("secret"), t.join("src/sub")).unwrap();
        assert_eq!(names(&t.join("src/sub/f")), Vec::<String>::new());
    }

    /// Extended attributes are read for new and changed files and taken from the
    /// parent for unchanged ones; setting one changes the file's ctime, so it is
    /// read again. The restore has them all.
    #[test]
    fn extended_attributes_follow_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        for f in ["kept", "set-later", "plain"] {
            std::fs::write(data.join(f), f).unwrap();
        }
        xattr::set(data.join("kept"), "user.clan", b"one").unwrap();
        xattr::set(&data, "user.folder", b"d").unwrap();
        let engine = engine(tmp.path());
        let paths = std::slice::from_ref(&data);
        engine.backup_with(true, &source(paths), None).unwrap();
        xattr::set(data.join("set-later"), "user.clan", b"two").unwrap();
        let second = engine.backup_with(true, &source(paths), None).unwrap();
        let s = second.summary.clone().unwrap();
        assert_eq!((s.files_unmodified, s.files_changed), (2, 1), "{s:?}");

        let dest = tmp.path().join("restored");
        engine
            .restore(&second.id.to_hex(), &data, &dest, None)
            .unwrap();
        let get = |f: &str, name: &str| xattr::get(dest.join(f), name).unwrap();
        assert_eq!(get("kept", "user.clan").as_deref(), Some(&b"one"[..]));
        assert_eq!(get("set-later", "user.clan").as_deref(), Some(&b"two"[..]));
        assert_eq!(xattr::list(dest.join("plain")).unwrap().count(), 0);
        assert_eq!(get("", "user.folder").as_deref(), Some(&b"d"[..]));
        assert_eq!(xattr::list(&dest).unwrap().count(), 1, "the folder's own");
    }

    /// Same chunks, same trees: data backed up by rustic_core's archiver is not
    /// stored again by ours, and an unchanged tree gets the very same tree ids.
    #[test]
    fn stores_what_rustic_core_stores() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        tree(&data);
        let engine = engine(tmp.path());
        let theirs = engine
            .backup_with(false, &source(std::slice::from_ref(&data)), None)
            .unwrap();
        let theirs_summary = theirs.summary.clone().unwrap();
        assert!(theirs_summary.data_blobs >= 10, "{theirs_summary:?}");

        // The same bytes at another path: no parent, every file read and chunked.
        let copy = tmp.path().join("copy");
        let status = std::process::Command::new("cp")
            .args(["-a"])
            .arg(&data)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success());
        let ours = engine
            .backup_with(true, &source(std::slice::from_ref(&copy)), None)
            .unwrap();
        let s = ours.summary.clone().unwrap();
        assert_eq!(s.files_new, 55, "{s:?}");
        assert_eq!(
            (s.data_blobs, s.data_added_files),
            (0, 0),
            "every chunk was cut where rustic_core cut it: {s:?}"
        );

        // The first path again, with rustic_core's snapshot as the parent.
        let again = engine
            .backup_with(true, &source(std::slice::from_ref(&data)), None)
            .unwrap();
        let s = again.summary.clone().unwrap();
        assert_eq!(again.parent, Some(theirs.id));
        assert_eq!(
            (s.files_unmodified, s.files_new, s.files_changed),
            (55, 0, 0)
        );
        assert_eq!(again.tree, theirs.tree, "{s:?}");
        assert_eq!((s.data_added, s.tree_blobs), (0, 0));

        // A changed file: only its new chunks are stored; the restic CLI checks it all.
        // A folder deleted before the others: its tree, read ahead, is skipped.
        std::fs::remove_dir(data.join("empty")).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(data.join("big.bin"))
            .unwrap();
        std::io::Write::write_all(&mut f, b"a new head").unwrap();
        drop(f);
        let changed = engine
            .backup_with(true, &source(std::slice::from_ref(&data)), None)
            .unwrap();
        let s = changed.summary.clone().unwrap();
        assert_eq!((s.files_changed, s.files_unmodified), (1, 54), "{s:?}");
        assert!(
            (1..=2).contains(&s.data_blobs),
            "only the first chunk is new: {s:?}"
        );
        let out = std::process::Command::new("restic")
            .args(["--no-cache", "-r"])
            .arg(tmp.path().join("repo"))
            .arg("--password-file")
            .arg(tmp.path().join("pw"))
            .args(["check", "--read-data"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dest = tmp.path().join("restored");
        engine
            .restore(&changed.id.to_hex(), &data, &dest, None)
            .unwrap();
        for f in ["big.bin", "sub/tail.bin", "sub/deeper/f49.txt", "zero"] {
            assert_eq!(
                std::fs::read(dest.join(f)).unwrap(),
                std::fs::read(data.join(f)).unwrap(),
                "{f}"
            );
        }
        assert_eq!(
            std::fs::read_link(dest.join("link")).unwrap(),
            Path::new("big.bin")
        );
    }
}
