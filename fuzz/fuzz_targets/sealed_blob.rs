//! The sealed-blob decoder on the trust boundary of a database dump or a tampered row: whatever
//! bytes a sealed column holds, reading its KEK version, opening and rewrapping it never panic and
//! never open (only a blob this ring sealed authenticates); and a blob this ring did seal opens to
//! what was sealed, also after a rewrap.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vault::VaultError;
use vault::envelope::{Binding, Kek, KekRing, kek_version_of};

fn ring() -> &'static KekRing {
    static RING: OnceLock<KekRing> = OnceLock::new();
    RING.get_or_init(|| {
        let keys = vec![Kek::generate(1).expect("kek 1"), Kek::generate(2).expect("kek 2")];
        KekRing::new(2, keys).expect("ring")
    })
}

fuzz_target!(|data: &[u8]| {
    let ring = ring();
    let binding = Binding::webhook_secret("user", "bot");
    let _ = kek_version_of(data);
    // Random bytes never authenticate.
    assert!(ring.open(&binding, data).is_err());
    assert!(ring.rewrap(&binding, data).is_err());

    // What the ring seals, it opens, under the same binding only.
    let sealed = ring.seal(&binding, data).expect("seal");
    assert_eq!(kek_version_of(&sealed).expect("version"), 2);
    assert_eq!(ring.open(&binding, &sealed).expect("open").as_slice(), data);
    let moved = Binding::webhook_secret("user", "another bot");
    assert!(matches!(ring.open(&moved, &sealed), Err(VaultError::Tampered)));
    let rewrapped = ring.rewrap(&binding, &sealed).expect("rewrap");
    assert_eq!(ring.open(&binding, &rewrapped).expect("open rewrapped").as_slice(), data);

    // A sealed blob with one byte flipped (chosen by the input) no longer opens.
    if let Some(&first) = data.first() {
        let mut flipped = sealed.clone();
        let at = usize::from(first) % flipped.len();
        flipped[at] ^= 0x01;
        assert!(ring.open(&binding, &flipped).is_err());
    }
});
