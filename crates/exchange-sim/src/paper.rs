//! The simulator as Bulwark's paper market: `bulwark serve` runs one in process and opens an
//! account in it for every paper account a user creates. The account gets a random API key and
//! HMAC secret and is then used over HTTP through the Binance adapter, like a real key, so a bot
//! that works on paper uses the very code that trades on Binance.

use exchange::{ExchangeError, PaperMarket};
use rust_decimal::Decimal;
use zeroize::Zeroizing;

use crate::{ExchangeSim, SimAccount, SimKey, SimPermissions};

/// The venue name paper accounts are reached under.
pub const PAPER_VENUE: &str = "paper";

impl PaperMarket for ExchangeSim {
    fn venue(&self) -> &'static str {
        PAPER_VENUE
    }

    fn open_account(
        &self,
        balances: &[(domain::Asset, Decimal)],
    ) -> Result<(String, Zeroizing<Vec<u8>>), ExchangeError> {
        let refuse = |message: String| ExchangeError::InvalidRequest { code: -1100, message };
        let api_key = format!("paper{}", random_alnum(59).map_err(refuse)?.as_str());
        let secret = random_alnum(64).map_err(refuse)?;
        let account = SimAccount {
            api_key: api_key.clone(),
            key: SimKey::Hmac { secret: secret.as_str().to_owned() },
            // A paper key can trade, cannot withdraw, and is bound to this process.
            permissions: SimPermissions::trading(),
            balances: balances.iter().map(|(asset, amount)| (asset.as_str().to_owned(), *amount)).collect(),
        };
        self.add_account(account).map_err(|err| refuse(err.to_string()))?;
        persist_now(self)?;
        Ok((api_key, Zeroizing::new(secret.as_bytes().to_vec())))
    }

    fn reset_account(&self, api_key: &str, balances: &[(domain::Asset, Decimal)]) -> Result<usize, ExchangeError> {
        let balances: Vec<(String, Decimal)> =
            balances.iter().map(|(asset, amount)| (asset.as_str().to_owned(), *amount)).collect();
        let canceled = ExchangeSim::reset_account(self, api_key, &balances)
            .map_err(|err| ExchangeError::InvalidRequest { code: -1100, message: err.to_string() })?;
        persist_now(self)?;
        Ok(canceled)
    }
}

/// Writes the state file at once (when there is one), so an account the user was just told about
/// survives even a crash before the next periodic save.
fn persist_now(sim: &ExchangeSim) -> Result<(), ExchangeError> {
    match sim.save_state() {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
        Err(err) => Err(ExchangeError::Unreachable(format!("the paper market could not save its state: {err}"))),
    }
}

/// `len` random ASCII letters and digits from the OS random source.
pub(crate) fn random_alnum(len: usize) -> Result<Zeroizing<String>, String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = Zeroizing::new(vec![0u8; len * 2]);
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "the OS random source failed".to_owned())?;
    // Rejection sampling keeps every character equally likely (62 does not divide 256).
    let limit = u8::try_from(256 - 256 % ALPHABET.len()).unwrap_or(248);
    let mut out = Zeroizing::new(String::with_capacity(len));
    for byte in bytes.iter().copied().filter(|b| *b < limit) {
        if out.len() == len {
            break;
        }
        out.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
    }
    if out.len() < len {
        return random_alnum(len);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_keys_are_alphanumeric_and_differ() {
        let a = random_alnum(64).unwrap();
        let b = random_alnum(64).unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.as_str(), b.as_str());
    }
}
