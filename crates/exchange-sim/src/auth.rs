//! SIGNED request security: the signed payload, HMAC-SHA256 and Ed25519 verification, and the
//! timestamp / `recvWindow` rule.
//!
//! Binance (`rest-api.md`, "SIGNED Endpoint security"): the payload is the query string concatenated
//! without a separator to the form body, exactly as sent, with the `signature` parameter taken out.
//! HMAC signatures are hex (compared case-insensitively); Ed25519 signatures are base64, sent
//! percent-encoded. The request is accepted when
//! `timestamp < serverTime + 1000 && serverTime - timestamp <= recvWindow`.

use aws_lc_rs::{hmac, signature};
use base64::Engine as _;
use rust_decimal::Decimal;

use crate::config::SimKey;
use crate::error::ApiError;
use crate::params::{Params, parse_decimal};

/// The largest `recvWindow` Binance accepts, in milliseconds.
const MAX_RECV_WINDOW_MS: i64 = 60_000;
/// The `recvWindow` when none is sent, in milliseconds.
const DEFAULT_RECV_WINDOW_MS: i64 = 5_000;
/// Timestamps from this value on are read as microseconds (16 digits), as Binance does.
const MICROSECOND_TIMESTAMPS_FROM: u64 = 1_000_000_000_000_000;

/// A key ready to verify signatures.
pub(crate) enum Verifier {
    /// Boxed: the key schedule is large next to a public key.
    Hmac(Box<hmac::Key>),
    Ed25519(Vec<u8>),
}

impl Verifier {
    pub(crate) fn new(key: &SimKey) -> Self {
        match key {
            SimKey::Hmac { secret } => Self::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()))),
            SimKey::Ed25519 { public_key } => Self::Ed25519(public_key.clone()),
        }
    }

    /// Whether `signature` (already percent-decoded) signs `payload`.
    pub(crate) fn verify(&self, payload: &[u8], signature: &str) -> bool {
        match self {
            Self::Hmac(key) => decode_hex(signature).is_some_and(|tag| hmac::verify(key, payload, &tag).is_ok()),
            Self::Ed25519(public_key) => base64::engine::general_purpose::STANDARD.decode(signature).is_ok_and(|sig| {
                signature::UnparsedPublicKey::new(&signature::ED25519, public_key).verify(payload, &sig).is_ok()
            }),
        }
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hmac(_) => f.write_str("Verifier::Hmac(<redacted>)"),
            Self::Ed25519(_) => f.write_str("Verifier::Ed25519"),
        }
    }
}

/// The signed payload and the (percent-decoded) signature of a request.
#[derive(Debug)]
pub(crate) struct SignedPayload {
    pub(crate) payload: String,
    pub(crate) signature: String,
}

/// Takes the `signature` parameter out of the raw query and body and joins what is left.
///
/// # Errors
///
/// -1102 when no signature was sent, -1101 when more than one was.
pub(crate) fn signed_payload(query: &str, body: &str) -> Result<SignedPayload, ApiError> {
    let mut signatures = Vec::new();
    let mut strip = |part: &str| -> String {
        let mut kept = Vec::new();
        for segment in part.split('&') {
            match segment.strip_prefix("signature=") {
                Some(value) => signatures.push(value.to_owned()),
                None => kept.push(segment),
            }
        }
        kept.join("&")
    };
    let payload = strip(query) + &strip(body);
    match signatures.as_slice() {
        [] => Err(ApiError::mandatory("signature")),
        [raw] if raw.is_empty() => Err(ApiError::mandatory("signature")),
        [raw] => {
            let signature = url::form_urlencoded::parse(format!("s={raw}").as_bytes())
                .next()
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default();
            Ok(SignedPayload { payload, signature })
        }
        _ => Err(ApiError::duplicate_param()),
    }
}

/// Applies the timing rule to a request's `timestamp` and `recvWindow` against `server_time_ms`.
///
/// # Errors
///
/// -1102 for a missing timestamp or a `recvWindow` above 60000, -1100 for malformed values, -1021
/// when the timestamp is too far ahead or too old.
pub(crate) fn check_timestamp(params: &Params, server_time_ms: i64) -> Result<(), ApiError> {
    let raw = params.required("timestamp")?;
    let timestamp = crate::params::parse_long("timestamp", raw)?;
    let recv_window_us = match params.optional("recvWindow")? {
        None => DEFAULT_RECV_WINDOW_MS * 1_000,
        Some(raw) => {
            let window = parse_decimal("recvWindow", raw)?;
            if window > Decimal::from(MAX_RECV_WINDOW_MS) {
                return Err(ApiError::too_great("recvWindow", "60000"));
            }
            // Up to three decimals: microsecond precision.
            (window * Decimal::from(1_000)).trunc().try_into().map_err(|_| ApiError::invalid_param("recvWindow"))?
        }
    };
    let timestamp_us = if timestamp >= MICROSECOND_TIMESTAMPS_FROM {
        i64::try_from(timestamp).map_err(|_| ApiError::invalid_param("timestamp"))?
    } else {
        i64::try_from(timestamp).map_err(|_| ApiError::invalid_param("timestamp"))?.saturating_mul(1_000)
    };
    let server_time_us = server_time_ms.saturating_mul(1_000);
    if timestamp_us >= server_time_us.saturating_add(1_000_000) {
        return Err(ApiError::timestamp_ahead());
    }
    if server_time_us.saturating_sub(timestamp_us) > recv_window_us {
        return Err(ApiError::timestamp_outside_window());
    }
    Ok(())
}

/// Hex to bytes, either case; `None` for anything that is not an even number of hex digits.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    text.as_bytes().chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// binance-spot-api-docs `rest-api.md`, "SIGNED Endpoint Examples for POST /api/v3/order".
    const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
    const PAYLOAD: &str = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
    const SIGNATURE: &str = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71";

    fn binance_example_key() -> Verifier {
        Verifier::new(&SimKey::Hmac { secret: SECRET.to_owned() })
    }

    #[test]
    fn binances_published_hmac_vector_verifies() {
        let verifier = binance_example_key();
        assert!(verifier.verify(PAYLOAD.as_bytes(), SIGNATURE));
        assert!(verifier.verify(PAYLOAD.as_bytes(), &SIGNATURE.to_uppercase()), "hex is case-insensitive");
        assert!(!verifier.verify(PAYLOAD.replace("quantity=1", "quantity=2").as_bytes(), SIGNATURE));
        assert!(!verifier.verify(PAYLOAD.as_bytes(), &SIGNATURE[..62]));
        assert!(!verifier.verify(PAYLOAD.as_bytes(), "zz"));
    }

    #[test]
    fn binances_non_ascii_hmac_vector_verifies() {
        // The same order for symbol １２３４５６ (full-width digits), percent-encoded before signing.
        let payload = "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT\
                       &timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        let signature = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3";
        assert!(binance_example_key().verify(payload.as_bytes(), signature));
    }

    #[test]
    fn the_mixed_query_and_body_example_joins_without_separator() {
        // Example 3 of the same section: query and body, no `&` between them.
        let query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC";
        let body = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559\
                    &signature=0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77";
        let signed = signed_payload(query, body).expect("one signature");
        assert_eq!(signed.payload, format!("{query}quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"));
        assert!(binance_example_key().verify(signed.payload.as_bytes(), &signed.signature));
    }

    #[test]
    fn rfc8032_vectors_verify_as_ed25519() {
        // RFC 8032 section 7.1, TEST 1 (empty message) and TEST 2 (one byte 0x72).
        let cases = [
            (
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                &b""[..],
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                &b"\x72"[..],
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ];
        for (public_key, message, signature) in cases {
            let verifier = Verifier::new(&SimKey::Ed25519 { public_key: decode_hex(public_key).expect("hex") });
            let signature = base64::engine::general_purpose::STANDARD.encode(decode_hex(signature).expect("hex"));
            assert!(verifier.verify(message, &signature));
            assert!(!verifier.verify(b"other", &signature));
            assert!(!verifier.verify(message, "not base64!"));
        }
    }

    #[test]
    fn the_signature_must_be_sent_once() {
        assert_eq!(signed_payload("a=1", "b=2").map_err(|e| e.code).err(), Some(-1102));
        assert_eq!(signed_payload("a=1&signature=", "").map_err(|e| e.code).err(), Some(-1102));
        assert_eq!(signed_payload("signature=ab", "signature=cd").map_err(|e| e.code).err(), Some(-1101));
        let signed = signed_payload("a=1&signature=ab%2Bcd%3D", "").expect("one");
        assert_eq!((signed.payload.as_str(), signed.signature.as_str()), ("a=1", "ab+cd="));
    }

    fn params(query: &str) -> Params {
        Params::parse(query.as_bytes(), b"").expect("parses")
    }

    #[test]
    fn the_timing_rule_is_binances() {
        let now = 1_700_000_000_000;
        let code = |query: String| check_timestamp(&params(&query), now).map_err(|e| (e.code, e.msg)).err();
        assert_eq!(code(format!("timestamp={now}")), None);
        assert_eq!(code(format!("timestamp={}", now + 999)), None);
        assert_eq!(code(format!("timestamp={}", now + 1000)).map(|e| e.0), Some(-1021));
        assert_eq!(code(format!("timestamp={}", now - 5000)), None);
        assert_eq!(code(format!("timestamp={}", now - 5001)).map(|e| e.0), Some(-1021));
        assert_eq!(code(format!("timestamp={}&recvWindow=60000", now - 60_000)), None);
        assert_eq!(code(format!("timestamp={}&recvWindow=60000.001", now)).map(|e| e.0), Some(-1102));
        assert_eq!(code(format!("timestamp={}&recvWindow=100.5", now - 100)), None);
        assert_eq!(code(format!("timestamp={}", now * 1000 + 500)), None, "microseconds");
        assert_eq!(code("recvWindow=5000".to_owned()).map(|e| e.0), Some(-1102));
        assert_eq!(code("timestamp=soon".to_owned()).map(|e| e.0), Some(-1100));
        assert_eq!(code(format!("timestamp={now}&recvWindow=-1")).map(|e| e.0), Some(-1100));
    }

    #[test]
    fn hex_decoding_rejects_odd_lengths_and_non_hex() {
        assert_eq!(decode_hex("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
    }
}
