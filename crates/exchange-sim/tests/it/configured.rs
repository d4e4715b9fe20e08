//! What the command line configures besides the market: faults at random rates (`--faults`) and
//! accounts from a TOML file (`--accounts`).

use std::time::{Duration, Instant};

use base64::Engine as _;
use exchange_sim::{FaultRates, SimAccount};
use reqwest::Method;
use serde_json::json;

use crate::{Client, KEY, Signer, ed25519_pair, order_posts, sim_with};

fn rates(spec: &str) -> FaultRates {
    FaultRates::parse(spec).expect("a fault specification")
}

#[tokio::test]
async fn a_5xx_rate_of_one_refuses_every_request_without_performing_it() {
    let sim = sim_with(|config| config.fault_rates = rates("5xx=1")).await;
    let client = Client::hmac(&sim);
    let reply = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.00100").await;
    assert_eq!((reply.status, reply.code()), (500, -1000));
    assert!(sim.orders(KEY).is_empty(), "not performed");
    assert_eq!(client.public("/api/v3/ping", "").await.status, 500);
}

#[tokio::test]
async fn a_lost_rate_of_one_performs_the_order_and_loses_every_answer() {
    let sim = sim_with(|config| config.fault_rates = rates("lost=1")).await;
    let client = Client::hmac(&sim);
    for n in 0..6 {
        let body = client.sign_query(
            &format!("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00100&price=20000.00&newClientOrderId=lost-{n}"),
            sim.server_time_ms(),
        );
        match client.send(Method::POST, "/api/v3/order", "", &body).await {
            Ok(reply) => assert!(matches!(reply.status, 503 | 504), "{} {}", reply.status, reply.json),
            Err(error) => assert!(!error.is_timeout(), "a dropped connection, not a hang: {error}"),
        }
    }
    assert_eq!(order_posts(&sim), 6);
    assert_eq!(sim.orders(KEY).len(), 6, "every order was placed");
}

#[tokio::test]
async fn latency_delays_the_requests_it_hits() {
    let sim = sim_with(|config| config.fault_rates = rates("latency=1:300ms")).await;
    let client = Client::hmac(&sim);
    let started = Instant::now();
    let reply = client.public("/api/v3/time", "").await;
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn faults_at_a_rate_hit_some_requests_and_follow_the_seed() {
    let statuses = |seed: u64| async move {
        let sim = sim_with(|config| {
            config.seed = seed;
            config.fault_rates = rates("5xx=0.3,429=0.2");
        })
        .await;
        let client = Client::hmac(&sim);
        let mut statuses = Vec::new();
        for _ in 0..60 {
            statuses.push(client.public("/api/v3/ping", "").await.status);
        }
        statuses
    };
    let first = statuses(42).await;
    assert_eq!(first, statuses(42).await, "the same seed, the same faults");
    let count = |status: u16| first.iter().filter(|s| **s == status).count();
    assert!((8..=30).contains(&count(500)), "{first:?}");
    assert!((3..=22).contains(&count(429)), "{first:?}");
    assert!((15..=45).contains(&count(200)), "{first:?}");
}

#[tokio::test]
async fn accounts_from_a_toml_file_sign_with_their_keys_and_report_their_permissions() {
    let (pair, public_key) = ed25519_pair(9);
    // SubjectPublicKeyInfo of an Ed25519 key: a fixed 12-byte prefix, then the 32-byte key.
    let mut der = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    der.extend_from_slice(&public_key);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----",
        base64::engine::general_purpose::STANDARD.encode(der)
    );
    let toml = format!(
        "[[account]]\napi_key = \"Carol01\"\nsecret = \"carol-secret\"\nbalances = {{ USDT = \"123.45\", BTC = 2 }}\n\n\
         [[account]]\napi_key = \"Dave01\"\ned25519_public_key = \"\"\"\n{pem}\n\"\"\"\n\
         permissions = {{ withdrawals = true, ip_restricted = false }}\n"
    );
    let accounts = SimAccount::parse_toml_list(&toml).expect("an accounts file");
    let sim = sim_with(|config| config.accounts = accounts).await;

    let carol = Client::new(&sim, Some("Carol01"), Signer::Hmac("carol-secret".to_owned()));
    let account = carol.signed(&sim, Method::GET, "/api/v3/account", "omitZeroBalances=true").await;
    assert_eq!(account.status, 200, "{}", account.json);
    assert_eq!(
        account.json["balances"],
        json!([{"asset": "BTC", "free": "2.00000000", "locked": "0.00000000"}, {"asset": "USDT", "free": "123.45000000", "locked": "0.00000000"}])
    );
    let dave = Client::new(&sim, Some("Dave01"), Signer::Ed25519(pair));
    let restrictions = dave.signed(&sim, Method::GET, "/sapi/v1/account/apiRestrictions", "").await;
    assert_eq!(restrictions.status, 200, "{}", restrictions.json);
    assert_eq!(
        (restrictions.json["enableWithdrawals"].clone(), restrictions.json["ipRestrict"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(restrictions.json["enableSpotAndMarginTrading"], true, "left out: the default");
    let wrong = Client::new(&sim, Some("Carol01"), Signer::Hmac("not-carols".to_owned()));
    assert_eq!(wrong.signed(&sim, Method::GET, "/api/v3/account", "").await.code(), -1022);
}
