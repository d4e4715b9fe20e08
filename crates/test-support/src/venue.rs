//! The exchange a test app talks to: an in-process `exchange-sim` with the simulator's HMAC test
//! account and an Ed25519 account, reached over real HTTP by the real Binance adapter.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use domain::{Clock, Decimal, Timestamp};
use exchange_binance::{BinanceClient, BinanceConfig, BinanceVenue};
use exchange_sim::{ExchangeSim, SimAccount, SimConfig, SimKey, SimPermissions};

/// The API key of the simulator's Ed25519 account.
pub const ED25519_API_KEY: &str = "SimEd25519Key00000000000000000000000000000000000000000000000001";

/// The venue side of a test app. `Debug` leaves the secrets out.
pub struct TestVenue {
    pub sim: ExchangeSim,
    /// The paper market (`paper` venue): another simulator, where the app opens paper accounts.
    pub paper: Arc<ExchangeSim>,
    /// An HMAC account with a key and secret drawn at random for this venue (the canary tests plant
    /// the secret and search for it everywhere).
    pub hmac_api_key: String,
    pub hmac_secret: String,
    /// The Ed25519 account's private key as PKCS#8 PEM (what a user pastes).
    pub ed25519_pem: String,
    pub client: Arc<BinanceClient>,
    pub paper_client: Arc<BinanceClient>,
}

impl std::fmt::Debug for TestVenue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestVenue").field("sim", &self.sim.base_url()).finish_non_exhaustive()
    }
}

/// The real clock: venue timestamps must match the simulator's, whatever the app's fake clock says.
#[derive(Debug)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> Timestamp {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        Timestamp::from_unix_millis(i64::try_from(millis).unwrap_or(i64::MAX))
    }
}

impl TestVenue {
    /// # Panics
    /// When the simulator cannot bind a loopback port.
    pub async fn start() -> TestVenue {
        let pair = Ed25519KeyPair::generate().expect("ed25519 key");
        let pkcs8 = pair.to_pkcs8v1().expect("pkcs8");
        let ed25519_pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        );
        let random = |len| exchange_sim::random_alnum(len).expect("the OS random source").as_str().to_owned();
        let hmac_api_key = format!("TestKey{}", random(57));
        let hmac_secret = random(64);
        let mut config = SimConfig::default_for_tests();
        config.accounts.push(SimAccount {
            api_key: hmac_api_key.clone(),
            key: SimKey::Hmac { secret: hmac_secret.clone() },
            permissions: SimPermissions::trading(),
            balances: vec![("USDT".to_owned(), Decimal::new(10_000, 0)), ("BTC".to_owned(), Decimal::new(5, 1))],
        });
        config.accounts.push(SimAccount {
            api_key: ED25519_API_KEY.to_owned(),
            key: SimKey::Ed25519 { public_key: pair.public_key().as_ref().to_vec() },
            permissions: SimPermissions::trading(),
            balances: vec![("USDT".to_owned(), Decimal::new(2_500, 0))],
        });
        let sim = ExchangeSim::spawn(config).await.expect("exchange-sim");
        let mut binance = BinanceConfig::new(sim.base_url().parse().expect("sim url"));
        binance.request_timeout = Duration::from_secs(5);
        let client = Arc::new(BinanceClient::new(binance, Arc::new(WallClock)).expect("binance client"));
        let mut paper_config = SimConfig::default_for_tests();
        paper_config.accounts.clear();
        // Binance takes 50 orders per 10 s and account; the tests' paper market takes more, so a run
        // of hundreds of deals (the fault test) is paced by the app, not by that limit. The limit
        // itself is tested against exchange-sim's own configuration.
        paper_config.limits.orders_per_10s = 1_000;
        let paper = Arc::new(ExchangeSim::spawn(paper_config).await.expect("paper market"));
        let mut paper_binance = BinanceConfig::new(paper.base_url().parse().expect("paper url"));
        paper_binance.request_timeout = Duration::from_secs(5);
        let paper_client = Arc::new(BinanceClient::new(paper_binance, Arc::new(WallClock)).expect("paper client"));
        TestVenue { sim, paper, hmac_api_key, hmac_secret, ed25519_pem, client, paper_client }
    }

    pub fn venues(&self) -> Arc<dyn exchange::Venues> {
        Arc::new(exchange::VenueSet(vec![
            Arc::new(BinanceVenue { name: "binance", client: self.client.clone() }),
            Arc::new(BinanceVenue { name: exchange_sim::PAPER_VENUE, client: self.paper_client.clone() }),
        ]))
    }

    pub fn paper_market(&self) -> Arc<dyn exchange::PaperMarket> {
        self.paper.clone()
    }
}
