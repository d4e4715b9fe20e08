//! The simulator over real HTTP: each test spawns its own `ExchangeSim` on a loopback port and talks
//! to it with reqwest, signing requests itself with aws-lc-rs (independently of the simulator's
//! verifier), and checks replies and the simulator's state through its handle.

mod account;
mod auth;
mod configured;
mod faults;
mod in_process;
mod limits;
mod market;
mod orders;
mod partial;
mod paths;
mod sim_admin;
mod state;
mod stream;

use std::time::Duration;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use exchange_sim::{ExchangeSim, SimConfig};
use reqwest::Method;
use reqwest::header::HeaderMap;
use rust_decimal::Decimal;
use serde_json::Value;

pub const KEY: &str = SimConfig::TEST_API_KEY;
pub const SECRET: &str = SimConfig::TEST_API_SECRET;

/// A decimal from its text (test data only).
pub fn d(text: &str) -> Decimal {
    text.parse().expect("a decimal literal")
}

pub async fn sim() -> ExchangeSim {
    sim_with(|_| {}).await
}

pub async fn sim_with(change: impl FnOnce(&mut SimConfig)) -> ExchangeSim {
    let mut config = SimConfig::default_for_tests();
    change(&mut config);
    ExchangeSim::spawn(config).await.expect("the simulator starts")
}

/// How a test client signs.
#[derive(Debug)]
pub enum Signer {
    Hmac(String),
    Ed25519(Ed25519KeyPair),
}

impl Signer {
    /// The `signature` parameter value, percent-encoded as sent.
    pub fn sign(&self, payload: &str) -> String {
        match self {
            Self::Hmac(secret) => {
                let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
                hex(hmac::sign(&key, payload.as_bytes()).as_ref())
            }
            Self::Ed25519(pair) => {
                let signature = base64::engine::general_purpose::STANDARD.encode(pair.sign(payload.as_bytes()));
                url::form_urlencoded::byte_serialize(signature.as_bytes()).collect()
            }
        }
    }
}

/// A deterministic Ed25519 key pair and its raw public key.
pub fn ed25519_pair(seed: u8) -> (Ed25519KeyPair, Vec<u8>) {
    let pair = Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).expect("a 32-byte seed");
    let public = pair.public_key().as_ref().to_vec();
    (pair, public)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A Binance client with one key, as an adapter would be.
#[derive(Debug)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub api_key: Option<String>,
    pub signer: Signer,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Binance's error code, asserting the error shape.
    pub fn code(&self) -> i64 {
        assert!(self.json["msg"].is_string(), "an error body: {}", self.json);
        self.json["code"].as_i64().expect("a numeric code")
    }

    pub fn msg(&self) -> &str {
        self.json["msg"].as_str().unwrap_or_default()
    }
}

impl Client {
    pub fn hmac(sim: &ExchangeSim) -> Self {
        Self::new(sim, Some(KEY), Signer::Hmac(SECRET.to_owned()))
    }

    pub fn new(sim: &ExchangeSim, api_key: Option<&str>, signer: Signer) -> Self {
        Self::with_timeout(sim, api_key, signer, Duration::from_secs(30))
    }

    pub fn with_timeout(sim: &ExchangeSim, api_key: Option<&str>, signer: Signer, timeout: Duration) -> Self {
        let http = reqwest::Client::builder().timeout(timeout).build().expect("a client");
        Self { http, base: sim.base_url(), api_key: api_key.map(str::to_owned), signer }
    }

    /// A NONE-security GET.
    pub async fn public(&self, path: &str, query: &str) -> Reply {
        self.send(Method::GET, path, query, "").await.expect("a response")
    }

    /// A SIGNED request with all parameters in the query string, stamped with `timestamp_ms`.
    pub async fn signed_at(&self, method: Method, path: &str, params: &str, timestamp_ms: i64) -> Reply {
        let query = self.sign_query(params, timestamp_ms);
        self.send(method, path, &query, "").await.expect("a response")
    }

    /// A SIGNED request stamped with the simulator's clock.
    pub async fn signed(&self, sim: &ExchangeSim, method: Method, path: &str, params: &str) -> Reply {
        self.signed_at(method, path, params, sim.server_time_ms()).await
    }

    /// `params&timestamp=..&signature=..`.
    pub fn sign_query(&self, params: &str, timestamp_ms: i64) -> String {
        let payload = if params.is_empty() {
            format!("timestamp={timestamp_ms}")
        } else {
            format!("{params}&timestamp={timestamp_ms}")
        };
        let signature = self.signer.sign(&payload);
        format!("{payload}&signature={signature}")
    }

    /// Sends a raw request; `Err` when no HTTP response arrives.
    pub async fn send(&self, method: Method, path: &str, query: &str, body: &str) -> reqwest::Result<Reply> {
        let url =
            if query.is_empty() { format!("{}{path}", self.base) } else { format!("{}{path}?{query}", self.base) };
        let mut request = self.http.request(method, url);
        if let Some(key) = &self.api_key {
            request = request.header("X-MBX-APIKEY", key);
        }
        if !body.is_empty() {
            request = request.header("Content-Type", "application/x-www-form-urlencoded").body(body.to_owned());
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let json = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("a JSON body") };
        Ok(Reply { status, headers, json })
    }

    /// Places an order (`POST /api/v3/order`, all parameters in the body).
    pub async fn order(&self, sim: &ExchangeSim, params: &str) -> Reply {
        let body = self.sign_query(params, sim.server_time_ms());
        self.send(Method::POST, "/api/v3/order", "", &body).await.expect("a response")
    }
}

/// The requests of the log that placed orders.
pub fn order_posts(sim: &ExchangeSim) -> usize {
    sim.request_log().iter().filter(|record| record.method == "POST" && record.path == "/api/v3/order").count()
}
