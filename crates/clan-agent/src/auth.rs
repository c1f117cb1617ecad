//! SelfPrivacy's one-time keys, shown to people as BIP39 English mnemonics: a
//! new-device key (16 bytes, 12 words, valid 10 minutes, used once) and a recovery
//! key (24 bytes, 18 words, optional expiry and number of uses).

use bip39::{Language, Mnemonic};

/// Random bytes of a new-device key.
pub const NEW_DEVICE_BYTES: usize = 16;
/// Random bytes of a recovery key.
pub const RECOVERY_BYTES: usize = 24;
/// How long a new-device key is valid.
pub const NEW_DEVICE_MINUTES: i64 = 10;

/// A new random key: its words and its entropy.
pub fn new_key(bytes: usize) -> (String, Vec<u8>) {
    let entropy: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    let words = Mnemonic::from_entropy_in(Language::English, &entropy)
        .expect("16 and 24 bytes are valid BIP39 entropy")
        .to_string();
    (words, entropy)
}

/// The entropy of a mnemonic, when it is one (words and checksum).
pub fn entropy_of(words: &str) -> Option<Vec<u8>> {
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    Mnemonic::parse_in_normalized(Language::English, &words)
        .ok()
        .map(|m| m.to_entropy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_selfprivacys_word_counts_and_round_trip() {
        let (words, entropy) = new_key(NEW_DEVICE_BYTES);
        assert_eq!(words.split(' ').count(), 12);
        assert_eq!(entropy_of(&words), Some(entropy));
        let (words, entropy) = new_key(RECOVERY_BYTES);
        assert_eq!(words.split(' ').count(), 18);
        assert_eq!(entropy_of(&format!("  {words} \n")), Some(entropy));
    }

    #[test]
    fn what_is_not_a_mnemonic_has_no_entropy() {
        assert_eq!(entropy_of("not a key"), None);
        // Twelve real words with a wrong checksum.
        assert_eq!(entropy_of(&["abandon"; 12].join(" ")), None);
    }
}
