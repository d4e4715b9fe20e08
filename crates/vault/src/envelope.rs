//! Envelope sealing, the design of `spec/security.md` section 3.
//!
//! Three levels of keys, as in Vault Transit or a KMS:
//! - the **root key** (a file, never in the database) wraps
//! - a **ring of key-encryption keys** (KEKs), versioned, one of them active for writes, stored
//!   wrapped in the database; each KEK wraps
//! - one fresh **data key** (DEK) per sealed secret, which encrypts the secret.
//!
//! Every layer is XChaCha20-Poly1305 with a random 192-bit nonce. The associated data of the secret
//! is the canonical encoding of a [`Binding`] (owner, row, venue, purpose); that of the DEK wrap is
//! the same plus the KEK version. So a blob moved to another user, row, venue or purpose does not
//! open, and neither does a DEK relabelled with another version. Rotation rewraps only the small
//! DEK ([`KekRing::rewrap`]); the secret's ciphertext never changes.
//!
//! Blob, format 1 (every integer big-endian; the decoder refuses unknown values and trailing bytes):
//!
//! ```text
//! [0]       format = 1
//! [1]       algorithm = 1 (XChaCha20-Poly1305)
//! [2..6]    KEK version, u32
//! [6..8]    length of the wrapped DEK, u16 = 72
//! [8..80]   wrapped DEK: nonce(24) || ciphertext(32) || tag(16)
//! [80..104] nonce(24)
//! [104..108] length of ciphertext || tag, u32
//! [108..]   ciphertext || tag(16)
//! ```

use std::collections::BTreeMap;
use std::fmt;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::{RootKey, VaultError};

pub const FORMAT: u8 = 1;
const ALG_XCHACHA20_POLY1305: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
const WRAPPED_KEY_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
const HEADER_LEN: usize = 1 + 1 + 4 + 2 + WRAPPED_KEY_LEN + NONCE_LEN + 4;
/// The tag of the associated data, so no other structure can encode to the same bytes.
const BINDING_FORMAT: &str = "bulwark-secret/v1";

/// What a secret is for; part of its binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretPurpose {
    ExchangeApiSecret,
    ExchangePassphrase,
    ExchangePrivateKey,
    TotpSeed,
    /// A bot's webhook secret: the HMAC key of its signed requests.
    WebhookSecret,
}

impl SecretPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretPurpose::ExchangeApiSecret => "exchange_api_secret",
            SecretPurpose::ExchangePassphrase => "exchange_passphrase",
            SecretPurpose::ExchangePrivateKey => "exchange_private_key",
            SecretPurpose::TotpSeed => "totp_seed",
            SecretPurpose::WebhookSecret => "webhook_secret",
        }
    }

    /// The inverse of [`SecretPurpose::as_str`].
    pub fn parse(raw: &str) -> Option<SecretPurpose> {
        [
            SecretPurpose::ExchangeApiSecret,
            SecretPurpose::ExchangePassphrase,
            SecretPurpose::ExchangePrivateKey,
            SecretPurpose::TotpSeed,
            SecretPurpose::WebhookSecret,
        ]
        .into_iter()
        .find(|p| p.as_str() == raw)
    }
}

/// Whom and what a sealed secret belongs to. Opening needs the same binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub purpose: SecretPurpose,
    pub user_id: String,
    /// The row holding the secret (an exchange account id; the user id for a TOTP seed).
    pub credential_id: String,
    /// The venue (`binance`); empty for secrets that belong to no venue.
    pub exchange: String,
    /// SHA-256 of the public API key; zeros when there is none.
    pub api_key_fingerprint: [u8; 32],
}

impl Binding {
    /// A TOTP seed's binding: its user, and no venue.
    pub fn totp_seed(user_id: &str) -> Binding {
        Binding {
            purpose: SecretPurpose::TotpSeed,
            user_id: user_id.to_owned(),
            credential_id: user_id.to_owned(),
            exchange: String::new(),
            api_key_fingerprint: [0; 32],
        }
    }

    /// A bot's webhook secret's binding: the bot's user and the bot, no venue. The current secret
    /// and the previous one share it (a rotation moves the blob, it does not reseal it).
    pub fn webhook_secret(user_id: &str, bot_id: &str) -> Binding {
        Binding {
            purpose: SecretPurpose::WebhookSecret,
            user_id: user_id.to_owned(),
            credential_id: bot_id.to_owned(),
            exchange: String::new(),
            api_key_fingerprint: [0; 32],
        }
    }

    /// Canonical, length-prefixed encoding: each field is `u32 length || bytes`, in a fixed
    /// order, so no two bindings encode alike. The associated data of the secret.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        for field in [
            BINDING_FORMAT.as_bytes(),
            self.purpose.as_str().as_bytes(),
            self.user_id.as_bytes(),
            self.credential_id.as_bytes(),
            self.exchange.as_bytes(),
            &self.api_key_fingerprint,
        ] {
            push_field(&mut out, field);
        }
        out
    }

    /// The associated data of the DEK wrap: the binding and the KEK version.
    fn encode_for_wrap(&self, kek_version: u32) -> Vec<u8> {
        let mut out = self.encode();
        push_field(&mut out, &kek_version.to_be_bytes());
        out
    }
}

/// A key-encryption key. Redacted in `Debug`, zeroized on drop.
pub struct Kek {
    version: u32,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek(v{}, ***)", self.version)
    }
}

impl Kek {
    /// A fresh KEK of `version` from the OS CSPRNG.
    ///
    /// # Errors
    /// `VaultError::Crypto` if the random source fails.
    pub fn generate(version: u32) -> Result<Kek, VaultError> {
        Ok(Kek { version, key: Zeroizing::new(random()?) })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// The KEK wrapped by the root key, for the database: `nonce || ciphertext || tag`, with the
    /// associated data `"kek" || version`.
    ///
    /// # Errors
    /// `VaultError::Crypto` if the random source fails.
    pub fn wrap(&self, root: &RootKey) -> Result<Vec<u8>, VaultError> {
        seal_raw(root.bytes(), &kek_aad(self.version), self.key.as_slice())
    }

    /// Unwraps a stored KEK.
    ///
    /// # Errors
    /// `VaultError::Tampered` for another root key, another version or a modified value.
    pub fn unwrap(root: &RootKey, version: u32, wrapped: &[u8]) -> Result<Kek, VaultError> {
        let key = key_from(open_raw(root.bytes(), &kek_aad(version), wrapped)?)?;
        Ok(Kek { version, key })
    }
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

fn kek_aad(version: u32) -> Vec<u8> {
    let mut aad = b"kek".to_vec();
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// The KEKs a node can use: every version not destroyed, and the one active for writes.
#[derive(Debug)]
pub struct KekRing {
    active: u32,
    keys: BTreeMap<u32, Kek>,
}

impl KekRing {
    /// # Errors
    /// `VaultError::NoActiveKey` when `active` is not among `keys`.
    pub fn new(active: u32, keys: Vec<Kek>) -> Result<KekRing, VaultError> {
        let keys: BTreeMap<u32, Kek> = keys.into_iter().map(|k| (k.version, k)).collect();
        if !keys.contains_key(&active) {
            return Err(VaultError::NoActiveKey);
        }
        Ok(KekRing { active, keys })
    }

    pub fn active_version(&self) -> u32 {
        self.active
    }

    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.keys().copied()
    }

    fn get(&self, version: u32) -> Result<&Kek, VaultError> {
        self.keys.get(&version).ok_or(VaultError::UnknownKeyVersion(version))
    }

    /// Seals `plaintext` under a fresh DEK wrapped by the active KEK.
    ///
    /// # Errors
    /// `VaultError::Crypto` if the random source fails.
    pub fn seal(&self, binding: &Binding, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let kek = self.get(self.active)?;
        let dek = Zeroizing::new(random::<KEY_LEN>()?);
        let wrapped = seal_raw(&kek.key, &binding.encode_for_wrap(kek.version), dek.as_slice())?;
        let body = seal_raw(&dek, &binding.encode(), plaintext)?;
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        assemble(kek.version, &wrapped, nonce, ciphertext)
    }

    /// Opens a format-2 blob sealed with the same binding.
    ///
    /// # Errors
    /// `Malformed`/`UnknownVersion` for a blob that does not parse strictly, `UnknownKeyVersion`
    /// for a KEK this ring does not hold (destroyed), `Tampered` for anything that does not
    /// authenticate (another binding, a flipped bit).
    pub fn open(&self, binding: &Binding, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let parts = Parts::parse(blob)?;
        let kek = self.get(parts.kek_version)?;
        let dek = key_from(open_raw(&kek.key, &binding.encode_for_wrap(parts.kek_version), parts.wrapped_dek)?)?;
        let mut body = parts.nonce.to_vec();
        body.extend_from_slice(parts.ciphertext);
        open_raw(&dek, &binding.encode(), &body)
    }

    /// The same secret with its DEK rewrapped under the active KEK (rotation). The secret's
    /// ciphertext is carried over unchanged. A blob already under the active KEK comes back as is.
    ///
    /// # Errors
    /// As [`KekRing::open`].
    pub fn rewrap(&self, binding: &Binding, blob: &[u8]) -> Result<Vec<u8>, VaultError> {
        let parts = Parts::parse(blob)?;
        if parts.kek_version == self.active {
            return Ok(blob.to_vec());
        }
        let old = self.get(parts.kek_version)?;
        let dek = key_from(open_raw(&old.key, &binding.encode_for_wrap(parts.kek_version), parts.wrapped_dek)?)?;
        // The DEK is checked against the secret before it is rewrapped, so a rotation never
        // writes a blob that would not open.
        let mut body = parts.nonce.to_vec();
        body.extend_from_slice(parts.ciphertext);
        open_raw(&dek, &binding.encode(), &body)?;
        let new = self.get(self.active)?;
        let wrapped = seal_raw(&new.key, &binding.encode_for_wrap(new.version), dek.as_slice())?;
        assemble(new.version, &wrapped, parts.nonce, parts.ciphertext)
    }
}

fn assemble(kek_version: u32, wrapped_dek: &[u8], nonce: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, VaultError> {
    let mut blob = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    blob.push(FORMAT);
    blob.push(ALG_XCHACHA20_POLY1305);
    blob.extend_from_slice(&kek_version.to_be_bytes());
    blob.extend_from_slice(&u16::try_from(wrapped_dek.len()).map_err(|_| VaultError::Malformed)?.to_be_bytes());
    blob.extend_from_slice(wrapped_dek);
    blob.extend_from_slice(nonce);
    blob.extend_from_slice(&u32::try_from(ciphertext.len()).map_err(|_| VaultError::Malformed)?.to_be_bytes());
    blob.extend_from_slice(ciphertext);
    Ok(blob)
}

/// The KEK version a blob names, without opening it (for rotation bookkeeping).
///
/// # Errors
/// As the strict parse of [`KekRing::open`].
pub fn kek_version_of(blob: &[u8]) -> Result<u32, VaultError> {
    Parts::parse(blob).map(|p| p.kek_version)
}

struct Parts<'a> {
    kek_version: u32,
    wrapped_dek: &'a [u8],
    nonce: &'a [u8],
    ciphertext: &'a [u8],
}

impl<'a> Parts<'a> {
    fn parse(blob: &'a [u8]) -> Result<Parts<'a>, VaultError> {
        let mut r = Reader(blob);
        let format = r.take(1)?[0];
        if format != FORMAT {
            return Err(VaultError::UnknownVersion(format));
        }
        let alg = r.take(1)?[0];
        if alg != ALG_XCHACHA20_POLY1305 {
            return Err(VaultError::UnknownAlgorithm(alg));
        }
        let kek_version = u32::from_be_bytes(r.array()?);
        let wrapped_len = usize::from(u16::from_be_bytes(r.array()?));
        if wrapped_len != WRAPPED_KEY_LEN {
            return Err(VaultError::Malformed);
        }
        let wrapped_dek = r.take(wrapped_len)?;
        let nonce = r.take(NONCE_LEN)?;
        let body_len = usize::try_from(u32::from_be_bytes(r.array()?)).map_err(|_| VaultError::Malformed)?;
        if body_len < TAG_LEN {
            return Err(VaultError::Malformed);
        }
        let ciphertext = r.take(body_len)?;
        if !r.0.is_empty() {
            return Err(VaultError::TrailingBytes);
        }
        Ok(Parts { kek_version, wrapped_dek, nonce, ciphertext })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], VaultError> {
        if self.0.len() < n {
            return Err(VaultError::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], VaultError> {
        self.take(N)?.try_into().map_err(|_| VaultError::Malformed)
    }
}

fn key_from(plain: Zeroizing<Vec<u8>>) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if plain.len() != KEY_LEN {
        return Err(VaultError::Malformed);
    }
    key.copy_from_slice(&plain);
    Ok(key)
}

fn xnonce(nonce: &[u8]) -> Result<XNonce, VaultError> {
    let bytes: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Malformed)?;
    Ok(XNonce::from(bytes))
}

fn random<const N: usize>() -> Result<[u8; N], VaultError> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).map_err(|_| VaultError::Crypto)?;
    Ok(out)
}

/// XChaCha20-Poly1305 with a random nonce: `nonce || ciphertext || tag`.
fn seal_raw(key: &[u8; KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
    let nonce: [u8; NONCE_LEN] = random()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&encrypt_with(key, &nonce, aad, plaintext)?);
    Ok(out)
}

/// The AEAD itself: `ciphertext || tag` under a given nonce (the Wycheproof vectors test this).
fn encrypt_with(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, VaultError> {
    XChaCha20Poly1305::new(key.into())
        .encrypt(&XNonce::from(*nonce), Payload { msg, aad })
        .map_err(|_| VaultError::Crypto)
}

fn open_raw(key: &[u8; KEY_LEN], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(VaultError::Malformed);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher.decrypt(&xnonce(nonce)?, Payload { msg: body, aad }).map(Zeroizing::new).map_err(|_| VaultError::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> RootKey {
        RootKey::from_bytes([3; 32])
    }

    fn ring(versions: &[u32], active: u32) -> KekRing {
        KekRing::new(active, versions.iter().map(|v| Kek::generate(*v).unwrap()).collect()).unwrap()
    }

    fn binding() -> Binding {
        Binding {
            purpose: SecretPurpose::ExchangeApiSecret,
            user_id: "user-a".into(),
            credential_id: "acct-1".into(),
            exchange: "binance".into(),
            api_key_fingerprint: [7; 32],
        }
    }

    #[test]
    fn seal_and_open_round_trip_with_a_fresh_data_key_each_time() {
        let ring = ring(&[1], 1);
        let a = ring.seal(&binding(), b"api secret").unwrap();
        let b = ring.seal(&binding(), b"api secret").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), HEADER_LEN + 10 + TAG_LEN);
        assert_eq!((a[0], a[1], kek_version_of(&a).unwrap()), (1, 1, 1));
        assert_eq!(ring.open(&binding(), &a).unwrap().as_slice(), b"api secret");
        assert!(!a.windows(10).any(|w| w == b"api secret"));
    }

    // SEC-2: every field of the binding counts.
    #[test]
    fn a_blob_moved_to_another_owner_row_venue_or_purpose_does_not_open() {
        let ring = ring(&[1], 1);
        let blob = ring.seal(&binding(), b"s").unwrap();
        let variants = [
            Binding { user_id: "user-b".into(), ..binding() },
            Binding { credential_id: "acct-2".into(), ..binding() },
            Binding { exchange: "bybit".into(), ..binding() },
            Binding { purpose: SecretPurpose::TotpSeed, ..binding() },
            Binding { api_key_fingerprint: [8; 32], ..binding() },
        ];
        for other in variants {
            assert_eq!(ring.open(&other, &blob).unwrap_err(), VaultError::Tampered, "{other:?}");
        }
        // Length prefixes keep field boundaries: moving a character between fields changes it.
        let shifted = Binding { user_id: "user-".into(), credential_id: "aacct-1".into(), ..binding() };
        assert_eq!(ring.open(&shifted, &blob).unwrap_err(), VaultError::Tampered);
    }

    // Every bit of the blob is covered: header fields by the strict parse, the rest by the tags.
    #[test]
    fn every_bit_flip_fails() {
        let ring = ring(&[1, 2], 1);
        let blob = ring.seal(&binding(), b"secret bytes").unwrap();
        for i in 0..blob.len() {
            for bit in 0..8 {
                let mut bad = blob.clone();
                bad[i] ^= 1 << bit;
                assert!(ring.open(&binding(), &bad).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn strict_parsing_refuses_trailing_bytes_truncation_and_unknown_versions() {
        let ring = ring(&[1], 1);
        let blob = ring.seal(&binding(), b"s").unwrap();
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(ring.open(&binding(), &longer).unwrap_err(), VaultError::TrailingBytes);
        for cut in 0..blob.len() {
            assert!(ring.open(&binding(), &blob[..cut]).is_err(), "truncated at {cut}");
        }
        let mut v3 = blob.clone();
        v3[0] = 3;
        assert_eq!(ring.open(&binding(), &v3).unwrap_err(), VaultError::UnknownVersion(3));
        let mut alg = blob.clone();
        alg[1] = 9;
        assert_eq!(ring.open(&binding(), &alg).unwrap_err(), VaultError::UnknownAlgorithm(9));
    }

    #[test]
    fn rewrap_moves_to_the_active_version_and_old_versions_can_be_destroyed() {
        let v1 = Kek::generate(1).unwrap();
        let v2 = Kek::generate(2).unwrap();
        let wrapped1 = v1.wrap(&root()).unwrap();
        let wrapped2 = v2.wrap(&root()).unwrap();
        let old_ring = KekRing::new(1, vec![Kek::unwrap(&root(), 1, &wrapped1).unwrap()]).unwrap();
        let blob = old_ring.seal(&binding(), b"secret").unwrap();

        let both = KekRing::new(
            2,
            vec![Kek::unwrap(&root(), 1, &wrapped1).unwrap(), Kek::unwrap(&root(), 2, &wrapped2).unwrap()],
        )
        .unwrap();
        assert_eq!(both.open(&binding(), &blob).unwrap().as_slice(), b"secret", "reads accept any live version");
        let moved = both.rewrap(&binding(), &blob).unwrap();
        assert_eq!(kek_version_of(&moved).unwrap(), 2);
        assert_eq!(moved[80..], blob[80..], "only the wrapped data key changes");
        assert_eq!(both.rewrap(&binding(), &moved).unwrap(), moved, "idempotent");
        assert_eq!(both.open(&binding(), &moved).unwrap().as_slice(), b"secret");

        let destroyed = KekRing::new(2, vec![Kek::unwrap(&root(), 2, &wrapped2).unwrap()]).unwrap();
        assert_eq!(destroyed.open(&binding(), &moved).unwrap().as_slice(), b"secret");
        assert_eq!(destroyed.open(&binding(), &blob).unwrap_err(), VaultError::UnknownKeyVersion(1));
    }

    #[test]
    fn purposes_round_trip_through_their_names() {
        for p in [
            SecretPurpose::ExchangeApiSecret,
            SecretPurpose::ExchangePassphrase,
            SecretPurpose::ExchangePrivateKey,
            SecretPurpose::TotpSeed,
        ] {
            assert_eq!(SecretPurpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(SecretPurpose::parse("totp"), None);
    }

    #[test]
    fn a_kek_unwraps_only_with_its_root_key_and_version() {
        let kek = Kek::generate(4).unwrap();
        let wrapped = kek.wrap(&root()).unwrap();
        assert!(Kek::unwrap(&root(), 4, &wrapped).is_ok());
        assert_eq!(Kek::unwrap(&RootKey::from_bytes([4; 32]), 4, &wrapped).unwrap_err(), VaultError::Tampered);
        assert_eq!(Kek::unwrap(&root(), 5, &wrapped).unwrap_err(), VaultError::Tampered);
        assert_eq!(format!("{kek:?}"), "Kek(v4, ***)");
        assert!(KekRing::new(2, vec![kek]).is_err(), "the active version must be in the ring");
    }

    // C2SP/Wycheproof vectors (via the `wycheproof` crate, Apache-2.0) through the functions every
    // seal and open use.
    #[test]
    fn wycheproof_xchacha20_poly1305() {
        let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::XChaCha20Poly1305).unwrap();
        let mut checked = 0;
        for group in &set.test_groups {
            for t in &group.tests {
                let key: Option<&[u8; KEY_LEN]> = t.key.as_ref().try_into().ok();
                let nonce: Option<&[u8; NONCE_LEN]> = t.nonce.as_ref().try_into().ok();
                let mut sealed = t.nonce.to_vec();
                sealed.extend_from_slice(&t.ct);
                sealed.extend_from_slice(&t.tag);
                let opened = key.and_then(|key| open_raw(key, &t.aad, &sealed).ok());
                match t.result {
                    wycheproof::TestResult::Valid => {
                        let (key, nonce) = (key.unwrap(), nonce.unwrap());
                        assert_eq!(opened.as_deref().map(Vec::as_slice), Some(&t.pt[..]), "tc {}", t.tc_id);
                        let encrypted = encrypt_with(key, nonce, &t.aad, &t.pt).unwrap();
                        assert_eq!(encrypted, sealed[NONCE_LEN..], "tc {}", t.tc_id);
                    }
                    wycheproof::TestResult::Invalid => assert!(opened.is_none(), "tc {} must fail", t.tc_id),
                    wycheproof::TestResult::Acceptable => {}
                }
                checked += 1;
            }
        }
        assert!(checked > 100, "the vector file was read ({checked} cases)");
    }
}
