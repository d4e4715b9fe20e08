//! Request signing on an allowlist (`spec/security.md` EX-2, EX-4).
//!
//! Only the endpoints named by [`SignedEndpoint`] can be signed, and [`ALLOWLIST`] is checked again
//! at the moment of signing, so a withdrawal, transfer or key-management path can neither be
//! expressed nor signed. The payload is the query string exactly as sent (Binance signs the query
//! string followed by the body; this adapter sends no body). HMAC keys sign with HMAC-SHA256 →
//! hex, Ed25519 keys with Ed25519 → base64 → percent-encoded, per Binance's `rest-api.md`.

use aws_lc_rs::{hmac, signature::Ed25519KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use exchange::{ExchangeError, KeyKind};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::Zeroizing;

/// Every `(method, path)` this adapter may sign. Nothing that withdraws, transfers, manages
/// sub-accounts or manages keys; adding a line is a reviewed change with a test.
pub const ALLOWLIST: &[(&str, &str)] = &[
    ("GET", "/api/v3/account"),
    ("GET", "/sapi/v1/account/apiRestrictions"),
    ("POST", "/api/v3/order"),
    ("GET", "/api/v3/order"),
    ("DELETE", "/api/v3/order"),
    ("GET", "/api/v3/openOrders"),
    ("GET", "/api/v3/myTrades"),
];

/// The path of the USER_STREAM endpoints that manage the user data stream's listen key.
pub const USER_DATA_STREAM: &str = "/api/v3/userDataStream";

/// The unsigned USER_STREAM requests the adapter sends (`POST` makes or returns the listen key, `PUT`
/// keeps it alive). Binance asks only for the `X-MBX-APIKEY` header there, so they are never signed
/// and are deliberately not on [`ALLOWLIST`]; they can read the account's order updates, nothing
/// more.
pub const USER_STREAM: &[(&str, &str)] = &[("POST", USER_DATA_STREAM), ("PUT", USER_DATA_STREAM)];

/// The signed endpoints the adapter uses; each is on [`ALLOWLIST`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedEndpoint {
    Account,
    ApiRestrictions,
    NewOrder,
    QueryOrder,
    CancelOrder,
    OpenOrders,
    MyTrades,
}

impl SignedEndpoint {
    pub const ALL: [SignedEndpoint; 7] = [
        SignedEndpoint::Account,
        SignedEndpoint::ApiRestrictions,
        SignedEndpoint::NewOrder,
        SignedEndpoint::QueryOrder,
        SignedEndpoint::CancelOrder,
        SignedEndpoint::OpenOrders,
        SignedEndpoint::MyTrades,
    ];

    pub fn method(self) -> &'static str {
        match self {
            SignedEndpoint::NewOrder => "POST",
            SignedEndpoint::CancelOrder => "DELETE",
            _ => "GET",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            SignedEndpoint::Account => "/api/v3/account",
            SignedEndpoint::ApiRestrictions => "/sapi/v1/account/apiRestrictions",
            SignedEndpoint::NewOrder | SignedEndpoint::QueryOrder | SignedEndpoint::CancelOrder => "/api/v3/order",
            SignedEndpoint::OpenOrders => "/api/v3/openOrders",
            SignedEndpoint::MyTrades => "/api/v3/myTrades",
        }
    }

    /// Request weight per Binance's `rest-api.md` (with a symbol given where one is optional).
    pub fn weight(self) -> u32 {
        match self {
            SignedEndpoint::Account | SignedEndpoint::MyTrades => 20,
            SignedEndpoint::QueryOrder => 4,
            SignedEndpoint::OpenOrders => 6,
            SignedEndpoint::ApiRestrictions | SignedEndpoint::NewOrder | SignedEndpoint::CancelOrder => 1,
        }
    }
}

/// Characters left as they are in a query value: RFC 3986 unreserved. Everything else, including
/// every non-ASCII byte, is percent-encoded before signing, as Binance requires.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `k=v&k=v` with values percent-encoded, in the order given.
pub fn encode_params(params: &[(&str, String)]) -> String {
    let mut query = String::new();
    for (index, (name, value)) in params.iter().enumerate() {
        if index > 0 {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.extend(utf8_percent_encode(value, QUERY_VALUE));
    }
    query
}

/// The signature of `payload` as it goes on the wire (already percent-encoded where needed).
///
/// # Errors
/// `ExchangeError::BadSecret` when an Ed25519 secret is not a PKCS#8 PEM or DER Ed25519 key.
pub fn signature(kind: KeyKind, secret: &[u8], payload: &str) -> Result<String, ExchangeError> {
    match kind {
        KeyKind::Hmac => {
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
            let tag = hmac::sign(&key, payload.as_bytes());
            Ok(hex(tag.as_ref()))
        }
        KeyKind::Ed25519 => {
            let der = pkcs8_der(secret)?;
            let pair =
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|_| ExchangeError::BadSecret("Ed25519"))?;
            let encoded = STANDARD.encode(pair.sign(payload.as_bytes()).as_ref());
            Ok(utf8_percent_encode(&encoded, QUERY_VALUE).to_string())
        }
    }
}

/// Signs `params` (which must already hold `timestamp` and `recvWindow`) for `endpoint` and returns
/// the full query string with `signature` last.
///
/// # Errors
/// `ExchangeError::PathNotAllowed` if the endpoint is not on [`ALLOWLIST`] (a bug, tested never to
/// happen), or what [`signature`] reports.
pub fn signed_query(
    endpoint: SignedEndpoint,
    kind: KeyKind,
    secret: &[u8],
    params: &[(&str, String)],
) -> Result<String, ExchangeError> {
    if !ALLOWLIST.contains(&(endpoint.method(), endpoint.path())) {
        return Err(ExchangeError::PathNotAllowed(format!("{} {}", endpoint.method(), endpoint.path())));
    }
    let payload = encode_params(params);
    let signature = signature(kind, secret, &payload)?;
    Ok(format!("{payload}&signature={signature}"))
}

/// Whether a stored secret is usable as a key of `kind` (checked before a key is sealed).
pub fn secret_is_well_formed(kind: KeyKind, secret: &[u8]) -> bool {
    match kind {
        KeyKind::Hmac => !secret.is_empty() && secret.iter().all(u8::is_ascii_graphic),
        KeyKind::Ed25519 => pkcs8_der(secret).is_ok_and(|der| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).is_ok()),
    }
}

/// The DER bytes of a PKCS#8 private key given as PEM (`-----BEGIN PRIVATE KEY-----`) or as DER.
fn pkcs8_der(secret: &[u8]) -> Result<Zeroizing<Vec<u8>>, ExchangeError> {
    let bad = || ExchangeError::BadSecret("Ed25519");
    let Ok(text) = std::str::from_utf8(secret) else {
        return Ok(Zeroizing::new(secret.to_vec()));
    };
    let text = text.trim();
    let body = text
        .strip_prefix("-----BEGIN PRIVATE KEY-----")
        .and_then(|rest| rest.strip_suffix("-----END PRIVATE KEY-----"))
        .ok_or_else(bad)?;
    let compact: Zeroizing<String> = Zeroizing::new(body.chars().filter(|c| !c.is_whitespace()).collect());
    STANDARD.decode(compact.as_bytes()).map(Zeroizing::new).map_err(|_| bad())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{ED25519, KeyPair as _, UnparsedPublicKey};

    use super::*;

    // spec/security.md 2.1 / spec/exchanges.md, verbatim (Binance rest-api.md "SIGNED Endpoint Examples").
    const VECTOR_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

    fn vector_params(symbol: &str) -> Vec<(&'static str, String)> {
        vec![
            ("symbol", symbol.to_owned()),
            ("side", "BUY".to_owned()),
            ("type", "LIMIT".to_owned()),
            ("timeInForce", "GTC".to_owned()),
            ("quantity", "1".to_owned()),
            ("price", "0.1".to_owned()),
            ("recvWindow", "5000".to_owned()),
            ("timestamp", "1499827319559".to_owned()),
        ]
    }

    #[test]
    fn binance_hmac_vectors_verbatim() {
        // EX-4, vector 1.
        let payload = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        assert_eq!(encode_params(&vector_params("LTCBTC")), payload);
        assert_eq!(
            signature(KeyKind::Hmac, VECTOR_SECRET.as_bytes(), payload).unwrap(),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
        // EX-4, vector 2: the full-width digits are percent-encoded before signing.
        let payload = "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        assert_eq!(encode_params(&vector_params("１２３４５６")), payload);
        let query = signed_query(
            SignedEndpoint::NewOrder,
            KeyKind::Hmac,
            VECTOR_SECRET.as_bytes(),
            &vector_params("１２３４５６"),
        )
        .unwrap();
        assert_eq!(
            query,
            format!("{payload}&signature=e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3")
        );
    }

    #[test]
    fn rfc4231_case_1_hmac_primitive() {
        let key = [0x0b_u8; 20];
        assert_eq!(
            signature(KeyKind::Hmac, &key, "Hi There").unwrap(),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn rfc8032_test_1_ed25519_signature_through_a_pkcs8_pem() {
        // RFC 8032 section 7.1, TEST 1 (empty message): secret key, public key and signature.
        let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        let public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let expected = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
        let seed = unhex(seed);
        // PKCS#8 v1 wrapping of a raw Ed25519 seed (RFC 8410): fixed 16-byte prefix + 32-byte seed.
        let mut der = unhex("302e020100300506032b657004220420");
        der.extend_from_slice(&seed);
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(&der));
        assert!(secret_is_well_formed(KeyKind::Ed25519, pem.as_bytes()));
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap();
        assert_eq!(hex(pair.public_key().as_ref()), public);
        let on_wire = signature(KeyKind::Ed25519, pem.as_bytes(), "").unwrap();
        let decoded = percent_encoding::percent_decode_str(&on_wire).decode_utf8().unwrap();
        assert_eq!(hex(&STANDARD.decode(decoded.as_bytes()).unwrap()), expected);
        // And a real payload verifies under the public key.
        let payload = encode_params(&vector_params("BTCUSDT"));
        let on_wire = signature(KeyKind::Ed25519, pem.as_bytes(), &payload).unwrap();
        let raw =
            STANDARD.decode(percent_encoding::percent_decode_str(&on_wire).decode_utf8().unwrap().as_bytes()).unwrap();
        UnparsedPublicKey::new(&ED25519, unhex(public)).verify(payload.as_bytes(), &raw).unwrap();
        assert!(!on_wire.contains('+') && !on_wire.contains('/') && !on_wire.contains('='), "{on_wire}");
    }

    #[test]
    fn malformed_ed25519_secrets_are_refused() {
        for bad in [&b"not a pem"[..], b"-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----", b""] {
            assert!(!secret_is_well_formed(KeyKind::Ed25519, bad));
            assert_eq!(signature(KeyKind::Ed25519, bad, "x"), Err(ExchangeError::BadSecret("Ed25519")));
        }
        assert!(!secret_is_well_formed(KeyKind::Hmac, b""));
        assert!(!secret_is_well_formed(KeyKind::Hmac, b"has space"));
    }

    #[test]
    fn every_signed_endpoint_is_on_the_allowlist_and_nothing_there_moves_funds() {
        // EX-2: the adapter can emit exactly these signed paths.
        let emitted: Vec<(&str, &str)> = SignedEndpoint::ALL.iter().map(|e| (e.method(), e.path())).collect();
        for pair in &emitted {
            assert!(ALLOWLIST.contains(pair), "{pair:?} is signed but not allowlisted");
        }
        for pair in ALLOWLIST {
            assert!(emitted.contains(pair), "{pair:?} is allowlisted but unused");
            let path = pair.1.to_ascii_lowercase();
            for forbidden in [
                "withdraw",
                "transfer",
                "sub-account",
                "subaccount",
                "capital",
                "apikey",
                "asset/",
                "margin",
                "futures",
                "lending",
            ] {
                assert!(!path.contains(forbidden), "{path} looks like a funds or key operation");
            }
        }
        // The enum is exhaustive: a new variant must be added to ALL (this match fails to compile).
        for endpoint in SignedEndpoint::ALL {
            match endpoint {
                SignedEndpoint::Account
                | SignedEndpoint::ApiRestrictions
                | SignedEndpoint::NewOrder
                | SignedEndpoint::QueryOrder
                | SignedEndpoint::CancelOrder
                | SignedEndpoint::OpenOrders
                | SignedEndpoint::MyTrades => assert!(endpoint.weight() >= 1),
            }
        }
    }

    #[test]
    fn the_user_stream_endpoints_are_never_signed() {
        // USER_STREAM requests carry the API key alone: no signed endpoint, and no allowlist entry,
        // names their path, so the signer refuses them whatever the method.
        for (method, path) in USER_STREAM {
            assert!(!ALLOWLIST.iter().any(|(_, allowed)| allowed == path), "{method} {path} is on the allowlist");
            assert!(!SignedEndpoint::ALL.iter().any(|endpoint| endpoint.path() == *path), "{path} is signed");
        }
        assert!(ALLOWLIST.iter().all(|(_, path)| !path.to_ascii_lowercase().contains("userdatastream")));
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }
}
