//! The optional signed mode for senders that can sign (WH-4), in the shape of Stripe's scheme:
//!
//! ```text
//! Bulwark-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<raw body>")>[,v1=<hex>...]
//! ```
//!
//! The header is read strictly: exactly one `t` (1 to 12 digits, no leading zero), one to
//! `MAX_SIGNATURES` `v1` values of exactly 64 hex digits, nothing else, no spaces, at most
//! `MAX_HEADER_LEN` bytes. Several `v1` let a sender sign with the old and the new secret while it
//! rotates; several keys let the receiver accept the previous secret during its grace period. A
//! signature is accepted when any `v1` matches the HMAC under any key, compared in constant time,
//! and `t` is within `TOLERANCE` (300 s) of now in either direction.

use std::time::Duration;

use domain::Timestamp;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

/// The header's name.
pub const HEADER: &str = "Bulwark-Signature";

/// How far `t` may be from now, either way.
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// The most `v1` values a header may carry.
pub const MAX_SIGNATURES: usize = 4;

/// The longest header accepted: `t` plus `MAX_SIGNATURES` signatures fit with room to spare.
pub const MAX_HEADER_LEN: usize = 512;

const MAX_T_DIGITS: usize = 12;

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header does not follow the grammar; `reason` says which rule it broke.
    #[error("the {HEADER} header is malformed: {reason}")]
    Malformed { reason: &'static str },
    /// `t` is more than `TOLERANCE` away from now: a replay, or a sender's clock far off.
    #[error("the {HEADER} timestamp is more than 300 seconds from the server's time")]
    OutsideTolerance,
    /// No `v1` is the body's HMAC under any of the keys.
    #[error("no signature in the {HEADER} header matches the body")]
    Mismatch,
}

impl SignatureError {
    /// The machine code of `spec/api.md`'s error shape.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Malformed { .. } | SignatureError::Mismatch => "invalid_signature",
            SignatureError::OutsideTolerance => "stale_signal",
        }
    }
}

/// A parsed `Bulwark-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    timestamp: i64,
    signatures: Vec<[u8; 32]>,
}

impl SignatureHeader {
    /// Parses the header value's bytes (as `http::HeaderValue::as_bytes` gives them).
    ///
    /// # Errors
    /// `SignatureError::Malformed` for anything but the grammar in the module's documentation.
    pub fn parse(value: &[u8]) -> Result<SignatureHeader, SignatureError> {
        let malformed = |reason| SignatureError::Malformed { reason };
        if value.is_empty() {
            return Err(malformed("it is empty"));
        }
        if value.len() > MAX_HEADER_LEN {
            return Err(malformed("it is longer than 512 bytes"));
        }
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in value.split(|&b| b == b',') {
            if let Some(digits) = part.strip_prefix(b"t=") {
                if timestamp.is_some() {
                    return Err(malformed("`t` appears more than once"));
                }
                timestamp = Some(parse_t(digits).ok_or(malformed("`t` must be Unix seconds, 1 to 12 digits"))?);
            } else if let Some(hex_digits) = part.strip_prefix(b"v1=") {
                if signatures.len() == MAX_SIGNATURES {
                    return Err(malformed("it has more than 4 `v1` signatures"));
                }
                let mut signature = [0u8; 32];
                hex::decode_to_slice(hex_digits, &mut signature)
                    .map_err(|_| malformed("a `v1` signature must be 64 hex digits"))?;
                signatures.push(signature);
            } else {
                return Err(malformed("each part must be `t=<unix seconds>` or `v1=<hex>`, comma-separated"));
            }
        }
        let timestamp = timestamp.ok_or(malformed("`t` is missing"))?;
        if signatures.is_empty() {
            return Err(malformed("no `v1` signature"));
        }
        Ok(SignatureHeader { timestamp, signatures })
    }

    /// `t`, in Unix seconds.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Checks `t` against `now` and the signatures against `body` under each of `keys` (the
    /// current secret, and the previous one during its grace period).
    ///
    /// # Errors
    /// `OutsideTolerance` when `t` is more than `TOLERANCE` from now (checked first: a stale
    /// request is refused without computing anything), `Mismatch` when no signature matches.
    pub fn verify(&self, body: &[u8], keys: &[&[u8]], now: Timestamp) -> Result<(), SignatureError> {
        let signed_at = Timestamp::from_unix_millis(self.timestamp.saturating_mul(1000));
        if signed_at.since(now) > TOLERANCE || now.since(signed_at) > TOLERANCE {
            return Err(SignatureError::OutsideTolerance);
        }
        let mut matched = Choice::from(0);
        for key in keys {
            let expected = sign(key, self.timestamp, body);
            for signature in &self.signatures {
                matched |= expected.ct_eq(signature);
            }
        }
        if bool::from(matched) { Ok(()) } else { Err(SignatureError::Mismatch) }
    }
}

/// The header value a sender puts on `body` at Unix second `timestamp`: for our tests, for the
/// documentation's examples, and for users who want to check their own signer.
pub fn header_value(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex::encode(sign(key, timestamp, body)))
}

/// HMAC-SHA256 over `"<t>.<body>"`. `t` is written back in decimal; the parser refuses leading zeros,
/// so this is byte for byte the text the sender signed.
fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut mac = hmac_sha256(key);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (a long one is hashed first), so this cannot fail; the match
    // keeps a panic off the request path all the same.
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => <Hmac<Sha256> as Mac>::new(&Default::default()),
    }
}

/// `t`: 1 to 12 ASCII digits without a leading zero (so its decimal form is the text signed).
fn parse_t(digits: &[u8]) -> Option<i64> {
    let valid = !digits.is_empty()
        && digits.len() <= MAX_T_DIGITS
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1);
    valid.then(|| digits.iter().fold(0i64, |value, digit| value * 10 + i64::from(digit - b'0')))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KEY: &[u8] = b"whsec-test-key-0123456789abcdef";
    const BODY: &[u8] = br#"{"secret":"s","bot_uuid":"b","action":"buy"}"#;
    const T: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn at(unix_seconds: i64) -> Timestamp {
        Timestamp::from_unix_millis(unix_seconds * 1000)
    }

    fn hmac_hex(key: &[u8], message: &[u8]) -> String {
        let mut mac = hmac_sha256(key);
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn github_vector() {
        // spec/security.md 2.7: GitHub's documented X-Hub-Signature-256 example.
        assert_eq!(
            hmac_hex(b"It's a Secret to Everybody", b"Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn rfc4231_case_1() {
        assert_eq!(
            hmac_hex(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn agrees_with_pythons_hmac() {
        // Computed outside Rust: python3 -c 'import hmac,hashlib; print(hmac.new(b"fuzz-key",
        // b"1767225600." + BODY, hashlib.sha256).hexdigest())' with BODY as below.
        let body = br#"{"secret":"s","bot_uuid":"b","action":"buy"}"#;
        assert_eq!(
            header_value(b"fuzz-key", 1_767_225_600, body),
            "t=1767225600,v1=f8abc33d13a4ec4d2cb1b0a147692d3606ac62332bb20eab5a38ed8eac0bb6bb"
        );
    }

    #[test]
    fn signs_t_dot_body() {
        let mut message = format!("{T}.").into_bytes();
        message.extend_from_slice(BODY);
        let expected = hmac_hex(KEY, &message);
        assert_eq!(header_value(KEY, T, BODY), format!("t={T},v1={expected}"));
    }

    #[test]
    fn a_fresh_signature_verifies() {
        let header = SignatureHeader::parse(header_value(KEY, T, BODY).as_bytes()).unwrap();
        assert_eq!(header.timestamp(), T);
        assert_eq!(header.verify(BODY, &[KEY], at(T)), Ok(()));
        assert_eq!(header.verify(BODY, &[KEY], at(T + 300)), Ok(()));
        assert_eq!(header.verify(BODY, &[KEY], at(T - 300)), Ok(()));
    }

    #[test]
    fn stale_or_future_t_is_refused() {
        let header = SignatureHeader::parse(header_value(KEY, T, BODY).as_bytes()).unwrap();
        assert_eq!(header.verify(BODY, &[KEY], at(T + 301)), Err(SignatureError::OutsideTolerance));
        assert_eq!(header.verify(BODY, &[KEY], at(T - 301)), Err(SignatureError::OutsideTolerance));
        assert_eq!(SignatureError::OutsideTolerance.code(), "stale_signal");
    }

    #[test]
    fn tampered_body_or_wrong_key_is_refused() {
        let header = SignatureHeader::parse(header_value(KEY, T, BODY).as_bytes()).unwrap();
        let tampered = BODY.iter().map(|&b| if b == b'b' { b'c' } else { b }).collect::<Vec<_>>();
        assert_eq!(header.verify(&tampered, &[KEY], at(T)), Err(SignatureError::Mismatch));
        assert_eq!(header.verify(BODY, &[b"another key"], at(T)), Err(SignatureError::Mismatch));
        assert_eq!(header.verify(BODY, &[], at(T)), Err(SignatureError::Mismatch));
        assert_eq!(SignatureError::Mismatch.code(), "invalid_signature");
        // A signature for another t does not verify with this t.
        let other_t = header_value(KEY, T + 1, BODY);
        let moved = format!("t={T},{}", other_t.split_once(',').unwrap().1);
        let header = SignatureHeader::parse(moved.as_bytes()).unwrap();
        assert_eq!(header.verify(BODY, &[KEY], at(T)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn rotation_several_v1_and_several_keys() {
        let old_key: &[u8] = b"old secret";
        let new_key: &[u8] = b"new secret";
        let old_v1 = header_value(old_key, T, BODY).split_once(',').unwrap().1.to_owned();
        let new_v1 = header_value(new_key, T, BODY).split_once(',').unwrap().1.to_owned();
        let both = format!("t={T},{old_v1},{new_v1}");
        let header = SignatureHeader::parse(both.as_bytes()).unwrap();
        // The sender signs with both; a receiver knowing either key accepts.
        assert_eq!(header.verify(BODY, &[new_key], at(T)), Ok(()));
        assert_eq!(header.verify(BODY, &[old_key], at(T)), Ok(()));
        assert_eq!(header.verify(BODY, &[b"third"], at(T)), Err(SignatureError::Mismatch));
        // The receiver in its grace period knows both keys; a sender using only one is accepted.
        let only_old = SignatureHeader::parse(format!("t={T},{old_v1}").as_bytes()).unwrap();
        assert_eq!(only_old.verify(BODY, &[new_key, old_key], at(T)), Ok(()));
        // Order of parts does not matter.
        let reordered = SignatureHeader::parse(format!("{new_v1},t={T}").as_bytes()).unwrap();
        assert_eq!(reordered.verify(BODY, &[new_key], at(T)), Ok(()));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let v1 = format!("v1={}", "ab".repeat(32));
        let cases = [
            String::new(),
            format!("t={T}"),
            v1.clone(),
            format!("t={T},t={T},{v1}"),
            format!("t=0{T},{v1}"),
            format!("t=-{T},{v1}"),
            format!("t=1234567890123,{v1}"),
            format!("t=,{v1}"),
            format!("t={T},v1="),
            format!("t={T},v1={}", "ab".repeat(31)),
            format!("t={T},v1={}", "ab".repeat(33)),
            format!("t={T},v1={}", "zz".repeat(32)),
            format!("t={T},{v1},"),
            format!("t={T},,{v1}"),
            format!("t={T}, {v1}"),
            format!(" t={T},{v1}"),
            format!("t={T};{v1}"),
            format!("T={T},{v1}"),
            format!("t={T},v0={}", "ab".repeat(32)),
            format!("t={T},V1={}", "ab".repeat(32)),
            format!("t={T},{}", [v1.as_str(); 5].join(",")),
            format!("t={T},{v1}{}", ",x".repeat(300)),
        ];
        for case in cases {
            let result = SignatureHeader::parse(case.as_bytes());
            assert!(matches!(result, Err(SignatureError::Malformed { .. })), "{case:?} gave {result:?}");
        }
        assert!(SignatureHeader::parse(format!("t={T},{}", [v1.as_str(); 4].join(",")).as_bytes()).is_ok());
        assert!(SignatureHeader::parse(format!("t={T},v1={}", "AB".repeat(32)).as_bytes()).is_ok());
        assert!(
            SignatureHeader::parse(b"t=0,v1=0000000000000000000000000000000000000000000000000000000000000000").is_ok()
        );
        assert!(SignatureHeader::parse(&[0xff; 600]).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            if let Ok(header) = SignatureHeader::parse(&bytes) {
                let _ = header.verify(BODY, &[KEY], at(T));
            }
        }

        #[test]
        fn sign_then_verify_round_trips(
            key in proptest::collection::vec(any::<u8>(), 0..100),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            t in 0i64..999_999_999_999,
            skew in -300i64..=300,
        ) {
            let header = SignatureHeader::parse(header_value(&key, t, &body).as_bytes()).unwrap();
            prop_assert_eq!(header.verify(&body, &[&key], at(t + skew)), Ok(()));
            let mut flipped = body.clone();
            flipped.push(b'x');
            prop_assert_eq!(header.verify(&flipped, &[&key], at(t + skew)), Err(SignatureError::Mismatch));
        }
    }
}
