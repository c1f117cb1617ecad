//! Benchmark data, the same for the same seed on every machine.
//!
//! `bench-dataset generate DIR [SEED] [DIVISOR]` writes about 2 GiB (divided by
//! DIVISOR, default 1, for a quick try of a benchmark script):
//!   docs/dNN/sNN/fNNNNN.txt  40,000 word-text files of 1-20 KiB in 400 directories
//!                            (every 50th a copy of another: duplicated small files)
//!   media/random-N.bin       3 x 256 MiB incompressible
//!   logs/app-N.log           2 x 256 MiB log-like text (compressible)
//!   db/pgdata.bin            256 MiB of 8 KiB pages, each part random, part zero
//!   media/random-0-head.bin  the first 64 MiB of random-0.bin (duplicated large content)
//!
//! `bench-dataset change DIR SEED` changes about 1%: appends a line to 400 small
//! files, rewrites 50, adds 20 and deletes 20; overwrites 8 MiB in the middle of a
//! random file; appends 4 MiB to a log; rewrites 4 KiB in 328 pages of pgdata.bin.
//!
//! `bench-dataset generate DIR SEED DIVISOR tiny` writes the second shape, about
//! 0.7 GiB:
//!   mail/uNN/fNN/mNNNNNN     80,000 text files of 0-4 KiB (most under 1 KiB) in 800
//!                            directories, like a maildir
//!   images/disk-N.img        2 x 320 MiB disk images of 64 KiB blocks: a third zero,
//!                            a third incompressible, a third text
//! and `bench-dataset change DIR SEED` (a tree with images/) appends to 800 small
//! files, adds 400 and deletes 400, and rewrites 4 KiB at 50 places in each image.
//!
//! `bench-dataset fingerprint DIR [CACHE]` prints one line per entry below DIR, sorted:
//! path, type, size, mode, owner, group, mtime (ns), link target and the SHA-256 of a
//! file's contents. Two trees are the same (for a restore check) when their prints
//! are. With CACHE (a file it reads and rewrites), a file whose inode, size, mtime
//! and ctime are those of its cached line is not read again: the benchmark prints
//! its source after each change without reading 2 GiB from a cold disk.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;
const DIRS: u32 = 20;

/// splitmix64: tiny, fast, and fully determined by the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A vocabulary of pronounceable words, so text compresses like text.
fn vocabulary(rng: &mut Rng) -> Vec<String> {
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ra", "te", "su", "no", "vi", "da", "pe", "ro", "an", "el", "is", "or",
        "un", "ba", "ce", "fi", "go", "hu", "je", "ly", "zo",
    ];
    (0..4096)
        .map(|_| {
            (0..1 + rng.below(4))
                .map(|_| SYLLABLES[rng.below(SYLLABLES.len() as u64) as usize])
                .collect()
        })
        .collect()
}

fn text(rng: &mut Rng, words: &[String], bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 32);
    while out.len() < bytes {
        let w = &words[rng.below(words.len() as u64) as usize];
        out.extend_from_slice(w.as_bytes());
        out.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
    }
    out.truncate(bytes);
    out
}

fn small_path(dir: &Path, i: u32) -> PathBuf {
    dir.join(format!(
        "docs/d{:02}/s{:02}/f{i:05}.txt",
        i % DIRS,
        (i / DIRS) % DIRS
    ))
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create directory");
    std::fs::write(path, content).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn big(path: &Path, size: u64, mut block: impl FnMut(&mut [u8])) {
    std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create directory");
    let mut out = BufWriter::with_capacity(MIB as usize, File::create(path).expect("create"));
    let mut buf = vec![0u8; 8192];
    for _ in 0..size / 8192 {
        block(&mut buf);
        out.write_all(&buf).expect("write");
    }
    out.flush().expect("flush");
}

fn log_lines(rng: &mut Rng, words: &[String], n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..n {
        let level = ["INFO", "WARN", "DEBUG", "ERROR"][rng.below(4) as usize];
        let len = 40 + rng.below(80) as usize;
        let msg = text(rng, words, len);
        out.extend_from_slice(
            format!(
                "2026-11-{:02}T{:02}:{:02}:{:02}Z {level} worker-{} ",
                1 + rng.below(28),
                rng.below(24),
                rng.below(60),
                rng.below(60),
                rng.below(16)
            )
            .as_bytes(),
        );
        out.extend(msg.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
        out.push(b'\n');
    }
    out
}

/// An 8 KiB page: a random head (rows), the rest zero (free space).
fn page(rng: &mut Rng, buf: &mut [u8]) {
    let used = 512 + rng.below(buf.len() as u64 - 512) as usize;
    rng.fill(&mut buf[..used]);
    buf[used..].fill(0);
}

fn generate(dir: &Path, seed: u64, divisor: u64) {
    let mut rng = Rng(seed);
    let words = vocabulary(&mut rng);
    let large = 256 * MIB / divisor;
    for i in 0..(40_000 / divisor) as u32 {
        let path = small_path(dir, i);
        if i % 50 == 49 {
            let original = std::fs::read(small_path(dir, i - 1 - rng.below(40) as u32))
                .expect("an earlier file");
            write(&path, &original);
        } else {
            let size = 1024 + rng.below(19 * 1024) as usize;
            write(&path, &text(&mut rng, &words, size));
        }
    }
    for n in 0..3 {
        big(&dir.join(format!("media/random-{n}.bin")), large, |b| {
            rng.fill(b)
        });
    }
    for n in 0..2 {
        let path = dir.join(format!("logs/app-{n}.log"));
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        let mut out = BufWriter::new(File::create(&path).expect("create"));
        let mut written = 0u64;
        while written < large {
            let lines = log_lines(&mut rng, &words, 1000);
            written += lines.len() as u64;
            out.write_all(&lines).expect("write");
        }
        out.flush().expect("flush");
    }
    big(&dir.join("db/pgdata.bin"), large, |b| page(&mut rng, b));
    let head = File::open(dir.join("media/random-0.bin")).expect("random-0");
    let mut out = File::create(dir.join("media/random-0-head.bin")).expect("create");
    std::io::copy(&mut std::io::Read::take(head, large / 4), &mut out).expect("copy");
}

const MAIL_DIRS: u32 = 800;

fn mail_path(dir: &Path, i: u32) -> PathBuf {
    let d = i % MAIL_DIRS;
    dir.join(format!("mail/u{:02}/f{:02}/m{i:06}", d / 20, d % 20))
}

/// 0-4 KiB, most under 1 KiB: the sizes of mail headers, thumbnails' metadata, lock
/// and state files.
fn tiny_size(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0 => 0,
        1..=6 => rng.below(1024) as usize,
        _ => 1024 + rng.below(3 * 1024) as usize,
    }
}

fn generate_tiny(dir: &Path, seed: u64, divisor: u64) {
    let mut rng = Rng(seed);
    let words = vocabulary(&mut rng);
    for i in 0..(80_000 / divisor) as u32 {
        let size = tiny_size(&mut rng);
        write(&mail_path(dir, i), &text(&mut rng, &words, size));
    }
    for n in 0..2 {
        let mut block = 0;
        big(
            &dir.join(format!("images/disk-{n}.img")),
            320 * MIB / divisor,
            |b| {
                // One kind per 64 KiB (eight 8 KiB calls).
                let kind = (block / 8 + n) % 3;
                block += 1;
                match kind {
                    0 => b.fill(0),
                    1 => rng.fill(b),
                    _ => b.copy_from_slice(&text(&mut rng, &words, b.len())),
                }
            },
        );
    }
}

fn change_tiny(dir: &Path, seed: u64) {
    let mut rng = Rng(seed ^ 0x5EED_C4A6_E000_0000);
    let words = vocabulary(&mut rng);
    let mut small = files_under(&dir.join("mail"));
    for _ in 0..800.min(small.len()) {
        let p = small.swap_remove(rng.below(small.len() as u64) as usize);
        let mut f = OpenOptions::new().append(true).open(&p).expect("append");
        f.write_all(&text(&mut rng, &words, 60)).expect("write");
    }
    for _ in 0..400.min(small.len()) {
        let p = small.swap_remove(rng.below(small.len() as u64) as usize);
        std::fs::remove_file(&p).expect("delete");
    }
    for n in 0..400 {
        let p = dir.join(format!("mail/new/s{seed}-{n:03}"));
        let size = tiny_size(&mut rng);
        write(&p, &text(&mut rng, &words, size));
    }
    let mut block = [0u8; 4096];
    for n in 0..2 {
        let path = dir.join(format!("images/disk-{n}.img"));
        let blocks = std::fs::metadata(&path).expect("stat").len() / 4096;
        let mut f = OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open image");
        for _ in 0..50 {
            rng.fill(&mut block);
            f.seek(SeekFrom::Start(rng.below(blocks) * 4096))
                .expect("seek");
            f.write_all(&block).expect("write");
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if e.file_type().expect("file type").is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn change(dir: &Path, seed: u64) {
    if dir.join("images").is_dir() {
        return change_tiny(dir, seed);
    }
    let mut rng = Rng(seed ^ 0x5EED_C4A6_E000_0000);
    let words = vocabulary(&mut rng);
    let mut small = files_under(&dir.join("docs"));
    let pick = |rng: &mut Rng, files: &mut Vec<PathBuf>| {
        let i = rng.below(files.len() as u64) as usize;
        files.swap_remove(i)
    };
    for _ in 0..400 {
        let p = pick(&mut rng, &mut small);
        let mut f = OpenOptions::new().append(true).open(&p).expect("append");
        f.write_all(&text(&mut rng, &words, 80)).expect("write");
        f.write_all(b"\n").expect("write");
    }
    for _ in 0..50 {
        let p = pick(&mut rng, &mut small);
        let size = 1024 + rng.below(19 * 1024) as usize;
        write(&p, &text(&mut rng, &words, size));
    }
    for _ in 0..20 {
        let p = pick(&mut rng, &mut small);
        std::fs::remove_file(&p).expect("delete");
    }
    for n in 0..20 {
        let p = dir.join(format!("docs/new/s{seed}-{n:02}.txt"));
        let size = 1024 + rng.below(19 * 1024) as usize;
        write(&p, &text(&mut rng, &words, size));
    }
    let large = ["media/random-1.bin", "media/random-2.bin", "logs/app-1.log"];
    let target = dir.join(large[rng.below(large.len() as u64) as usize]);
    let len = std::fs::metadata(&target).expect("stat").len();
    let mut f = OpenOptions::new().write(true).open(&target).expect("open");
    f.seek(SeekFrom::Start((len / 2).saturating_sub(4 * MIB)))
        .expect("seek");
    let mut buf = vec![0u8; (8 * MIB).min(len) as usize];
    rng.fill(&mut buf);
    f.write_all(&buf).expect("write");
    let mut log = OpenOptions::new()
        .append(true)
        .open(dir.join("logs/app-0.log"))
        .expect("open log");
    let mut appended = 0;
    while appended < 4 * MIB as usize {
        let lines = log_lines(&mut rng, &words, 1000);
        appended += lines.len();
        log.write_all(&lines).expect("write");
    }
    let mut db = OpenOptions::new()
        .write(true)
        .open(dir.join("db/pgdata.bin"))
        .expect("open pgdata");
    let pages = std::fs::metadata(dir.join("db/pgdata.bin"))
        .expect("stat")
        .len()
        / 8192;
    let mut block = [0u8; 4096];
    for _ in 0..328 {
        let at = rng.below(pages) * 8192 + rng.below(2) * 4096;
        rng.fill(&mut block);
        db.seek(SeekFrom::Start(at)).expect("seek");
        db.write_all(&block).expect("write");
    }
}

/// A file as the fingerprint cache knows it; writing it changes its ctime.
fn cache_key(m: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "{}:{}:{}.{:09}:{}.{:09}",
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    )
}

fn fingerprint(dir: &Path, cache: Option<&Path>) {
    use sha2::Digest;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    // path -> (key, hash)
    let cached: std::collections::HashMap<String, (String, String)> = cache
        .and_then(|c| std::fs::read_to_string(c).ok())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            let (key, hash, path) = (f.next()?, f.next()?, f.next()?);
            Some((path.to_string(), (key.to_string(), hash.to_string())))
        })
        .collect();
    let mut entries = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let meta = e.metadata().expect("metadata");
            if meta.is_dir() {
                todo.push(e.path());
            }
            entries.push((e.path(), meta));
        }
    }
    entries.sort_by(|a, b| a.0.as_os_str().as_bytes().cmp(b.0.as_os_str().as_bytes()));
    let hashes: Vec<std::sync::OnceLock<String>> =
        entries.iter().map(|_| Default::default()).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((path, meta)) = entries.get(i) else {
                        return;
                    };
                    if meta.is_file() {
                        if let Some((key, hash)) = cached.get(&*path.to_string_lossy())
                            && *key == cache_key(meta)
                        {
                            let _ = hashes[i].set(hash.clone());
                            continue;
                        }
                        let mut h = sha2::Sha256::new();
                        std::io::copy(&mut File::open(path).expect("open"), &mut h).expect("read");
                        let _ = hashes[i].set(format!("{:x}", h.finalize()));
                    }
                }
            });
        }
    });
    if let Some(cache) = cache {
        let mut lines = String::new();
        for ((path, m), hash) in entries.iter().zip(&hashes) {
            if let Some(hash) = hash.get() {
                lines += &format!("{}\t{hash}\t{}\n", cache_key(m), path.display());
            }
        }
        let tmp = cache.with_extension("tmp");
        std::fs::write(&tmp, lines).expect("write the cache");
        std::fs::rename(&tmp, cache).expect("replace the cache");
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for ((path, m), hash) in entries.iter().zip(&hashes) {
        let kind = if m.is_dir() {
            "d"
        } else if m.is_symlink() {
            "l"
        } else if m.is_file() {
            "f"
        } else {
            "o"
        };
        let size = if m.is_dir() { 0 } else { m.size() };
        let link = std::fs::read_link(path)
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        writeln!(
            out,
            "{}\t{kind}\t{size}\t{:o}\t{}\t{}\t{}.{:09}\t{link}\t{}",
            path.strip_prefix(dir).expect("below").display(),
            m.mode(),
            m.uid(),
            m.gid(),
            m.mtime(),
            m.mtime_nsec(),
            hash.get().map_or("", String::as_str),
        )
        .expect("stdout");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench-dataset generate DIR [SEED] [DIVISOR] [mixed|tiny] | change DIR SEED | fingerprint DIR [CACHE]";
    let seed = |i: usize, default: Option<u64>| {
        args.get(i)
            .map(|s| s.parse().expect("SEED is a number"))
            .or(default)
            .expect(usage)
    };
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("generate"), Some(dir)) => {
            let dir = Path::new(dir);
            if dir.exists() && std::fs::read_dir(dir).expect("read").next().is_some() {
                panic!("{} is not empty", dir.display());
            }
            let (seed, divisor) = (seed(2, Some(42)), seed(3, Some(1)).max(1));
            match args.get(4).map(String::as_str) {
                None | Some("mixed") => generate(dir, seed, divisor),
                Some("tiny") => generate_tiny(dir, seed, divisor),
                Some(other) => panic!("unknown shape {other} (mixed or tiny)"),
            }
        }
        (Some("change"), Some(dir)) => change(Path::new(dir), seed(2, None)),
        (Some("fingerprint"), Some(dir)) => {
            fingerprint(Path::new(dir), args.get(2).map(Path::new));
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
