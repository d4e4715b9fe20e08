//! The random source port.

use std::fmt;

/// A cryptographically secure random source. The server passes [`OsRandom`]; nothing in Bulwark
/// ever uses a seeded generator for secrets.
pub trait Random: Send + Sync + fmt::Debug {
    fn fill(&self, buf: &mut [u8]);

    fn array<const N: usize>(&self) -> [u8; N]
    where
        Self: Sized,
    {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }
}

/// The operating system's CSPRNG (`getrandom`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        // The OS generator failing is not a condition the program can recover from safely: handing
        // out a predictable token would be worse than stopping.
        #[allow(clippy::expect_used)]
        getrandom::fill(buf).expect("the operating system's random source failed");
    }
}
