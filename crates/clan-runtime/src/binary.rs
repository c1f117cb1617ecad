//! Installing this very binary on a machine as its runtime.
//!
//! Each build lives at `/usr/local/lib/clan/clan-<version>-<hash>` (the hash of the
//! binary's contents, so two builds of one version are told apart) and
//! `/usr/local/bin/clan` points at the current one. The admin's clan calls the
//! exact build it is, so both ends always speak the same protocol.

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use clan_core::host::{Host, HostError};
use clan_core::process::{Cmd, CommandError};

use crate::{Result, RuntimeError};

pub const DIR: &str = "/usr/local/lib/clan";
pub const LINK: &str = "/usr/local/bin/clan";

/// `<version>-<first 16 hex digits of sha256>` of the running binary.
pub fn identity() -> Result<&'static str> {
    static ID: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    ID.get_or_init(|| {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        hash_file(&exe)
            .map(|h| format!("{}-{}", env!("CARGO_PKG_VERSION"), &h[..16]))
            .map_err(|e| format!("{}: {e}", exe.display()))
    })
    .as_deref()
    .map_err(|message| RuntimeError::Io {
        context: "reading this clan binary".into(),
        source: std::io::Error::other(message.clone()),
    })
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Where this build runs on a machine.
pub fn remote_path() -> Result<String> {
    Ok(format!("{DIR}/clan-{}", identity()?))
}

/// Whether this build is on `host`.
pub fn installed(host: &dyn Host) -> Result<bool> {
    match host.run(&Cmd::new("test").args(["-x", &remote_path()?])) {
        Ok(_) => Ok(true),
        Err(HostError::Command {
            source: CommandError::Failed { code: 1, .. },
            ..
        }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Installs this build on `host`, points /usr/local/bin/clan at it and removes
/// other builds.
pub fn install(host: &dyn Host) -> Result<()> {
    let path = remote_path()?;
    let exe = std::env::current_exe().map_err(|source| RuntimeError::Io {
        context: "finding this clan binary".into(),
        source,
    })?;
    let bytes = std::fs::read(&exe).map_err(|source| RuntimeError::Io {
        context: format!("reading {}", exe.display()),
        source,
    })?;
    // Written under a temporary name and renamed: a cut connection leaves no
    // half-written binary behind the final name.
    let script = r#"set -e
mkdir -p "$1"
cat > "$2.part"
chmod 755 "$2.part"
mv -f "$2.part" "$2"
ln -sfn "$2" "$3.part"
mv -fT "$3.part" "$3"
for f in "$1"/clan-*; do [ "$f" = "$2" ] || rm -f "$f"; done"#;
    host.run(
        &Cmd::new("sh")
            .args(["-c", script, "sh", DIR, &path, LINK])
            .stdin(bytes),
    )?;
    Ok(())
}
