//! What a simulator starts with: accounts (key, permissions, balances), symbols (price, price path
//! and trading rules), fees, limits, the seed, the market's pace, the state file and fault rates.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::faults::FaultRates;
use crate::pricepath::{MAX_VOLATILITY, PricePath};

/// Everything [`ExchangeSim::spawn`](crate::ExchangeSim::spawn) needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The accounts, each reached by its API key.
    pub accounts: Vec<SimAccount>,
    /// The tradable symbols.
    pub symbols: Vec<SimSymbol>,
    /// Seeds generated client order ids and the synthetic order book.
    pub seed: u64,
    /// Fee per fill as a fraction of the received amount, charged in the received asset
    /// (0.001 = 0.1 %, Binance's base rate).
    pub fee_rate: Decimal,
    /// Market orders fill this fraction worse than the current price (buys above, sells below),
    /// rounded to the tick size.
    pub slippage: Decimal,
    /// Request-weight and order-count limits.
    pub limits: SimLimits,
    /// `Some(ms)`: the clock stands still at this instant until moved through the handle.
    /// `None`: real time.
    pub frozen_clock_ms: Option<i64>,
    /// How long an injected timeout (or a lost response of kind `Hang`) holds the request
    /// before giving up, unless the simulator shuts down first.
    pub hang_for: Duration,
    /// Simulator-clock time between two steps of every moving price path (one random-walk minute
    /// or one replayed candle). One minute by default; shorter to speed the market up.
    pub step_every: Duration,
    /// Where the simulator keeps its state across restarts: loaded on start when the file exists,
    /// written every [`SimConfig::state_save_every`] and when the simulator stops. `None`: nothing
    /// is kept.
    pub state_file: Option<PathBuf>,
    /// How often the state file is written while the simulator runs.
    pub state_save_every: Duration,
    /// Faults injected at random into requests, at these rates (none by default).
    pub fault_rates: FaultRates,
}

/// One account with one API key.
#[derive(Debug, Clone)]
pub struct SimAccount {
    /// The `X-MBX-APIKEY` value: 1 to 64 ASCII letters or digits.
    pub api_key: String,
    /// How requests of this key are signed.
    pub key: SimKey,
    /// What the key may do, as `apiRestrictions` reports it.
    pub permissions: SimPermissions,
    /// Starting free balances per asset.
    pub balances: Vec<(String, Decimal)>,
}

/// The verification key of an API key.
#[derive(Clone)]
pub enum SimKey {
    /// HMAC-SHA256 with this secret; signatures are hex.
    Hmac {
        /// The secret key, as the exchange shows it once on creation.
        secret: String,
    },
    /// Ed25519; signatures are base64 of the 64-byte signature.
    Ed25519 {
        /// The raw 32-byte public key (see [`SimKey::ed25519_from_pem`] for PEM).
        public_key: Vec<u8>,
    },
}

/// The permissions of an API key, named after `GET /sapi/v1/account/apiRestrictions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimPermissions {
    /// `enableSpotAndMarginTrading`: may place and cancel orders.
    pub spot_trading: bool,
    /// `enableWithdrawals` (reported only; the simulator has no withdrawals).
    pub withdrawals: bool,
    /// `enableInternalTransfer` (reported only).
    pub internal_transfer: bool,
    /// `permitsUniversalTransfer` (reported only).
    pub universal_transfer: bool,
    /// `ipRestrict` (reported only: every client of a loopback simulator is on the allow list).
    pub ip_restricted: bool,
    /// `enableReading`: may read account data (USER_DATA endpoints).
    pub reading: bool,
}

/// A symbol with its starting price and trading rules (the filters of `exchangeInfo`).
#[derive(Debug, Clone)]
pub struct SimSymbol {
    /// Binance's name, e.g. `BTCUSDT`.
    pub symbol: String,
    /// The base asset, e.g. `BTC`.
    pub base: String,
    /// The quote asset, e.g. `USDT`.
    pub quote: String,
    /// The starting price.
    pub price: Decimal,
    /// `PRICE_FILTER.tickSize`.
    pub tick_size: Decimal,
    /// `PRICE_FILTER.minPrice`.
    pub min_price: Decimal,
    /// `PRICE_FILTER.maxPrice`.
    pub max_price: Decimal,
    /// `LOT_SIZE.stepSize`.
    pub step_size: Decimal,
    /// `LOT_SIZE.minQty`.
    pub min_qty: Decimal,
    /// `LOT_SIZE.maxQty`.
    pub max_qty: Decimal,
    /// `NOTIONAL.minNotional` (applied to market orders too).
    pub min_notional: Decimal,
    /// `NOTIONAL.maxNotional` (not applied to market orders, as on Binance).
    pub max_notional: Decimal,
    /// 24 h quote volume reported by `ticker/24hr` before any simulated trade (order guards read it);
    /// a random walk's minutes trade about this spread over the day.
    pub quote_volume_24h: Decimal,
    /// How the price moves by itself: [`PricePath::Static`] unless configured.
    pub path: PricePath,
}

/// Rate limits, published in `exchangeInfo.rateLimits` and enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimLimits {
    /// `REQUEST_WEIGHT` per minute and IP (Binance: 6000).
    pub request_weight_per_minute: u32,
    /// SAPI IP weight per minute (Binance: 12000); counts `/sapi/` requests separately.
    pub sapi_weight_per_minute: u32,
    /// `ORDERS` per 10 seconds and account (Binance: 50).
    pub orders_per_10s: u32,
    /// `ORDERS` per day and account (Binance: 160000).
    pub orders_per_day: u32,
    /// `MAX_NUM_ORDERS`: open orders per symbol and account (Binance: 200).
    pub max_open_orders_per_symbol: u32,
}

impl Default for SimLimits {
    fn default() -> Self {
        Self {
            request_weight_per_minute: 6_000,
            sapi_weight_per_minute: 12_000,
            orders_per_10s: 50,
            orders_per_day: 160_000,
            max_open_orders_per_symbol: 200,
        }
    }
}

impl SimConfig {
    /// The API key of [`SimConfig::default_for_tests`]'s HMAC account.
    pub const TEST_API_KEY: &'static str = "SimTestKey000000000000000000000000000000000000000000000000000001";
    /// The HMAC secret of [`SimConfig::TEST_API_KEY`].
    pub const TEST_API_SECRET: &'static str = "SimTestSecret0000000000000000000000000000000000000000000000000001";

    /// A simulator with no accounts or symbols yet, Binance's limits, a 0.1 % fee, no slippage and
    /// the real clock.
    pub fn new(seed: u64) -> Self {
        Self {
            accounts: Vec::new(),
            symbols: Vec::new(),
            seed,
            fee_rate: Decimal::new(1, 3),
            slippage: Decimal::ZERO,
            limits: SimLimits::default(),
            frozen_clock_ms: None,
            hang_for: Duration::from_secs(120),
            step_every: Duration::from_secs(60),
            state_file: None,
            state_save_every: Duration::from_secs(10),
            fault_rates: FaultRates::default(),
        }
    }

    /// One HMAC account ([`Self::TEST_API_KEY`] / [`Self::TEST_API_SECRET`]) holding 10000 USDT and
    /// 0.5 BTC, allowed to trade spot, IP-restricted and without withdrawals; symbols `BTCUSDT` at
    /// 30000 and `ETHUSDT` at 2000.
    pub fn default_for_tests() -> Self {
        let mut config = Self::new(42);
        config.symbols = vec![
            SimSymbol::new("BTCUSDT", "BTC", "USDT", Decimal::new(30_000, 0)),
            SimSymbol {
                step_size: Decimal::new(1, 4),
                min_qty: Decimal::new(1, 4),
                ..SimSymbol::new("ETHUSDT", "ETH", "USDT", Decimal::new(2_000, 0))
            },
        ];
        config.accounts = vec![SimAccount {
            api_key: Self::TEST_API_KEY.to_owned(),
            key: SimKey::Hmac { secret: Self::TEST_API_SECRET.to_owned() },
            permissions: SimPermissions::trading(),
            balances: vec![("USDT".to_owned(), Decimal::new(10_000, 0)), ("BTC".to_owned(), Decimal::new(5, 1))],
        }];
        config
    }

    /// Checks the configuration: well-formed and unique keys, usable symbol rules, sane rates.
    ///
    /// # Errors
    ///
    /// The first problem found, as a [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(Decimal::ZERO..Decimal::ONE).contains(&self.fee_rate) {
            return Err(ConfigError::BadRate("fee_rate"));
        }
        if !(Decimal::ZERO..Decimal::ONE).contains(&self.slippage) {
            return Err(ConfigError::BadRate("slippage"));
        }
        if self.step_every.is_zero() || self.state_save_every.is_zero() {
            return Err(ConfigError::BadInterval);
        }
        self.fault_rates.validate()?;
        let mut keys = HashSet::new();
        for account in &self.accounts {
            account.validate()?;
            if !keys.insert(account.api_key.as_str()) {
                return Err(ConfigError::DuplicateApiKey(account.api_key.clone()));
            }
        }
        let mut names = HashSet::new();
        for symbol in &self.symbols {
            symbol.validate()?;
            if !names.insert(symbol.symbol.as_str()) {
                return Err(ConfigError::DuplicateSymbol(symbol.symbol.clone()));
            }
        }
        Ok(())
    }
}

impl SimAccount {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !is_well_formed_api_key(&self.api_key) {
            return Err(ConfigError::MalformedApiKey(self.api_key.clone()));
        }
        match &self.key {
            SimKey::Hmac { secret } if secret.is_empty() => return Err(ConfigError::EmptySecret(self.api_key.clone())),
            SimKey::Ed25519 { public_key } if public_key.len() != 32 => {
                return Err(ConfigError::BadEd25519Key(self.api_key.clone()));
            }
            _ => {}
        }
        if let Some((asset, _)) = self.balances.iter().find(|(_, amount)| amount.is_sign_negative()) {
            return Err(ConfigError::NegativeBalance { api_key: self.api_key.clone(), asset: asset.clone() });
        }
        Ok(())
    }
}

impl SimKey {
    /// An Ed25519 key from an SPKI PEM (`-----BEGIN PUBLIC KEY-----`), the form Binance asks for
    /// when registering a key.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BadPem`] when the text is not an Ed25519 SubjectPublicKeyInfo PEM.
    pub fn ed25519_from_pem(pem: &str) -> Result<Self, ConfigError> {
        /// DER of `SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (33 bytes) }` up to the key.
        const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        let body = pem
            .trim()
            .strip_prefix("-----BEGIN PUBLIC KEY-----")
            .and_then(|rest| rest.strip_suffix("-----END PUBLIC KEY-----"))
            .ok_or(ConfigError::BadPem("missing BEGIN/END PUBLIC KEY lines"))?;
        let base64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(base64)
            .map_err(|_| ConfigError::BadPem("the body is not base64"))?;
        match der.strip_prefix(&SPKI_PREFIX[..]) {
            Some(key) if key.len() == 32 => Ok(Self::Ed25519 { public_key: key.to_vec() }),
            _ => Err(ConfigError::BadPem("not an Ed25519 SubjectPublicKeyInfo")),
        }
    }
}

impl std::fmt::Debug for SimKey {
    /// Secrets stay out of debug output and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hmac { .. } => f.write_str("Hmac { secret: <redacted> }"),
            Self::Ed25519 { public_key } => {
                f.debug_struct("Ed25519").field("public_key_len", &public_key.len()).finish()
            }
        }
    }
}

impl SimPermissions {
    /// The key of `bulwark exchange-sim`'s command line: spot trading and reading, IP-restricted,
    /// no withdrawals or transfers.
    pub fn trading() -> Self {
        Self {
            spot_trading: true,
            withdrawals: false,
            internal_transfer: false,
            universal_transfer: false,
            ip_restricted: true,
            reading: true,
        }
    }

    /// Reading only.
    pub fn read_only() -> Self {
        Self { spot_trading: false, ..Self::trading() }
    }
}

impl SimSymbol {
    /// A symbol with rules shaped like Binance's `BTCUSDT`: tick 0.01, step and minimum quantity
    /// 0.00001, maximum quantity 9000, notional between 5 and 9000000, prices 0.01 to 1000000, and
    /// a 24 h quote volume of 1e9.
    pub fn new(symbol: &str, base: &str, quote: &str, price: Decimal) -> Self {
        Self {
            symbol: symbol.to_owned(),
            base: base.to_owned(),
            quote: quote.to_owned(),
            price,
            tick_size: Decimal::new(1, 2),
            min_price: Decimal::new(1, 2),
            max_price: Decimal::new(1_000_000, 0),
            step_size: Decimal::new(1, 5),
            min_qty: Decimal::new(1, 5),
            max_qty: Decimal::new(9_000, 0),
            min_notional: Decimal::new(5, 0),
            max_notional: Decimal::new(9_000_000, 0),
            quote_volume_24h: Decimal::new(1_000_000_000, 0),
            path: PricePath::Static,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |reason| Err(ConfigError::BadSymbol { symbol: self.symbol.clone(), reason });
        let upper = |name: &str| !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !upper(&self.symbol) || self.symbol.len() > 20 || !upper(&self.base) || !upper(&self.quote) {
            return fail("names must be 1 to 20 upper-case letters or digits");
        }
        if self.base == self.quote {
            return fail("base and quote must differ");
        }
        let positive = [self.price, self.tick_size, self.step_size, self.min_qty, self.max_qty, self.max_price];
        if positive.iter().any(|value| *value <= Decimal::ZERO) {
            return fail("price, tick size, step size, quantities and maximum price must be positive");
        }
        if self.min_price.is_sign_negative()
            || self.min_notional.is_sign_negative()
            || self.quote_volume_24h.is_sign_negative()
        {
            return fail("minimum price, minimum notional and 24 h volume must not be negative");
        }
        if self.min_qty > self.max_qty || self.min_price > self.max_price || self.min_notional > self.max_notional {
            return fail("a minimum is above its maximum");
        }
        if self.price < self.min_price || self.price > self.max_price {
            return fail("the price is outside minimum and maximum price");
        }
        match &self.path {
            PricePath::Static => {}
            PricePath::RandomWalk { volatility } => {
                if volatility.is_sign_negative() || *volatility > MAX_VOLATILITY {
                    return fail("a random walk's volatility must be between 0 and 0.1");
                }
            }
            PricePath::Replay { candles } => {
                if candles.is_empty() {
                    return fail("a replay needs at least one candle");
                }
                if candles.windows(2).any(|pair| pair[0].open_time_ms >= pair[1].open_time_ms) {
                    return fail("replayed candles must have increasing open times");
                }
                if candles.iter().any(|candle| candle.check().is_err()) {
                    return fail("a replayed candle has a bad price or volume");
                }
            }
        }
        Ok(())
    }
}

/// Binance API keys are 64 ASCII letters and digits; the simulator accepts 1 to 64 so that tests may
/// use short names. Anything else is answered with -2014 "API-key format invalid.".
pub(crate) fn is_well_formed_api_key(key: &str) -> bool {
    (1..=64).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_configuration_is_valid() {
        assert_eq!(SimConfig::default_for_tests().validate(), Ok(()));
        assert_eq!(SimConfig::TEST_API_KEY.len(), 64);
    }

    #[test]
    fn problems_are_named() {
        let mut config = SimConfig::default_for_tests();
        config.accounts[0].api_key = "not a key".to_owned();
        assert!(matches!(config.validate(), Err(ConfigError::MalformedApiKey(_))));

        let mut config = SimConfig::default_for_tests();
        config.accounts.push(config.accounts[0].clone());
        assert!(matches!(config.validate(), Err(ConfigError::DuplicateApiKey(_))));

        let mut config = SimConfig::default_for_tests();
        config.symbols[0].min_qty = Decimal::new(10_000, 0);
        assert!(matches!(config.validate(), Err(ConfigError::BadSymbol { .. })));

        let mut config = SimConfig::default_for_tests();
        config.fee_rate = Decimal::ONE;
        assert_eq!(config.validate(), Err(ConfigError::BadRate("fee_rate")));

        let mut config = SimConfig::default_for_tests();
        config.accounts[0].key = SimKey::Ed25519 { public_key: vec![0; 31] };
        assert!(matches!(config.validate(), Err(ConfigError::BadEd25519Key(_))));
    }

    #[test]
    fn an_ed25519_pem_yields_the_raw_key() {
        // RFC 8032 7.1 TEST 1 public key wrapped in SubjectPublicKeyInfo.
        let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n";
        let SimKey::Ed25519 { public_key } = SimKey::ed25519_from_pem(pem).expect("valid PEM") else {
            panic!("expected an Ed25519 key");
        };
        assert_eq!(public_key[..4], [0xd7, 0x5a, 0x98, 0x01]);
        assert!(SimKey::ed25519_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err());
        assert!(SimKey::ed25519_from_pem("garbage").is_err());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let key = SimKey::Hmac { secret: "hunter2".to_owned() };
        assert!(!format!("{key:?}").contains("hunter2"));
    }
}
