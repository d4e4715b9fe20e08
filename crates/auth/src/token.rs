//! Opaque bearer tokens: session cookies, email-verification and password-reset links.
//!
//! A token is 256 bits from the CSPRNG, shown to its holder once as unpadded base64url (43
//! characters) and stored only as its SHA-256. A fast hash is right here (ASVS 6.5.2 logic): the
//! input has 256 bits of entropy, so there is nothing to brute-force.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::Random;

const TOKEN_BYTES: usize = 32;
const TOKEN_CHARS: usize = 43;

/// The secret form of a token. Never logged: `Debug` prints `OpaqueToken(***)`.
pub struct OpaqueToken(Zeroizing<String>);

/// The stored form of a token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
}

impl OpaqueToken {
    pub fn generate(random: &dyn Random) -> OpaqueToken {
        let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
        random.fill(bytes.as_mut_slice());
        OpaqueToken(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_slice())))
    }

    /// Accepts exactly the shape `generate` produces, so junk never reaches a database lookup.
    ///
    /// # Errors
    /// `TokenError::Malformed` for anything that is not 43 base64url characters encoding 32 bytes.
    pub fn parse(raw: &str) -> Result<OpaqueToken, TokenError> {
        if raw.len() != TOKEN_CHARS {
            return Err(TokenError::Malformed);
        }
        let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(raw).map_err(|_| TokenError::Malformed)?);
        if bytes.len() != TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        Ok(OpaqueToken(Zeroizing::new(raw.to_owned())))
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The token itself, for the one place it is handed to its holder (a cookie, a mailed link).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken(***)")
    }
}

impl TokenHash {
    pub fn from_bytes(bytes: [u8; 32]) -> TokenHash {
        TokenHash(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time comparison, for the rare case a hash is compared outside the database.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Even the hash is kept out of logs: it is the lookup key of a live credential.
        f.write_str("TokenHash(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsRandom;

    #[test]
    fn generated_tokens_parse_and_hash_stably() {
        let token = OpaqueToken::generate(&OsRandom);
        assert_eq!(token.expose().len(), TOKEN_CHARS);
        let again = OpaqueToken::parse(token.expose()).unwrap();
        assert!(again.hash().ct_eq(&token.hash()));
        assert_ne!(OpaqueToken::generate(&OsRandom).expose(), token.expose());
    }

    #[test]
    fn the_hash_is_sha256_of_the_text() {
        let token = OpaqueToken::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let expected: [u8; 32] = Sha256::digest(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").into();
        assert_eq!(token.hash().as_bytes(), &expected);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "short", &"A".repeat(42), &"A".repeat(44), &format!("{}!", "A".repeat(42))] {
            assert_eq!(OpaqueToken::parse(bad).err(), Some(TokenError::Malformed), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = OpaqueToken::generate(&OsRandom);
        assert!(!format!("{token:?}").contains(token.expose()));
        assert_eq!(format!("{:?}", token.hash()), "TokenHash(***)");
    }
}
