//! The simulator as Bulwark's paper market: `bulwark serve` runs one in process and opens an
//! account in it for every paper account a user creates. The account gets a random API key and
//! HMAC secret and is then used over HTTP through the Binance adapter, like a real key, so a bot
//! that works on paper uses the very code that trades on Binance.
//!
//! [`RemotePaperMarket`] is the same market in another process (`bulwark exchange-sim`), reached
//! through the simulator's own endpoints, so several `serve` nodes can share one paper market.

use async_trait::async_trait;
use aws_lc_rs::hmac;
use exchange::{Credentials, ExchangeError, PaperMarket};
use rust_decimal::Decimal;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::{ExchangeSim, SimAccount, SimKey, SimPermissions};

/// The venue name paper accounts are reached under.
pub const PAPER_VENUE: &str = "paper";

#[async_trait]
impl PaperMarket for ExchangeSim {
    fn venue(&self) -> &'static str {
        PAPER_VENUE
    }

    async fn open_account(
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

    async fn reset_account(
        &self,
        credentials: &dyn Credentials,
        balances: &[(domain::Asset, Decimal)],
    ) -> Result<usize, ExchangeError> {
        let balances: Vec<(String, Decimal)> =
            balances.iter().map(|(asset, amount)| (asset.as_str().to_owned(), *amount)).collect();
        let canceled = ExchangeSim::reset_account(self, credentials.api_key(), &balances)
            .map_err(|err| ExchangeError::InvalidRequest { code: -1100, message: err.to_string() })?;
        persist_now(self)?;
        Ok(canceled)
    }
}

/// A paper market in a `bulwark exchange-sim` process shared by several nodes, reached over HTTP
/// on loopback at `base` through the simulator's `/sim/v1/` endpoints.
#[derive(Debug, Clone)]
pub struct RemotePaperMarket {
    base: url::Url,
    http: reqwest::Client,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Opened {
    api_key: String,
    secret_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WasReset {
    canceled_orders: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerTime {
    server_time: i64,
}

#[derive(Deserialize)]
struct Refusal {
    code: i64,
    msg: String,
}

impl RemotePaperMarket {
    /// # Errors
    /// `ExchangeError::Unreachable` when the HTTP client cannot be built.
    pub fn new(base: url::Url) -> Result<RemotePaperMarket, ExchangeError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|err| ExchangeError::Unreachable(format!("cannot build the HTTP client: {err}")))?;
        Ok(RemotePaperMarket { base, http })
    }

    /// Asks the market whether it answers (`/api/v3/ping`), for a clear error at start.
    ///
    /// # Errors
    /// `ExchangeError::Unreachable`.
    pub async fn ping(&self) -> Result<(), ExchangeError> {
        let _: serde_json::Value = self.call(reqwest::Method::GET, "/api/v3/ping", "", None).await?;
        Ok(())
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &str,
        api_key: Option<&str>,
    ) -> Result<T, ExchangeError> {
        let mut url = self.base.clone();
        url.set_path(path);
        url.set_query((!query.is_empty()).then_some(query));
        let mut request = self.http.request(method, url);
        if let Some(api_key) = api_key {
            request = request.header("X-MBX-APIKEY", api_key);
        }
        let unreachable =
            |err: reqwest::Error| ExchangeError::Unreachable(format!("the paper market at {path}: {err}"));
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|err| ExchangeError::Protocol(format!("{path}: {err}")));
        }
        match serde_json::from_slice::<Refusal>(&body) {
            Ok(refusal) => Err(ExchangeError::InvalidRequest { code: refusal.code, message: refusal.msg }),
            Err(_) => Err(ExchangeError::Unreachable(format!("the paper market answered HTTP {}", status.as_u16()))),
        }
    }
}

/// `USDT:10000,BTC:0.5`.
fn balances_param(balances: &[(domain::Asset, Decimal)]) -> String {
    balances.iter().map(|(asset, amount)| format!("{asset}:{}", amount.normalize())).collect::<Vec<_>>().join(",")
}

#[async_trait]
impl PaperMarket for RemotePaperMarket {
    fn venue(&self) -> &'static str {
        PAPER_VENUE
    }

    async fn open_account(
        &self,
        balances: &[(domain::Asset, Decimal)],
    ) -> Result<(String, Zeroizing<Vec<u8>>), ExchangeError> {
        let query = format!("balances={}", balances_param(balances));
        let opened: Opened = self.call(reqwest::Method::POST, "/sim/v1/accounts", &query, None).await?;
        let secret = Zeroizing::new(opened.secret_key.into_bytes());
        Ok((opened.api_key, secret))
    }

    async fn reset_account(
        &self,
        credentials: &dyn Credentials,
        balances: &[(domain::Asset, Decimal)],
    ) -> Result<usize, ExchangeError> {
        let time: ServerTime = self.call(reqwest::Method::GET, "/api/v3/time", "", None).await?;
        let query = format!("balances={}&recvWindow=5000&timestamp={}", balances_param(balances), time.server_time);
        let signature = {
            let secret = credentials.secret().await?;
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &secret), query.as_bytes());
            tag.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let signed = format!("{query}&signature={signature}");
        let reset: WasReset =
            self.call(reqwest::Method::POST, "/sim/v1/account/reset", &signed, Some(credentials.api_key())).await?;
        Ok(reset.canceled_orders)
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
pub fn random_alnum(len: usize) -> Result<Zeroizing<String>, String> {
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
