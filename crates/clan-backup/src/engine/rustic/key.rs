//! Repository key files with restic's scrypt parameters.
//!
//! rustic_core writes key files with scrypt's "recommended" cost (N = 2^17, r = 8:
//! 128 MiB), and every command that opens the repository pays it again: that alone was
//! most of the engine's peak memory in bench/. The restic CLI calibrates its keys to
//! N = 2^15, r = 8, p = 5 on this kind of machine (32 MiB, about the same CPU time),
//! so clan writes its key files with those parameters. Same format, so the restic
//! CLI and rustic open them unchanged.

use aes256ctr_poly1305aes::Aes256CtrPoly1305Aes;
use aes256ctr_poly1305aes::aead::AeadInPlace;
use rand::Rng;
use rustic_core::repofile::{KeyFile, MasterKey};
use rustic_core::{FileType, Id, WriteBackend};
use sha2::Digest;

const LOG_N: u8 = 15;
const R: u32 = 8;
const P: u32 = 5;

/// Adds a key file that opens `master` with `password`.
pub fn add(be: &dyn WriteBackend, master: &MasterKey, password: &str) -> Result<(), String> {
    let mut salt = vec![0; 64];
    rand::rng().fill_bytes(&mut salt);
    let params = scrypt::Params::new(LOG_N, R, P).map_err(|e| e.to_string())?;
    let mut derived = [0; 64];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut derived).map_err(|e| e.to_string())?;
    let plain = serde_json::to_vec(master).map_err(|e| e.to_string())?;
    let key = KeyFile {
        hostname: None,
        username: None,
        created: Some(jiff::Zoned::now()),
        kdf: "scrypt".to_string(),
        n: 1 << LOG_N,
        r: R,
        p: P,
        data: encrypt(&derived, &plain)?,
        salt,
    };
    let file = serde_json::to_vec(&key).map_err(|e| e.to_string())?;
    let id = Id::new(sha2::Sha256::digest(&file).into());
    be.write_bytes(FileType::Key, &id, false, file.into())
        .map_err(|e| format!("writing the repository key: {}", super::err(e)))
}

/// restic's format for encrypted data: nonce, AES-256-CTR ciphertext, Poly1305-AES tag.
/// `key`: the AES-256 key, then Poly1305's k and r.
pub(super) fn encrypt(key: &[u8; 64], plain: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(plain.len() + 32);
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(plain);
    seal(key, &mut out)?;
    Ok(out)
}

/// [`encrypt`] in place: `data` holds 16 bytes of room for the nonce, then the
/// plain text; the tag is appended (room for it saves a copy).
pub(super) fn seal(key: &[u8; 64], data: &mut Vec<u8>) -> Result<(), String> {
    let mut nonce = [0u8; 16];
    rand::rng().fill_bytes(&mut nonce);
    data[..16].copy_from_slice(&nonce);
    let tag = Aes256CtrPoly1305Aes::new(key.into())
        .encrypt_in_place_detached(&nonce.into(), &[], &mut data[16..])
        .map_err(|e| format!("encrypting: {e}"))?;
    data.extend_from_slice(&tag);
    Ok(())
}

/// The inverse of [`encrypt`]: `None` when the data is too short or its tag is wrong.
pub(super) fn decrypt(key: &[u8; 64], data: &[u8]) -> Option<Vec<u8>> {
    let mut out = data.to_vec();
    let len = open_in_place(key, &mut out)?.len();
    out.copy_within(16..16 + len, 0);
    out.truncate(len);
    Some(out)
}

/// [`decrypt`] in place (a restore's blobs, without a copy): the plain text, which
/// is `data[16..data.len() - 16]`.
pub(super) fn open_in_place<'a>(key: &[u8; 64], data: &'a mut [u8]) -> Option<&'a [u8]> {
    if data.len() < 32 {
        return None;
    }
    let (nonce, rest) = data.split_at_mut(16);
    let (text, tag) = rest.split_at_mut(rest.len() - 16);
    Aes256CtrPoly1305Aes::new(key.into())
        .decrypt_in_place_detached((&*nonce).into(), &[], text, (&*tag).into())
        .ok()?;
    Some(text)
}

/// A master key as [`encrypt`] takes it: the AES key, then Poly1305's k and r.
pub(super) fn master_bytes(master: &MasterKey) -> Result<[u8; 64], String> {
    let mut key = [0; 64];
    if master.encrypt.len() != 32 || master.mac.k.len() != 16 || master.mac.r.len() != 16 {
        return Err("the repository's master key has an unexpected length".into());
    }
    key[..32].copy_from_slice(&master.encrypt);
    key[32..48].copy_from_slice(&master.mac.k);
    key[48..].copy_from_slice(&master.mac.r);
    Ok(key)
}

#[cfg(test)]
mod tests {
    /// What is sealed opens, to the byte, and a flipped byte fails its tag.
    #[test]
    fn sealed_data_opens_and_a_flipped_byte_fails() {
        let key = [7u8; 64];
        let plain = b"a blob of some length, more than one AES block long".to_vec();
        let mut sealed = super::encrypt(&key, &plain).unwrap();
        assert_eq!(sealed.len(), plain.len() + 32);
        assert_eq!(super::decrypt(&key, &sealed).unwrap(), plain);
        assert_eq!(
            super::open_in_place(&key, &mut sealed.clone()).unwrap(),
            plain
        );
        sealed[20] ^= 1;
        assert!(super::decrypt(&key, &sealed).is_none());
        assert!(super::decrypt(&key, &sealed[..31]).is_none());
    }
}
