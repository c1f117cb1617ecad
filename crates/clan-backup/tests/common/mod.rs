//! Test support: machines built in temporary directories, a tree with every kind of
//! file, and an exact picture of a tree (content and metadata) to compare.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use clan_backup::Machine;
use clan_core::machine::{Postgresql, State};
use serde_json::Value;

pub fn state(folders: &[&Path]) -> State {
    State {
        folders: folders.iter().map(|f| f.display().to_string()).collect(),
        postgres_databases: vec![],
        services: vec![],
        pre_backup_script: None,
        post_backup_script: None,
        pre_restore_script: None,
        post_restore_script: None,
        drill_script: None,
        exclude: vec![],
    }
}

pub fn machine(root: &Path, states: Vec<(&str, State)>, providers: Vec<(&str, Value)>) -> Machine {
    Machine {
        name: "m".into(),
        states: states
            .into_iter()
            .map(|(n, s)| (n.to_string(), s))
            .collect(),
        providers: providers
            .into_iter()
            .map(|(n, v)| {
                let config = serde_json::from_value(v).expect("a provider configuration");
                (n.to_string(), config)
            })
            .collect(),
        staging_directory: root.join("staging"),
        postgresql: Postgresql::default(),
    }
}

/// A secret file for repository passwords.
pub fn secret(root: &Path) -> PathBuf {
    let p = root.join("password");
    fs::write(&p, "correct horse battery staple\n").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o400)).unwrap();
    p
}

/// Every kind of entry the issue lists.
pub fn nasty_tree(dir: &Path) {
    fs::create_dir_all(dir.join("a/b/c")).unwrap();
    fs::create_dir_all(dir.join("empty/also empty")).unwrap();
    fs::write(dir.join("a/b/c/deep.txt"), "deep\n").unwrap();
    fs::write(dir.join("with space.txt"), "spaces").unwrap();
    fs::write(dir.join("new\nline"), "newline in the name").unwrap();
    fs::write(
        dir.join(OsStr::from_bytes(b"latin1-\xe9t\xe9")),
        "not utf-8",
    )
    .unwrap();
    symlink("a/b/c/deep.txt", dir.join("link-to-deep")).unwrap();
    symlink("/nonexistent/target", dir.join("dangling")).unwrap();
    fs::write(dir.join("hard1"), "shared inode").unwrap();
    fs::hard_link(dir.join("hard1"), dir.join("a/hard2")).unwrap();
    let sparse = fs::File::create(dir.join("sparse.img")).unwrap();
    sparse.set_len(64 * 1024 * 1024).unwrap();
    drop(sparse);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(dir.join("sparse.img"))
        .unwrap();
    use std::io::{Seek, SeekFrom, Write};
    f.seek(SeekFrom::Start(32 * 1024 * 1024)).unwrap();
    f.write_all(b"island in the middle").unwrap();
    drop(f);
    fs::write(dir.join("mode0000"), "locked").unwrap();
    fs::set_permissions(dir.join("mode0000"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::write(dir.join("not-mine"), "other owner").unwrap();
    std::os::unix::fs::chown(dir.join("not-mine"), Some(4242), Some(4343)).unwrap();
    fs::set_permissions(dir.join("a"), fs::Permissions::from_mode(0o750)).unwrap();
    filetime::set_file_mtime(
        dir.join("with space.txt"),
        filetime::FileTime::from_unix_time(1_600_000_000, 123_456_789),
    )
    .unwrap();
    // Extended attributes: the folder's own, a subfolder's, and an access ACL that
    // keeps the owning group out (its mask shows as the mode's group bits).
    xattr::set(dir, "user.folder", b"top").unwrap();
    xattr::set(dir.join("a"), "user.sub", b"a").unwrap();
    fs::write(dir.join("acl"), "nobody may read this, the group may not").unwrap();
    fs::set_permissions(dir.join("acl"), fs::Permissions::from_mode(0o600)).unwrap();
    xattr::set(dir.join("acl"), "system.posix_acl_access", &ACL).unwrap();
}

/// user::rw-, user:nobody:r--, group::---, mask::r--, other::--- (as `setfacl` writes it).
pub const ACL: [u8; 44] = [
    2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255, 2, 0, 4, 0, 254, 255, 0, 0, 4, 0, 0, 0, 255, 255,
    255, 255, 16, 0, 4, 0, 255, 255, 255, 255, 32, 0, 0, 0, 255, 255, 255, 255,
];

/// Changes, additions and deletions after the backup.
pub fn damage(dir: &Path) {
    fs::write(dir.join("with space.txt"), "changed").unwrap();
    fs::remove_file(dir.join("a/b/c/deep.txt")).unwrap();
    fs::remove_dir_all(dir.join("empty")).unwrap();
    fs::write(dir.join("created-after-backup"), "should vanish").unwrap();
    fs::create_dir_all(dir.join("new-dir/inner")).unwrap();
    fs::set_permissions(dir.join("mode0000"), fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(dir.join("not-mine"), Some(0), Some(0)).unwrap();
    fs::remove_file(dir.join("a/hard2")).unwrap();
    fs::write(dir.join("a/hard2"), "no longer a link").unwrap();
    xattr::set(dir, "user.folder", b"changed").unwrap();
    xattr::set(dir, "user.added", b"after the backup").unwrap();
    xattr::remove(dir.join("acl"), "system.posix_acl_access").unwrap();
    xattr::set(dir.join("hard1"), "user.added", b"after the backup").unwrap();
}

/// Path (bytes) -> everything that must survive a restore. Hard links are recorded
/// as the first path sharing the inode.
pub fn picture(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), Vec<u8>> = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    out
}

fn walk(
    root: &Path,
    p: &Path,
    out: &mut BTreeMap<Vec<u8>, String>,
    inodes: &mut BTreeMap<(u64, u64), Vec<u8>>,
) {
    let m = fs::symlink_metadata(p).unwrap();
    let rel = p
        .strip_prefix(root)
        .unwrap()
        .as_os_str()
        .as_bytes()
        .to_vec();
    let mut xattrs: Vec<_> = if m.is_dir() || m.is_file() {
        xattr::list(p)
            .unwrap()
            .map(|n| {
                let value = xattr::get(p, &n).unwrap().unwrap_or_default();
                format!(" {}={value:?}", n.to_string_lossy())
            })
            .collect()
    } else {
        Vec::new()
    };
    xattrs.sort();
    let common = format!(
        "mode={:o} uid={} gid={} mtime={}.{}{}",
        m.mode(),
        m.uid(),
        m.gid(),
        m.mtime(),
        m.mtime_nsec(),
        xattrs.concat()
    );
    let entry = if m.is_dir() {
        let mut names: Vec<_> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for n in names {
            walk(root, &n, out, inodes);
        }
        format!("dir {common}")
    } else if m.file_type().is_symlink() {
        format!(
            "link -> {:?} uid={} gid={}",
            fs::read_link(p).unwrap(),
            m.uid(),
            m.gid()
        )
    } else if !m.is_file() {
        // FIFOs, sockets, devices: never opened (a FIFO would block).
        format!(
            "special type={:o} {common} rdev={}",
            m.mode() & 0o170000,
            m.rdev()
        )
    } else {
        let content = fs::read(p).unwrap();
        let link = if m.nlink() > 1 {
            let first = inodes
                .entry((m.dev(), m.ino()))
                .or_insert_with(|| rel.clone());
            format!(" same-inode-as={}", String::from_utf8_lossy(first))
        } else {
            String::new()
        };
        format!(
            "file {common} size={} sum={:x}{link}",
            m.len(),
            fnv(&content)
        )
    };
    out.insert(rel, entry);
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Readable difference of two pictures.
pub fn diff(a: &BTreeMap<Vec<u8>, String>, b: &BTreeMap<Vec<u8>, String>) -> String {
    let mut out = String::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push_str(&format!("missing: {:?}\n", String::from_utf8_lossy(k))),
            Some(w) if w != v => out.push_str(&format!(
                "differs: {:?}\n  was {v}\n  now {w}\n",
                String::from_utf8_lossy(k)
            )),
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push_str(&format!("extra: {:?}\n", String::from_utf8_lossy(k)));
    }
    out
}

/// A throwaway PostgreSQL cluster in a temporary directory, reached over a Unix
/// socket only; stopped when dropped.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub port: u16,
}

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed")
        .map(|e| e.unwrap().path())
        .collect();
    versions.sort();
    versions.last().unwrap().join("bin").join(name)
}

fn as_postgres(args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Cluster {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let owner = std::process::Command::new("id")
            .args(["-u", "postgres"])
            .output()
            .unwrap();
        let uid: u32 = String::from_utf8_lossy(&owner.stdout)
            .trim()
            .parse()
            .unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), None).unwrap();
        let data = dir.path().join("data");
        let socket = dir.path().to_path_buf();
        let port = 5439;
        as_postgres(&[
            pg_bin("initdb").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        let opts = format!("-k {} -p {port} -c listen_addresses=", socket.display());
        // The server inherits what pg_ctl has: no pipes (this process would wait for
        // their end); its messages go to a log file.
        let log = dir.path().join("server.log");
        let status = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("pg_ctl"))
            .args([
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-s",
                "start",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "pg_ctl start: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        Self { dir, socket, port }
    }

    pub fn config(&self) -> Postgresql {
        Postgresql {
            run_as: None,
            host: Some(self.socket.display().to_string()),
            port: Some(self.port),
            user: Some("postgres".into()),
        }
    }

    /// Runs SQL in `db`, returns the output (unaligned, tuples only).
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = std::process::Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.socket)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("pg_ctl"))
            .args(["-D"])
            .arg(&data)
            .args(["-m", "immediate", "-s", "stop"])
            .output();
    }
}

/// `len` bytes (a multiple of 8) that do not compress: providers take a while over
/// them.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

/// Restores backup `name` of `provider` into `target` (`--target`); returns where
/// `folder` is in it.
pub fn restore_into(
    m: &Machine,
    provider: &str,
    name: &str,
    target: &Path,
    folder: &Path,
) -> PathBuf {
    clan_backup::ops::restore(
        m,
        provider,
        name,
        &clan_backup::RestoreOptions {
            into: Some(target.to_path_buf()),
            ..Default::default()
        },
        &clan_backup::event::Silent,
    )
    .unwrap();
    clan_backup::tree::under(target, folder)
}
