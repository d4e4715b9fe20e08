//! A small seeded generator (SplitMix64) for the things the simulator invents: client order ids,
//! the quantities of its synthetic order book, random-walk prices and injected faults. Seeded from
//! `SimConfig::seed`, so two runs with the same seed and the same requests answer the same.

#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The generator's whole state, to save it and resume with [`SplitMix64::new`].
    pub(crate) fn state(&self) -> u64 {
        self.state
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly distributed value in `0..bound` (`bound > 0`; modulo bias is irrelevant here).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// A 22-character alphanumeric id, the shape of Binance's generated `clientOrderId`s.
    pub(crate) fn client_order_id(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..22)
            .map(|_| {
                let index = usize::try_from(self.below(ALPHABET.len() as u64)).unwrap_or(0);
                char::from(ALPHABET[index])
            })
            .collect()
    }
}

/// FNV-1a of a name: a stable way to give each symbol its own stream from one seed.
pub(crate) fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_ids_and_another_seed_does_not() {
        let mut first = SplitMix64::new(42);
        let mut second = SplitMix64::new(42);
        let mut other = SplitMix64::new(43);
        let id = first.client_order_id();
        assert_eq!(id.len(), 22);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(id, second.client_order_id());
        assert_ne!(id, other.client_order_id());
    }
}
