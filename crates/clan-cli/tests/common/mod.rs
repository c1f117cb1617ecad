//! Running the real `clan` binary against clans written into temporary directories.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Run {
    pub out: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout()))
    }
    /// Asserts success and returns itself.
    pub fn ok(self) -> Self {
        assert!(
            self.out.status.success(),
            "clan failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
    /// Asserts failure and returns stderr.
    pub fn fails(self) -> String {
        assert!(
            !self.out.status.success(),
            "clan succeeded but should fail:\n{}",
            self.stdout()
        );
        self.stderr()
    }
}

pub fn clan_in(dir: &Path, args: &[&str]) -> Run {
    clan_env(dir, args, &[])
}

pub fn clan_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    clan_under(&[], dir, args, env)
}

/// clan run by a wrapper program (`strace …`, `setpriv …`), or directly when
/// `wrapper` is empty.
pub fn clan_under(wrapper: &[&OsStr], dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let clan = OsStr::new(env!("CARGO_BIN_EXE_clan"));
    let mut argv = wrapper.iter().copied().chain([clan]);
    let mut cmd = Command::new(argv.next().expect("clan itself"));
    cmd.args(argv)
        .args(args)
        .current_dir(dir)
        .env_remove("CLAN_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run {
        out: cmd.output().expect("clan runs"),
    }
}

/// A temporary clan with the given files.
pub fn clan_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}
