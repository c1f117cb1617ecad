//! Writing a restic repository: blobs into pack files, packs into index files, and
//! other repository files (snapshots), in the format the restic CLI reads
//! (repository versions 1 and 2).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustic_core::repofile::BlobType;
use rustic_core::{FileType, Id, WriteBackend};
use sha2::Digest;

use super::key;

/// An index file is written once it lists this many blobs, or packs have waited
/// this long: a killed backup loses at most that much work (as restic and rustic).
const INDEX_BLOBS: usize = 50_000;
const INDEX_AGE: Duration = Duration::from_secs(300);

pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// Where repository files go, with the key and compression they are written with.
pub struct Writer {
    be: Arc<dyn WriteBackend>,
    key: [u8; 64],
    /// zstd's level for a version 2 repository (0: zstd's default); none for version 1.
    zstd: Option<i32>,
    index: Mutex<Index>,
}

struct Index {
    packs: Vec<IndexedPack>,
    blobs: usize,
    since: Instant,
}

impl Writer {
    pub fn new(be: Arc<dyn WriteBackend>, key: [u8; 64], zstd: Option<i32>) -> Self {
        Self {
            be,
            key,
            zstd,
            index: Mutex::new(Index {
                packs: Vec::new(),
                blobs: 0,
                since: Instant::now(),
            }),
        }
    }

    /// A repository file (JSON): compressed as the version asks, encrypted, stored
    /// under the hash of what is stored.
    pub fn save_file(&self, tpe: FileType, json: &[u8]) -> Result<Id, String> {
        let plain = match self.zstd {
            Some(level) => {
                let mut out = vec![2u8];
                out.extend(zstd::bulk::compress(json, level).map_err(|e| e.to_string())?);
                out
            }
            None => json.to_vec(),
        };
        let data = key::encrypt(&self.key, &plain)?;
        let id = Id::new(sha256(&data));
        self.be
            .write_bytes(tpe, &id, false, data.into())
            .map_err(|e| super::err(e).to_string())?;
        Ok(id)
    }

    fn indexed(&self, pack: IndexedPack, blobs: usize) -> Result<(), String> {
        let full = {
            let mut index = self.index.lock().expect("index");
            index.packs.push(pack);
            index.blobs += blobs;
            if index.blobs >= INDEX_BLOBS || index.since.elapsed() >= INDEX_AGE {
                index.blobs = 0;
                index.since = Instant::now();
                std::mem::take(&mut index.packs)
            } else {
                Vec::new()
            }
        };
        self.write_index(full)
    }

    fn write_index(&self, packs: Vec<IndexedPack>) -> Result<(), String> {
        if packs.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_vec(&serde_json::json!({ "packs": packs }))
            .map_err(|e| e.to_string())?;
        self.save_file(FileType::Index, &json).map(drop)
    }

    /// Writes the index of the packs written so far (after the packs themselves).
    pub fn finish(&self) -> Result<(), String> {
        let packs = std::mem::take(&mut self.index.lock().expect("index").packs);
        self.write_index(packs)
    }
}

/// A pack as an index file lists it (restic's format): kept until the index is
/// written, one per pack (as JSON values they took 20 MiB for 40,000 blobs).
#[derive(serde::Serialize)]
struct IndexedPack {
    id: Id,
    blobs: Vec<IndexedBlob>,
}

#[derive(serde::Serialize)]
struct IndexedBlob {
    id: Id,
    #[serde(rename = "type")]
    tpe: &'static str,
    offset: u32,
    length: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    uncompressed_length: Option<u32>,
}

/// Compresses, checks and encrypts blobs; one per worker (it keeps zstd's contexts).
pub struct Encoder {
    key: [u8; 64],
    compressor: Option<zstd::bulk::Compressor<'static>>,
    decompressor: zstd::bulk::Decompressor<'static>,
    check: Vec<u8>,
}

/// A blob as stored, and its length before compression (when compressed).
pub struct Encoded {
    pub data: Vec<u8>,
    pub uncompressed: Option<u32>,
}

impl Encoder {
    pub fn new(writer: &Writer) -> Result<Self, String> {
        let compressor = writer
            .zstd
            .map(zstd::bulk::Compressor::new)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            key: writer.key,
            compressor,
            decompressor: zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?,
            check: Vec::new(),
        })
    }

    /// The check: what was compressed decompresses to `plain` again (rustic_core
    /// also decrypted each blob again; the cipher's own tag guards that part on
    /// every read).
    pub fn encode(&mut self, plain: &[u8]) -> Result<Encoded, String> {
        let Some(compressor) = &mut self.compressor else {
            return Ok(Encoded {
                data: key::encrypt(&self.key, plain)?,
                uncompressed: None,
            });
        };
        // Compressed after room for the nonce, encrypted in place, with room for
        // the tag: one buffer per blob.
        let bound = zstd::zstd_safe::compress_bound(plain.len());
        let mut data = std::io::Cursor::new(Vec::with_capacity(16 + bound + 16));
        data.set_position(16);
        compressor
            .compress_to_buffer(plain, &mut data)
            .map_err(|e| format!("compressing: {e}"))?;
        let mut data = data.into_inner();
        self.check.resize(plain.len(), 0);
        let n = self
            .decompressor
            .decompress_to_buffer(&data[16..], &mut self.check[..])
            .map_err(|e| format!("checking a compressed blob: {e}"))?;
        if n != plain.len() || self.check != plain {
            return Err("a compressed blob did not decompress to its data again".into());
        }
        key::seal(&self.key, &mut data)?;
        Ok(Encoded {
            data,
            uncompressed: Some(u32::try_from(plain.len()).map_err(|e| e.to_string())?),
        })
    }
}

/// What a packer added to the repository.
#[derive(Default, Debug, Clone, Copy)]
pub struct Added {
    pub blobs: u64,
    /// Before compression.
    pub bytes: u64,
    /// As stored.
    pub packed: u64,
}

/// Collects blobs of one type into packs of about `target` bytes. Any thread may add;
/// the one that fills a pack writes it.
pub struct Packer<'a> {
    writer: &'a Writer,
    tpe: BlobType,
    target: usize,
    open: Mutex<Pack>,
    added: Mutex<Added>,
}

#[derive(Default)]
struct Pack {
    data: Vec<u8>,
    /// id, stored length, length before compression
    blobs: Vec<([u8; 32], u32, Option<u32>)>,
}

impl<'a> Packer<'a> {
    pub fn new(writer: &'a Writer, tpe: BlobType, target: usize) -> Self {
        Self {
            writer,
            tpe,
            target,
            open: Mutex::new(Pack::default()),
            added: Mutex::new(Added::default()),
        }
    }

    pub fn add(&self, id: [u8; 32], blob: Encoded, plain_len: usize) -> Result<(), String> {
        let stored = u32::try_from(blob.data.len()).map_err(|e| e.to_string())?;
        {
            let mut added = self.added.lock().expect("added");
            added.blobs += 1;
            added.bytes += plain_len as u64;
            added.packed += u64::from(stored);
        }
        let full = {
            let mut open = self.open.lock().expect("pack");
            if open.data.capacity() == 0 {
                open.data.reserve(self.target + self.target / 8);
            }
            open.data.extend_from_slice(&blob.data);
            open.blobs.push((id, stored, blob.uncompressed));
            (open.data.len() >= self.target).then(|| std::mem::take(&mut *open))
        };
        match full {
            Some(pack) => self.write(pack),
            None => Ok(()),
        }
    }

    /// Writes the last pack; returns what this packer added.
    pub fn finish(&self) -> Result<Added, String> {
        let pack = std::mem::take(&mut *self.open.lock().expect("pack"));
        if !pack.blobs.is_empty() {
            self.write(pack)?;
        }
        Ok(*self.added.lock().expect("added"))
    }

    /// Blobs, then the encrypted header (per blob: type, length, [length before
    /// compression], id), then the header's length; named by its hash, then indexed.
    fn write(&self, mut pack: Pack) -> Result<(), String> {
        let mut header = Vec::with_capacity(pack.blobs.len() * 41);
        let mut offset = 0u32;
        let mut index = Vec::with_capacity(pack.blobs.len());
        let tree = self.tpe == BlobType::Tree;
        for (id, len, uncompressed) in &pack.blobs {
            header.push(match (tree, uncompressed) {
                (false, None) => 0,
                (true, None) => 1,
                (false, Some(_)) => 2,
                (true, Some(_)) => 3,
            });
            header.extend_from_slice(&len.to_le_bytes());
            if let Some(u) = uncompressed {
                header.extend_from_slice(&u.to_le_bytes());
            }
            header.extend_from_slice(id);
            index.push(IndexedBlob {
                id: Id::new(*id),
                tpe: if tree { "tree" } else { "data" },
                offset,
                length: *len,
                uncompressed_length: *uncompressed,
            });
            offset += len;
        }
        let header = key::encrypt(&self.writer.key, &header)?;
        pack.data.extend_from_slice(&header);
        pack.data.extend_from_slice(
            &u32::try_from(header.len())
                .map_err(|e| e.to_string())?
                .to_le_bytes(),
        );
        let id = Id::new(sha256(&pack.data));
        self.writer
            .be
            .write_bytes(FileType::Pack, &id, tree, pack.data.into())
            .map_err(|e| super::err(e).to_string())?;
        let entry = IndexedPack { id, blobs: index };
        self.writer.indexed(entry, pack.blobs.len())
    }
}
