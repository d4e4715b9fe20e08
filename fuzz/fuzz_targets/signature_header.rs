//! A `Bulwark-Signature` header and a body, split at the first newline: parsing and verifying never
//! panic, and a header that verifies is one the key really signed.
#![no_main]

use domain::Timestamp;
use libfuzzer_sys::fuzz_target;
use webhook::SignatureHeader;
use webhook::signature::{MAX_HEADER_LEN, MAX_SIGNATURES, header_value};

const KEY: &[u8] = b"fuzz-key";
const NOW: Timestamp = Timestamp::from_unix_millis(1_767_225_600_000);

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(parsed) = SignatureHeader::parse(header) else { return };
    assert!(header.len() <= MAX_HEADER_LEN);
    assert!(header.iter().filter(|&&b| b == b',').count() <= MAX_SIGNATURES);
    if parsed.verify(body, &[KEY], NOW).is_ok() {
        // Only possible if the input holds the real signature for its t.
        let expected = header_value(KEY, parsed.timestamp(), body);
        let v1 = expected.split_once(",v1=").map(|(_, v1)| v1.to_ascii_lowercase()).unwrap_or_default();
        assert!(String::from_utf8_lossy(header).to_ascii_lowercase().contains(&v1));
    }
});
