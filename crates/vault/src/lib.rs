//! Sealing of secrets at rest.
//!
//! A secret (today: TOTP seeds) is stored only as a *sealed blob*: AES-256-GCM under a key derived
//! with HKDF-SHA256 from the **root key**, which lives in a file outside the database
//! (`BULWARK_ROOT_KEY_FILE`). A database dump without that file is useless.
//!
//! Blob format, version 1 (all of it is stored; nothing of it is secret):
//!
//! ```text
//! [0]      format version = 1
//! [1..9]   key id: the first 8 bytes of HKDF(root, "key-id"), says which root key sealed it
//! [9..21]  96-bit random nonce
//! [21..]   ciphertext || 16-byte tag
//! ```
//!
//! The additional data binds a blob to its purpose and to its owner (`purpose || 0 || context`,
//! e.g. `totp-seed`, user id), so a blob copied onto another user's row, or into another column,
//! does not open. The version byte and the key id are the migration path: the key ring of the
//! vault issue (versioned key-encryption keys, rotation) recognises version-1 blobs and rewraps
//! them; until then there is one root key, and a blob sealed under another key is refused with
//! [`VaultError::WrongKey`] rather than misread.
//!
//! This crate does no file IO: the binary reads and creates the key file.

pub mod envelope;

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use aws_lc_rs::hkdf;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

const FORMAT_V1: u8 = 1;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
const SALT: &[u8] = b"bulwark vault v1";

/// What a sealed blob holds. Each purpose has its own derived key and its own additional data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A TOTP seed; the context is the user id.
    TotpSeed,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::TotpSeed => "totp-seed",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("the root key file is not 32 bytes of base64")]
    BadKeyFile,
    #[error("the sealed value is truncated or malformed")]
    Malformed,
    #[error("the sealed value has format version {0}, which this build does not know")]
    UnknownVersion(u8),
    #[error("the value was sealed under root key {found}, but the loaded root key is {expected}")]
    WrongKey { expected: KeyId, found: KeyId },
    #[error("the sealed value does not authenticate (tampered, or bound to another owner)")]
    Tampered,
    #[error("the cryptographic library failed")]
    Crypto,
    #[error("the sealed value names algorithm {0}, which this build does not know")]
    UnknownAlgorithm(u8),
    #[error("the sealed value has bytes after its end")]
    TrailingBytes,
    #[error("key-encryption key version {0} is not in the ring (destroyed, or not loaded)")]
    UnknownKeyVersion(u32),
    #[error("the key ring has no active key-encryption key")]
    NoActiveKey,
}

/// Names a root key without revealing anything about it (a one-way derivation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    pub fn as_bytes(&self) -> &[u8; KEY_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The 256-bit root key. Redacted in `Debug`, zeroized on drop.
pub struct RootKey(Zeroizing<[u8; 32]>);

impl RootKey {
    /// A fresh key from the operating system's CSPRNG.
    ///
    /// # Errors
    /// `VaultError::Crypto` if the random source fails.
    pub fn generate() -> Result<RootKey, VaultError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(bytes.as_mut_slice()).map_err(|_| VaultError::Crypto)?;
        Ok(RootKey(bytes))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> RootKey {
        RootKey(Zeroizing::new(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses the key file: standard base64 of the 32 bytes, surrounding whitespace ignored.
    ///
    /// # Errors
    /// `VaultError::BadKeyFile` for anything else.
    pub fn from_file_text(text: &str) -> Result<RootKey, VaultError> {
        let decoded = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| VaultError::BadKeyFile)?);
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| VaultError::BadKeyFile)?;
        Ok(RootKey::from_bytes(bytes))
    }

    /// The key file's content.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{}\n", STANDARD.encode(self.0.as_slice())))
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(***)")
    }
}

/// Seals and opens blobs under one root key.
pub struct Sealer {
    prk: hkdf::Prk,
    key_id: KeyId,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl Sealer {
    /// # Errors
    /// `VaultError::Crypto` if the derivation fails (it does not for a 32-byte key).
    pub fn new(root: &RootKey) -> Result<Sealer, VaultError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(root.0.as_slice());
        let mut id = [0u8; KEY_ID_LEN];
        expand(&prk, b"key-id", &mut id)?;
        Ok(Sealer { prk, key_id: KeyId(id) })
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    fn aead_key(&self, purpose: Purpose) -> Result<RandomizedNonceKey, VaultError> {
        let mut key = Zeroizing::new([0u8; 32]);
        let info = format!("seal {}", purpose.as_str());
        expand(&self.prk, info.as_bytes(), key.as_mut_slice())?;
        RandomizedNonceKey::new(&AES_256_GCM, key.as_slice()).map_err(|_| VaultError::Crypto)
    }

    fn aad(purpose: Purpose, context: &[u8]) -> Vec<u8> {
        let mut aad = purpose.as_str().as_bytes().to_vec();
        aad.push(0);
        aad.extend_from_slice(context);
        aad
    }

    /// Seals `plaintext` for `purpose`, bound to `context` (the owner's id).
    ///
    /// # Errors
    /// `VaultError::Crypto` if the cryptographic library fails.
    pub fn seal(&self, purpose: Purpose, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let key = self.aead_key(purpose)?;
        let mut body = plaintext.to_vec();
        let nonce = key
            .seal_in_place_append_tag(Aad::from(Self::aad(purpose, context)), &mut body)
            .map_err(|_| VaultError::Crypto)?;
        let mut blob = Vec::with_capacity(HEADER_LEN + body.len());
        blob.push(FORMAT_V1);
        blob.extend_from_slice(&self.key_id.0);
        blob.extend_from_slice(nonce.as_ref());
        blob.extend_from_slice(&body);
        Ok(blob)
    }

    /// Opens a blob sealed by [`Sealer::seal`] with the same purpose and context.
    ///
    /// # Errors
    /// `Malformed`, `UnknownVersion`, `WrongKey` (sealed under another root key) or `Tampered`
    /// (modified, or bound to another purpose or owner).
    pub fn open(&self, purpose: Purpose, context: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (&version, rest) = blob.split_first().ok_or(VaultError::Malformed)?;
        if version != FORMAT_V1 {
            return Err(VaultError::UnknownVersion(version));
        }
        if rest.len() < KEY_ID_LEN + NONCE_LEN + TAG_LEN {
            return Err(VaultError::Malformed);
        }
        let (id, rest) = rest.split_at(KEY_ID_LEN);
        let found = KeyId(id.try_into().map_err(|_| VaultError::Malformed)?);
        if found != self.key_id {
            return Err(VaultError::WrongKey { expected: self.key_id, found });
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Malformed)?;
        let key = self.aead_key(purpose)?;
        let mut buffer = Zeroizing::new(sealed.to_vec());
        let plain = key
            .open_in_place(nonce, Aad::from(Self::aad(purpose, context)), buffer.as_mut_slice())
            .map_err(|_| VaultError::Tampered)?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

fn expand(prk: &hkdf::Prk, info: &[u8], out: &mut [u8]) -> Result<(), VaultError> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let infos = [info];
    let okm = prk.expand(&infos, Len(out.len())).map_err(|_| VaultError::Crypto)?;
    okm.fill(out).map_err(|_| VaultError::Crypto)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&RootKey::from_bytes([byte; 32])).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_with_the_same_key_purpose_and_owner() {
        let s = sealer(7);
        let blob = s.seal(Purpose::TotpSeed, b"user-1", b"seed bytes").unwrap();
        assert_eq!(blob[0], 1);
        assert_eq!(blob.len(), HEADER_LEN + 10 + TAG_LEN);
        assert!(!blob.windows(10).any(|w| w == b"seed bytes"), "ciphertext only");
        assert_eq!(s.open(Purpose::TotpSeed, b"user-1", &blob).unwrap().as_slice(), b"seed bytes");
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let s = sealer(7);
        let a = s.seal(Purpose::TotpSeed, b"u", b"same").unwrap();
        let b = s.seal(Purpose::TotpSeed, b"u", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn another_owner_or_a_flipped_bit_does_not_open() {
        let s = sealer(7);
        let blob = s.seal(Purpose::TotpSeed, b"user-1", b"seed").unwrap();
        assert_eq!(s.open(Purpose::TotpSeed, b"user-2", &blob), Err(VaultError::Tampered));
        for i in HEADER_LEN - NONCE_LEN..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 1;
            assert_eq!(s.open(Purpose::TotpSeed, b"user-1", &bad), Err(VaultError::Tampered), "byte {i}");
        }
    }

    #[test]
    fn another_root_key_is_named_not_misread() {
        let blob = sealer(7).seal(Purpose::TotpSeed, b"u", b"seed").unwrap();
        let other = sealer(8);
        assert!(matches!(other.open(Purpose::TotpSeed, b"u", &blob), Err(VaultError::WrongKey { .. })));
        assert_ne!(sealer(7).key_id(), other.key_id());
        assert_eq!(sealer(7).key_id(), sealer(7).key_id(), "the id is a function of the key");
    }

    #[test]
    fn truncated_or_unknown_blobs_are_refused() {
        let s = sealer(1);
        assert_eq!(s.open(Purpose::TotpSeed, b"u", &[]), Err(VaultError::Malformed));
        assert_eq!(s.open(Purpose::TotpSeed, b"u", &[2, 0, 0]), Err(VaultError::UnknownVersion(2)));
        let blob = s.seal(Purpose::TotpSeed, b"u", b"").unwrap();
        assert_eq!(s.open(Purpose::TotpSeed, b"u", &blob[..blob.len() - 1]), Err(VaultError::Malformed));
    }

    #[test]
    fn the_key_file_round_trips_and_rejects_other_lengths() {
        let key = RootKey::generate().unwrap();
        let text = key.to_file_text();
        let again = RootKey::from_file_text(&text).unwrap();
        assert_eq!(Sealer::new(&key).unwrap().key_id(), Sealer::new(&again).unwrap().key_id());
        assert_eq!(RootKey::from_file_text("c2hvcnQ=").unwrap_err(), VaultError::BadKeyFile);
        assert_eq!(RootKey::from_file_text("not base64!").unwrap_err(), VaultError::BadKeyFile);
        assert_eq!(format!("{key:?}"), "RootKey(***)");
    }
}
