//! age keys: each admin has an identity in their config directory and a public key
//! in the clan (`secrets/admins/<name>.pub`); each machine has its own identity,
//! stored encrypted to the admins (`secrets/machines/<m>/key.age`, public key beside).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
pub use age::x25519::{Identity, Recipient};

use crate::error::{Result, VarsError, io};

/// The admin identity file: `$CLAN_AGE_KEY_FILE`, else `$XDG_CONFIG_HOME/clan/age/key.txt`
/// (`~/.config/...`).
pub fn admin_key_file() -> PathBuf {
    if let Some(p) = std::env::var_os("CLAN_AGE_KEY_FILE").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".config")
        });
    config.join("clan/age/key.txt")
}

/// Reads the first `AGE-SECRET-KEY-` line of an identity file.
pub fn read_identity(path: &Path) -> Result<Identity> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => VarsError::NoAdminKey(path.to_path_buf()),
        _ => io(format!("reading {}", path.display()))(e),
    })?;
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(path)
            .map_err(io(format!("reading {}", path.display())))?
            .permissions(),
    );
    if mode & 0o077 != 0 {
        return Err(VarsError::KeyTooOpen(path.to_path_buf(), mode & 0o7777));
    }
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .and_then(|l| Identity::from_str(l).ok())
        .ok_or_else(|| VarsError::Io {
            context: format!("reading {}", path.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "no AGE-SECRET-KEY- line"),
        })
}

/// Writes `content` to `path` atomically with `mode`, the mode set before any byte.
pub fn write_private(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(io(format!("writing into {}", dir.display())))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("writing {}", path.display())))?;
    tmp.write_all(content)
        .map_err(io(format!("writing {}", path.display())))?;
    tmp.persist(path)
        .map_err(|e| io(format!("writing {}", path.display()))(e.error))?;
    Ok(())
}

/// Creates the admin identity if missing; returns it.
pub fn ensure_admin_identity(path: &Path) -> Result<Identity> {
    if path.exists() {
        return read_identity(path);
    }
    let id = Identity::generate();
    let text = format!(
        "# public key: {}\n{}\n",
        id.to_public(),
        id.to_string().expose_secret()
    );
    write_private(path, text.as_bytes(), 0o600)?;
    Ok(id)
}

/// Parses an `age1...` public key.
pub fn recipient(text: &str) -> Option<Recipient> {
    Recipient::from_str(text.trim()).ok()
}

/// Encrypts to every recipient (binary age format).
pub fn encrypt(plaintext: &[u8], recipients: &[Recipient]) -> Result<Vec<u8>> {
    let dyns: Vec<&dyn age::Recipient> = recipients
        .iter()
        .map(|r| r as &dyn age::Recipient)
        .collect();
    let encryptor =
        age::Encryptor::with_recipients(dyns.into_iter()).map_err(|e| VarsError::Io {
            context: "encrypting".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).map_err(io("encrypting"))?;
    writer.write_all(plaintext).map_err(io("encrypting"))?;
    writer.finish().map_err(io("encrypting"))?;
    Ok(out)
}

/// Why `ciphertext` is not an age file at all (empty, truncated, garbage), if it is
/// not; checked without any key.
pub fn damage(ciphertext: &[u8]) -> Option<String> {
    if ciphertext.is_empty() {
        return Some("the file is empty".into());
    }
    age::Decryptor::new(ciphertext)
        .err()
        .map(|e| format!("not a valid age file ({e})"))
}

/// Decrypts; a damaged file (not age, or its contents failing authentication) is
/// `Damaged`, a file not encrypted to `identity` is `Decrypt`.
pub fn decrypt(ciphertext: &[u8], identity: &Identity, what: &str) -> Result<Vec<u8>> {
    let damaged = |reason: String| VarsError::Damaged(what.to_string(), reason);
    if let Some(reason) = damage(ciphertext) {
        return Err(damaged(reason));
    }
    let decryptor = age::Decryptor::new(ciphertext).map_err(|e| damaged(e.to_string()))?;
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => {
                VarsError::Decrypt(what.to_string(), e.to_string())
            }
            other => damaged(other.to_string()),
        })?;
    let mut out = Vec::new();
    reader
        .read_to_end(&mut out)
        .map_err(|e| damaged(format!("its contents fail authentication ({e})")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypts_to_several_recipients() {
        let (a, b, c) = (
            Identity::generate(),
            Identity::generate(),
            Identity::generate(),
        );
        let ct = encrypt(b"poison-marker", &[a.to_public(), b.to_public()]).unwrap();
        assert!(!ct.windows(13).any(|w| w == b"poison-marker"));
        assert_eq!(decrypt(&ct, &a, "x").unwrap(), b"poison-marker");
        assert_eq!(decrypt(&ct, &b, "x").unwrap(), b"poison-marker");
        assert!(decrypt(&ct, &c, "x").is_err());
    }
}
