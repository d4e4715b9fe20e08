//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP) and backup codes (AU-6, AU-7).
//!
//! Bulwark issues SHA-1, 6-digit, 30-second TOTP, which every authenticator app understands, and
//! accepts the current step and one step either side. A code is accepted only for a step later than
//! the last one used by the same user, so a code seen over a shoulder is useless once used (RFC 6238
//! section 5.2). SHA-256 and SHA-512 are implemented for the RFC's own test vectors.

use std::fmt;

use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::Random;

/// The HMAC behind the one-time password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// Seconds per time step.
pub const TOTP_STEP_SECS: u64 = 30;
/// Digits of a code.
pub const TOTP_DIGITS: u32 = 6;
/// Bytes of a new seed: 160 bits, the RFC 4226 recommendation and what AU-6 asks for.
pub const TOTP_SEED_BYTES: usize = 20;

fn mac_bytes(algorithm: TotpAlgorithm, key: &[u8], message: &[u8]) -> Zeroizing<Vec<u8>> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    #[allow(clippy::expect_used)]
    let out = match algorithm {
        TotpAlgorithm::Sha1 => {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        TotpAlgorithm::Sha256 => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        TotpAlgorithm::Sha512 => {
            let mut mac = Hmac::<sha2::Sha512>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
    };
    Zeroizing::new(out)
}

/// RFC 4226 HOTP: the `digits`-digit code for `counter` (dynamic truncation of the HMAC).
pub fn hotp(algorithm: TotpAlgorithm, key: &[u8], counter: u64, digits: u32) -> u32 {
    let mac = mac_bytes(algorithm, key, &counter.to_be_bytes());
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    binary % 10u32.pow(digits)
}

/// The time step that contains `unix_secs`.
pub fn totp_step(unix_secs: u64) -> u64 {
    unix_secs / TOTP_STEP_SECS
}

/// RFC 6238 TOTP at `unix_secs` with T0 = 0 and a 30-second step.
pub fn totp(algorithm: TotpAlgorithm, key: &[u8], unix_secs: u64, digits: u32) -> u32 {
    hotp(algorithm, key, totp_step(unix_secs), digits)
}

/// A TOTP seed. Redacted in `Debug`, zeroized on drop; sealed before it is stored.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    pub fn generate(random: &dyn Random) -> TotpSecret {
        let mut bytes = Zeroizing::new(vec![0u8; TOTP_SEED_BYTES]);
        random.fill(&mut bytes);
        TotpSecret(bytes)
    }

    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> TotpSecret {
        TotpSecret(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The seed as unpadded RFC 4648 base32, the form authenticator apps take.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32_encode(&self.0))
    }

    /// The `otpauth://` URI an authenticator app scans (Key Uri Format).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        let label = format!("{}:{}", uri_escape(issuer), uri_escape(account));
        Zeroizing::new(format!(
            "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}",
            self.to_base32().as_str(),
            uri_escape(issuer)
        ))
    }

    /// Checks `code` at `unix_secs`, allowing one step of drift either way, and only for steps after
    /// `last_used_step`. Returns the step the code matched; the caller stores it (in the same
    /// transaction as the sign-in) as the new `last_used_step`.
    pub fn verify(&self, code: &TotpCode, unix_secs: u64, last_used_step: Option<u64>) -> Option<u64> {
        let now = totp_step(unix_secs);
        let mut matched = None;
        // Every candidate is computed and compared, so timing does not tell which step matched.
        for step in [now.saturating_sub(1), now, now + 1] {
            let expected = hotp(TotpAlgorithm::Sha1, &self.0, step, TOTP_DIGITS);
            let equal: bool = expected.to_be_bytes().ct_eq(&code.0.to_be_bytes()).into();
            let fresh = last_used_step.is_none_or(|last| step > last);
            if equal && fresh && matched.is_none() {
                matched = Some(step);
            }
        }
        matched
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(***)")
    }
}

/// A code as typed: exactly six ASCII digits, spaces allowed between them ("123 456").
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TotpCode(u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("a code is 6 digits")]
    Malformed,
}

impl TotpCode {
    /// # Errors
    /// `CodeError::Malformed` for letters, signs or any length other than six digits.
    pub fn parse(raw: &str) -> Result<TotpCode, CodeError> {
        let digits: Vec<char> = raw.chars().filter(|c| *c != ' ').collect();
        if digits.len() != TOTP_DIGITS as usize || !digits.iter().all(char::is_ascii_digit) {
            return Err(CodeError::Malformed);
        }
        let value = digits.iter().fold(0u32, |acc, c| acc * 10 + c.to_digit(10).unwrap_or(0));
        Ok(TotpCode(value))
    }

    pub fn from_value(value: u32) -> TotpCode {
        TotpCode(value % 10u32.pow(TOTP_DIGITS))
    }
}

impl fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpCode(***)")
    }
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes RFC 4648 base32, case-insensitive, ignoring padding, spaces and dashes.
///
/// # Errors
/// `CodeError::Malformed` for characters outside the alphabet.
pub fn base32_decode(text: &str) -> Result<Vec<u8>, CodeError> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.chars().filter(|c| !matches!(c, '=' | ' ' | '-')) {
        let upper = c.to_ascii_uppercase();
        let value = BASE32.iter().position(|&b| char::from(b) == upper).ok_or(CodeError::Malformed)?;
        buffer = (buffer << 5) | u32::try_from(value).unwrap_or(0);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Ok(out)
}

fn uri_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => char::from(b).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Backup codes: 10 single-use codes of 50 bits each, written as two groups of five base32
/// characters in lower case (`k7w2q-m4xzp`). They are stored as Argon2id hashes (AU-7).
pub const BACKUP_CODE_COUNT: usize = 10;

/// A fresh set of backup codes, shown to the user once.
pub fn generate_backup_codes(random: &dyn Random) -> Vec<Zeroizing<String>> {
    (0..BACKUP_CODE_COUNT)
        .map(|_| {
            let mut bytes = Zeroizing::new([0u8; 7]);
            random.fill(bytes.as_mut_slice());
            // 50 bits: the first 10 base32 characters of 7 random bytes (56 bits).
            let encoded = Zeroizing::new(base32_encode(bytes.as_slice()).to_ascii_lowercase());
            Zeroizing::new(format!("{}-{}", &encoded[..5], &encoded[5..10]))
        })
        .collect()
}

/// The canonical form of a typed backup code (lower case, no spaces or dashes), or `None` when it
/// cannot be one.
pub fn normalize_backup_code(raw: &str) -> Option<Zeroizing<String>> {
    let cleaned: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect::<String>().to_ascii_lowercase();
    let cleaned = Zeroizing::new(cleaned);
    let valid = cleaned.len() == 10 && cleaned.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    valid.then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsRandom;

    const SEED20: &[u8] = b"12345678901234567890";
    const SEED32: &[u8] = b"12345678901234567890123456789012";
    const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    // RFC 6238 Appendix B, verbatim (spec/security.md 2.6): time, TOTP, mode. 8 digits.
    const RFC6238: [(u64, u32, TotpAlgorithm); 18] = [
        (59, 94287082, TotpAlgorithm::Sha1),
        (59, 46119246, TotpAlgorithm::Sha256),
        (59, 90693936, TotpAlgorithm::Sha512),
        (1111111109, 7081804, TotpAlgorithm::Sha1),
        (1111111109, 68084774, TotpAlgorithm::Sha256),
        (1111111109, 25091201, TotpAlgorithm::Sha512),
        (1111111111, 14050471, TotpAlgorithm::Sha1),
        (1111111111, 67062674, TotpAlgorithm::Sha256),
        (1111111111, 99943326, TotpAlgorithm::Sha512),
        (1234567890, 89005924, TotpAlgorithm::Sha1),
        (1234567890, 91819424, TotpAlgorithm::Sha256),
        (1234567890, 93441116, TotpAlgorithm::Sha512),
        (2000000000, 69279037, TotpAlgorithm::Sha1),
        (2000000000, 90698825, TotpAlgorithm::Sha256),
        (2000000000, 38618901, TotpAlgorithm::Sha512),
        (20000000000, 65353130, TotpAlgorithm::Sha1),
        (20000000000, 77737706, TotpAlgorithm::Sha256),
        (20000000000, 47863826, TotpAlgorithm::Sha512),
    ];

    #[test]
    fn rfc_6238_appendix_b() {
        for (time, expected, algorithm) in RFC6238 {
            let seed = match algorithm {
                TotpAlgorithm::Sha1 => SEED20,
                TotpAlgorithm::Sha256 => SEED32,
                TotpAlgorithm::Sha512 => SEED64,
            };
            assert_eq!(totp(algorithm, seed, time, 8), expected, "{algorithm:?} at {time}");
        }
    }

    #[test]
    fn rfc_6238_pitfall_the_20_byte_seed_does_not_give_the_sha256_row() {
        assert_eq!(totp(TotpAlgorithm::Sha256, SEED20, 59, 8), 32247374);
    }

    // RFC 4226 Appendix D: counters 0..9, six digits.
    #[test]
    fn rfc_4226_appendix_d() {
        let expected = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(hotp(TotpAlgorithm::Sha1, SEED20, counter as u64, 6), *want, "counter {counter}");
        }
    }

    #[test]
    fn base32_of_the_rfc_seed() {
        assert_eq!(base32_encode(SEED20), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(base32_decode("gezdgnbvgy3tqojqgezdgnbvgy3tqojq").unwrap(), SEED20);
        // RFC 4648 section 10 vectors.
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("MZXW6YQ="), Ok(b"foob".to_vec()));
        assert_eq!(base32_decode("MZ1"), Err(CodeError::Malformed));
    }

    #[test]
    fn codes_parse_strictly() {
        assert_eq!(TotpCode::parse("287082"), Ok(TotpCode(287082)));
        assert_eq!(TotpCode::parse("287 082"), Ok(TotpCode(287082)));
        assert_eq!(TotpCode::parse("012345"), Ok(TotpCode(12345)));
        assert_eq!(TotpCode::parse(" 287082 "), Ok(TotpCode(287082)), "spaces around are fine");
        for bad in ["", "28708", "2870822", "28708a", "-28708", "２８７０８２", "+87082", "28708\t2"] {
            assert_eq!(TotpCode::parse(bad), Err(CodeError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn verify_allows_one_step_of_drift_and_each_step_once() {
        let secret = TotpSecret::from_bytes(Zeroizing::new(SEED20.to_vec()));
        let now = 1_111_111_111;
        let step = totp_step(now);
        let code_at = |s: u64| TotpCode::from_value(hotp(TotpAlgorithm::Sha1, SEED20, s, 6));
        assert_eq!(secret.verify(&code_at(step), now, None), Some(step));
        assert_eq!(secret.verify(&code_at(step - 1), now, None), Some(step - 1), "one step late");
        assert_eq!(secret.verify(&code_at(step + 1), now, None), Some(step + 1), "one step early");
        assert_eq!(secret.verify(&code_at(step - 2), now, None), None, "two steps is too far");
        assert_eq!(secret.verify(&code_at(step + 2), now, None), None);
        assert_eq!(secret.verify(&code_at(step), now, Some(step)), None, "a used step is refused");
        assert_eq!(secret.verify(&code_at(step - 1), now, Some(step)), None, "and so is an older one");
        assert_eq!(secret.verify(&code_at(step + 1), now, Some(step)), Some(step + 1), "a newer one passes");
    }

    #[test]
    fn otpauth_uri_has_the_key_uri_format() {
        let secret = TotpSecret::from_bytes(Zeroizing::new(SEED20.to_vec()));
        assert_eq!(
            secret.otpauth_uri("Bulwark", "alice+bots@example.com").as_str(),
            "otpauth://totp/Bulwark:alice%2Bbots@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Bulwark&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn new_seeds_are_160_bits_and_differ() {
        let a = TotpSecret::generate(&OsRandom);
        let b = TotpSecret::generate(&OsRandom);
        assert_eq!(a.expose().len(), 20);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "TotpSecret(***)");
    }

    #[test]
    fn backup_codes_are_ten_50_bit_codes() {
        let codes = generate_backup_codes(&OsRandom);
        assert_eq!(codes.len(), 10);
        let mut unique: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            let normal = normalize_backup_code(code).expect("own codes normalize");
            assert_eq!(normal.len(), 10, "10 base32 characters = 50 bits");
        }
        assert_eq!(normalize_backup_code(" K7W2Q M4XZP ").unwrap().as_str(), "k7w2qm4xzp");
        for bad in ["", "k7w2q", "k7w2q-m4xz1", "k7w2q-m4xzp-x"] {
            assert!(normalize_backup_code(bad).is_none(), "{bad:?}");
        }
    }
}
