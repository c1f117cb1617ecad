//! The parent snapshot's trees, as the walk compares files with them.
//!
//! Only what the comparison needs is parsed: rustic_core's `Node` (flattened,
//! internally tagged) made serde buffer every field of every node, which was a
//! quarter of an unchanged run's CPU.

use std::sync::mpsc;

use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{DataId, FileType, Id, TreeId, WriteBackend};
use serde::Deserialize;

use super::super::{err, key};
use super::Known;

/// Where a tree blob is stored.
pub(super) struct TreeAt {
    pub pack: Id,
    pub offset: u32,
    pub length: u32,
    pub uncompressed: Option<u32>,
}

/// A node of the parent snapshot: what tells an unchanged file, and what it keeps.
#[derive(Deserialize)]
pub(super) struct OldNode {
    pub name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    linktarget: Option<String>,
    #[serde(default)]
    linktarget_raw: Option<String>,
    #[serde(default)]
    device: u64,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    mtime: Option<jiff::Timestamp>,
    #[serde(default)]
    pub ctime: Option<jiff::Timestamp>,
    #[serde(default)]
    inode: u64,
    #[serde(default)]
    pub content: Option<Vec<DataId>>,
    #[serde(default)]
    pub subtree: Option<TreeId>,
    #[serde(default)]
    extended_attributes: Option<serde_json::Value>,
}

impl OldNode {
    /// restic's test for an unchanged file: type, size, mtime, ctime and inode.
    pub fn unchanged(&self, new: &Node) -> bool {
        let n = &new.meta;
        self.same_type(&new.node_type)
            && self.size == n.size
            && self.mtime == n.mtime
            && self.ctime.zip(n.ctime).is_none_or(|(a, b)| a == b)
            && (self.inode == 0 || n.inode == 0 || self.inode == n.inode)
    }

    fn same_type(&self, t: &NodeType) -> bool {
        match t {
            NodeType::File => self.kind == "file",
            NodeType::Dir => self.kind == "dir",
            // A target that is not UTF-8 (stored as bytes) counts as changed.
            NodeType::Symlink {
                linktarget,
                linktarget_raw,
            } => {
                self.kind == "symlink"
                    && linktarget_raw.is_none()
                    && self.linktarget_raw.is_none()
                    && self.linktarget.as_ref() == Some(linktarget)
            }
            NodeType::Dev { device } => self.kind == "dev" && self.device == *device,
            NodeType::Chardev { device } => self.kind == "chardev" && self.device == *device,
            NodeType::Fifo => self.kind == "fifo",
            NodeType::Socket => self.kind == "socket",
        }
    }

    /// Gives `meta` this node's extended attributes; `false` when they cannot be
    /// read from the snapshot (then they are read from the file).
    pub fn copy_xattrs(&self, meta: &mut Metadata) -> bool {
        let Some(attrs) = &self.extended_attributes else {
            meta.extended_attributes.clear();
            return true;
        };
        // rustic_core does not export the attribute's type; its serde form builds it.
        match serde_json::from_value(attrs.clone()) {
            Ok(attrs) => {
                meta.extended_attributes = attrs;
                true
            }
            Err(_) => false,
        }
    }
}

#[derive(Deserialize)]
struct OldTree {
    #[serde(default)]
    nodes: Option<Vec<OldNode>>,
}

/// The nodes of a tree blob: `None`, with a warning, when it cannot be read (the
/// parent then counts as absent there, and files are read again).
pub(super) fn read_tree(
    be: &dyn WriteBackend,
    key: &[u8; 64],
    known: &Known,
    id: Id,
) -> Option<Vec<OldNode>> {
    let result = (|| {
        let at = known.trees.get(&id).ok_or("not in the index")?;
        let data = be
            .read_partial(FileType::Pack, &at.pack, true, at.offset, at.length)
            .map_err(|e| err(e).to_string())?;
        let plain = key::decrypt(key, &data).ok_or("it failed its authentication")?;
        let json = match at.uncompressed {
            Some(n) => zstd::bulk::decompress(&plain, n as usize).map_err(|e| e.to_string())?,
            None => plain,
        };
        serde_json::from_slice::<OldTree>(&json).map_err(|e| e.to_string())
    })();
    result
        .inspect_err(|e: &String| {
            tracing::warn!(
                "not using the parent snapshot's tree {}: {e}",
                id.to_hex().as_str()
            )
        })
        .ok()
        .map(|t| t.nodes.unwrap_or_default())
}

/// The parent snapshot's directory at the walk's position (`None` where it had
/// none), sorted by name.
pub(super) struct ParentDir(pub Option<Vec<OldNode>>);

impl ParentDir {
    fn new(mut nodes: Vec<OldNode>) -> Self {
        // restic and rustic_core store nodes sorted; another writer might not.
        if !nodes.is_sorted_by(|a, b| a.name <= b.name) {
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Self(Some(nodes))
    }

    pub fn get(&self, name: &str) -> Option<&OldNode> {
        let nodes = self.0.as_ref()?;
        let at = nodes.binary_search_by(|n| n.name.as_str().cmp(name)).ok()?;
        nodes.get(at)
    }
}

/// Reads the parent snapshot's trees on their own thread, depth first in name order,
/// which is the order the walk asks for them (both sort names as bytes). Trees the
/// walk skips (folders gone since) are dropped; should the orders ever differ, the
/// walk reads trees itself.
pub(super) struct Parents<'a> {
    pub ahead: Option<mpsc::Receiver<(Id, ParentDir)>>,
    pub read: &'a dyn Fn(Id) -> Option<Vec<OldNode>>,
}

impl Parents<'_> {
    pub fn get(&mut self, id: Option<Id>) -> ParentDir {
        let Some(id) = id else {
            return ParentDir(None);
        };
        if let Some(ahead) = &self.ahead {
            if let Some((_, dir)) = ahead.iter().find(|(got, _)| *got == id) {
                return dir;
            }
            self.ahead = None;
        }
        (self.read)(id).map_or(ParentDir(None), ParentDir::new)
    }
}

/// Sends the trees below `id` (itself first) in the order the walk needs them;
/// fails when the walk no longer listens.
pub(super) fn read_ahead(
    read: &dyn Fn(Id) -> Option<Vec<OldNode>>,
    id: Id,
    tx: &mpsc::SyncSender<(Id, ParentDir)>,
) -> Result<(), ()> {
    let Some(nodes) = read(id) else {
        return tx.send((id, ParentDir(None))).map_err(|_| ());
    };
    let dir = ParentDir::new(nodes);
    let subtrees: Vec<Id> = dir
        .0
        .iter()
        .flatten()
        .filter_map(|n| n.subtree)
        .map(|t| *t)
        .collect();
    tx.send((id, dir)).map_err(|_| ())?;
    subtrees
        .into_iter()
        .try_for_each(|sub| read_ahead(read, sub, tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> OldNode {
        serde_json::from_value(serde_json::json!({"name": name, "type": "file"})).unwrap()
    }

    /// Trees the walk skips are dropped; one asked for out of order is read directly.
    #[test]
    fn parents_read_ahead_in_walk_order() {
        let id = |n: u8| Id::new([n; 32]);
        let (tx, rx) = mpsc::sync_channel(8);
        for n in 1..=3 {
            tx.send((id(n), ParentDir::new(vec![node(&format!("ahead{n}"))])))
                .unwrap();
        }
        drop(tx);
        let read = |i: Id| (i == id(1)).then(|| vec![node("read")]);
        let mut parents = Parents {
            ahead: Some(rx),
            read: &read,
        };
        assert!(parents.get(None).0.is_none());
        assert!(parents.get(Some(id(2))).get("ahead2").is_some());
        assert!(parents.get(Some(id(1))).get("read").is_some());
        assert!(
            parents.ahead.is_none(),
            "out of order: the rest is read directly"
        );
        assert!(parents.get(Some(id(3))).0.is_none());
    }

    /// What rustic_core writes is what is compared: a node serialized by it, read
    /// back here, is unchanged against itself and changed when any part of the
    /// test differs. Names are found in a directory stored out of order.
    #[test]
    fn old_nodes_compare_as_restic_does() {
        let meta = Metadata {
            mode: Some(0o644),
            mtime: Some("2026-01-02T03:04:05.123456789Z".parse().unwrap()),
            ctime: Some("2026-01-02T03:04:06Z".parse().unwrap()),
            inode: 42,
            size: 1000,
            ..Default::default()
        };
        let file = Node::new_node("f".as_ref(), NodeType::File, meta.clone());
        let link = Node::new_node(
            "l".as_ref(),
            NodeType::from_link(std::path::Path::new("target")),
            meta,
        );
        let read = |n: &Node| -> OldNode {
            serde_json::from_slice(&serde_json::to_vec(n).unwrap()).unwrap()
        };
        for n in [&file, &link] {
            assert!(read(n).unchanged(n), "{}", n.name);
        }
        let mut other = file.clone();
        other.meta.size += 1;
        assert!(!read(&file).unchanged(&other));
        let mut other = file.clone();
        other.meta.mtime = Some("2026-01-02T03:04:05Z".parse().unwrap());
        assert!(!read(&file).unchanged(&other));
        let mut other = file.clone();
        other.meta.inode = 7;
        assert!(!read(&file).unchanged(&other));
        let mut other = link.clone();
        other.node_type = NodeType::from_link(std::path::Path::new("elsewhere"));
        assert!(!read(&link).unchanged(&other));
        assert!(!read(&link).unchanged(&file), "type");

        let dir = ParentDir::new(vec![node("b"), node("c"), node("a")]);
        assert!(["a", "b", "c"].iter().all(|n| dir.get(n).is_some()));
        assert!(dir.get("d").is_none());
    }
}
