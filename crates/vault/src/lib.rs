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
#[derive(Debug)]
pub struct Vault {
    ring: Option<envelope::KekRing>,
}

impl Vault {
    pub fn unsealed(ring: envelope::KekRing) -> Vault {
        Vault { ring: Some(ring) }
    }

    pub fn sealed() -> Vault {
        Vault { ring: None }
    }

    pub fn is_sealed(&self) -> bool {
        self.ring.is_none()
    }

    /// # Errors
    /// `VaultError::Sealed`, or what [`envelope::KekRing::seal`] reports.
    pub fn seal(&self, binding: &envelope::Binding, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.ring.as_ref().ok_or(VaultError::Sealed)?.seal(binding, plaintext)
    }

    /// # Errors
    /// `VaultError::Sealed`, or what [`envelope::KekRing::open`] reports.
    pub fn open(&self, binding: &envelope::Binding, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.ring.as_ref().ok_or(VaultError::Sealed)?.open(binding, blob)
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
    }
}
