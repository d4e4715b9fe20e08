//! The bot's webhook secret as it arrives, and the hashes the server keeps (WH-1).
//!
//! The server stores only `hash(secret)`; a presented secret is hashed and compared in constant
//! time with `matches`. Secrets are 256 random bits drawn elsewhere, so a fast hash is enough
//! (nothing to brute-force). `dedupe_key` names a (bot, body) pair for the dedupe window.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::json::Field;
use crate::{MAX_SECRET_CHARS, ParseError};

/// The secret a webhook body carries (`email_token` or `secret`). Its `Debug` prints `[redacted]`
/// and its memory is zeroized on drop; it has no `Display`, no `Clone` and no `==` (compare through
/// `matches`, which takes constant time).
pub struct PresentedSecret(Zeroizing<String>);

impl PresentedSecret {
    pub(crate) fn new(text: String) -> PresentedSecret {
        PresentedSecret(Zeroizing::new(text))
    }

    /// Reads a secret field: a JSON string of 1 to `MAX_SECRET_CHARS` characters. Its content is not
    /// judged further: a wrong secret is the server's 401, not a parse error.
    pub(crate) fn read(field: Field<'_>) -> Result<PresentedSecret, ParseError> {
        const EXPECTED: &str = "the bot's webhook secret: a string of 1 to 256 characters";
        let secret = PresentedSecret::new(field.raw_string(EXPECTED)?);
        let chars = secret.0.chars().count();
        if chars == 0 || chars > MAX_SECRET_CHARS {
            return Err(field.invalid(EXPECTED));
        }
        Ok(secret)
    }

    /// The secret's bytes, for hashing. Do not log or store them.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for PresentedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// SHA-256 of a secret: what the database keeps instead of the secret.
pub fn hash(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Whether `presented` hashes to `stored_hash`, compared in constant time. To accept the previous
/// secret during its grace period, call this for both hashes and combine the results without
/// returning early, so the answer takes the same time either way.
pub fn matches(presented: &PresentedSecret, stored_hash: &[u8; 32]) -> bool {
    bool::from(hash(presented.expose()).ct_eq(stored_hash))
}

/// The key under which a body is remembered for the dedupe window: SHA-256 over the bot id's
/// length (8 bytes, big-endian), the bot id, and the raw body as received. The length prefix keeps
/// (`"ab"`, `"c..."`) and (`"a"`, `"bc..."`) apart.
pub fn dedupe_key(bot_id: &str, body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((bot_id.len() as u64).to_be_bytes());
    hasher.update(bot_id.as_bytes());
    hasher.update(body);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256() {
        // FIPS 180-2 "abc" vector.
        assert_eq!(hex::encode(hash(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn matches_only_the_same_secret() {
        let stored = hash(b"4f1c0b6e-secret");
        assert!(matches(&PresentedSecret::new("4f1c0b6e-secret".to_owned()), &stored));
        assert!(!matches(&PresentedSecret::new("4f1c0b6e-secreT".to_owned()), &stored));
        assert!(!matches(&PresentedSecret::new(String::new()), &stored));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = PresentedSecret::new("hunter2-hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret:#?}"), "[redacted]");
    }

    #[test]
    fn dedupe_key_separates_bot_and_body() {
        let body = br#"{"message_type":"bot"}"#;
        assert_eq!(dedupe_key("b1", body), dedupe_key("b1", body));
        assert_ne!(dedupe_key("b1", body), dedupe_key("b2", body));
        assert_ne!(dedupe_key("b1", body), dedupe_key("b1", b"{}"));
        assert_ne!(dedupe_key("ab", b"c"), dedupe_key("a", b"bc"));
        let mut expected = Sha256::new();
        expected.update([0, 0, 0, 0, 0, 0, 0, 2]);
        expected.update(b"b1");
        expected.update(body);
        assert_eq!(dedupe_key("b1", body), <[u8; 32]>::from(expected.finalize()));
    }
}
