//! Sealing of secrets at rest (`spec/security.md` section 3).
//!
//! The **root key** (32 random bytes in a file outside the database, `BULWARK_ROOT_KEY_FILE`) wraps
//! a ring of versioned key-encryption keys stored in the database; each secret (today TOTP seeds,
//! with the exchange-key issue API secrets) is sealed under its own data key wrapped by the active
//! KEK, with its owner and purpose bound in as associated data: see [`envelope`]. A database dump
//! without the root key file is useless. Without a usable root key the node runs *sealed*
//! ([`Vault::sealed`]): nothing can be sealed or opened, everything else works.
//!
//! This crate does no file or database IO: the binary reads and creates the key file and loads the
//! ring through the store.

pub mod envelope;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("the root key file is not 32 bytes of base64")]
    BadKeyFile,
    #[error("the sealed value is truncated or malformed")]
    Malformed,
    #[error("the sealed value has format version {0}, which this build does not know")]
    UnknownVersion(u8),
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
    #[error("the vault is sealed: the root key is missing or does not open the key ring")]
    Sealed,
}

/// The vault as a running node has it: unsealed with its key ring, or sealed (no usable root key),
/// in which case nothing can be sealed or opened and everything else keeps working.
///
/// The ring can be replaced while the vault is in use ([`Vault::replace_ring`]): a key rotation
/// adds a KEK version on another node, and this node picks it up by reloading the ring from the
/// database. Seals and opens in flight keep the ring they started with.
#[derive(Debug)]
pub struct Vault {
    ring: RwLock<Option<Arc<envelope::KekRing>>>,
}

impl Vault {
    pub fn unsealed(ring: envelope::KekRing) -> Vault {
        Vault { ring: RwLock::new(Some(Arc::new(ring))) }
    }

    pub fn sealed() -> Vault {
        Vault { ring: RwLock::new(None) }
    }

    pub fn is_sealed(&self) -> bool {
        self.ring().is_none()
    }

    /// Puts `ring` in place of the current one (or unseals a sealed vault). KEKs of the old ring
    /// are zeroized once the last seal or open using it has finished.
    pub fn replace_ring(&self, ring: envelope::KekRing) {
        *self.ring.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(ring));
    }

    /// The version new secrets are sealed under; `None` when sealed.
    pub fn active_version(&self) -> Option<u32> {
        self.ring().map(|ring| ring.active_version())
    }

    /// Whether the ring holds KEK `version`.
    pub fn has_version(&self, version: u32) -> bool {
        self.ring().is_some_and(|ring| ring.versions().any(|v| v == version))
    }

    fn ring(&self) -> Option<Arc<envelope::KekRing>> {
        self.ring.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Seals under the active KEK.
    ///
    /// # Errors
    /// `VaultError::Sealed`, or what [`envelope::KekRing::seal`] reports.
    pub fn seal(&self, binding: &envelope::Binding, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.ring().ok_or(VaultError::Sealed)?.seal(binding, plaintext)
    }

    /// # Errors
    /// `VaultError::Sealed`, `VaultError::UnknownKeyVersion(v)` when the blob names a KEK this
    /// ring does not hold (a newer one not loaded yet: reload and retry; or a destroyed one), or
    /// what else [`envelope::KekRing::open`] reports.
    pub fn open(&self, binding: &envelope::Binding, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.ring().ok_or(VaultError::Sealed)?.open(binding, blob)
    }

    /// The blob with its data key rewrapped under the active KEK (see [`envelope::KekRing::rewrap`]).
    ///
    /// # Errors
    /// As [`Vault::open`].
    pub fn rewrap(&self, binding: &envelope::Binding, blob: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.ring().ok_or(VaultError::Sealed)?.rewrap(binding, blob)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_round_trips_and_rejects_other_lengths() {
        let key = RootKey::generate().unwrap();
        let again = RootKey::from_file_text(&key.to_file_text()).unwrap();
        assert_eq!(key.bytes(), again.bytes());
        assert_eq!(RootKey::from_file_text("c2hvcnQ=").unwrap_err(), VaultError::BadKeyFile);
        assert_eq!(RootKey::from_file_text("not base64!").unwrap_err(), VaultError::BadKeyFile);
        assert_eq!(format!("{key:?}"), "RootKey(***)");
    }

    #[test]
    fn a_sealed_vault_refuses_to_seal_or_open() {
        let vault = Vault::sealed();
        let binding = envelope::Binding::totp_seed("u");
        assert!(vault.is_sealed());
        assert_eq!(vault.seal(&binding, b"x").unwrap_err(), VaultError::Sealed);
        assert_eq!(vault.open(&binding, b"x").unwrap_err(), VaultError::Sealed);
        assert_eq!(vault.rewrap(&binding, b"x").unwrap_err(), VaultError::Sealed);
        assert_eq!(vault.active_version(), None);
    }

    // SEC-4: a vault whose ring is replaced seals under the new active version, still opens what
    // the old one sealed while that version is in the ring, and names the version it lacks.
    #[test]
    fn a_replaced_ring_seals_under_the_new_version_and_names_missing_ones() {
        use envelope::{Kek, KekRing, kek_version_of};
        let root = RootKey::generate().unwrap();
        let w1 = Kek::generate(1).unwrap().wrap(&root).unwrap();
        let w2 = Kek::generate(2).unwrap().wrap(&root).unwrap();
        let k = |v: u32, w: &[u8]| Kek::unwrap(&root, v, w).unwrap();
        let binding = envelope::Binding::totp_seed("u");

        let vault = Vault::unsealed(KekRing::new(1, vec![k(1, &w1)]).unwrap());
        let old = vault.seal(&binding, b"seed").unwrap();
        // Another node rotated and sealed under version 2: this node does not know it yet.
        let newer = KekRing::new(2, vec![k(1, &w1), k(2, &w2)]).unwrap().seal(&binding, b"new").unwrap();
        assert_eq!(vault.open(&binding, &newer).unwrap_err(), VaultError::UnknownKeyVersion(2));
        assert!(!vault.has_version(2));

        vault.replace_ring(KekRing::new(2, vec![k(1, &w1), k(2, &w2)]).unwrap());
        assert_eq!(vault.active_version(), Some(2));
        assert_eq!(vault.open(&binding, &newer).unwrap().as_slice(), b"new");
        assert_eq!(vault.open(&binding, &old).unwrap().as_slice(), b"seed", "decrypt-only versions still open");
        assert_eq!(kek_version_of(&vault.seal(&binding, b"x").unwrap()).unwrap(), 2, "writes use the active one");
        let moved = vault.rewrap(&binding, &old).unwrap();
        assert_eq!(kek_version_of(&moved).unwrap(), 2);

        vault.replace_ring(KekRing::new(2, vec![k(2, &w2)]).unwrap());
        assert_eq!(vault.open(&binding, &old).unwrap_err(), VaultError::UnknownKeyVersion(1), "destroyed");
        assert_eq!(vault.open(&binding, &moved).unwrap().as_slice(), b"seed");

        let sealed = Vault::sealed();
        sealed.replace_ring(KekRing::new(2, vec![k(2, &w2)]).unwrap());
        assert!(!sealed.is_sealed());
    }
}
