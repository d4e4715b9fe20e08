//! What signing an order costs, in process, with the raw primitive measured in the same run as the
//! baseline:
//! - HMAC-SHA256 over the payload with a ready key (the floor);
//! - building and signing a LIMIT order's query with an HMAC secret (`sign::signed_query`);
//! - the same with an Ed25519 private key given as PKCS#8 PEM (parse, load, sign, base64);
//! - opening the sealed secret in the vault and then signing (what one order costs the server);
//! - a whole placement over HTTP against exchange-sim on loopback (for scale).
//!
//! Run: `cargo bench -p exchange-binance --bench sign`; without `--bench` it runs once with tiny
//! counts as a smoke test.

#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine as _;
use domain::{Clock, Decimal, Pair, Price, Qty, Side, Timestamp};
use exchange::{ClientOrderId, Exchange, KeyKind, OrderAmount, OrderRequest, OrderType, PlainCredentials, TimeInForce};
use exchange_binance::sign::{SignedEndpoint, encode_params, signed_query};
use exchange_binance::{BinanceClient, BinanceConfig};
use exchange_sim::{ExchangeSim, SimConfig};
use vault::envelope::{Binding, Kek, KekRing, SecretPurpose};
use zeroize::Zeroizing;

const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

fn order_params(n: u64) -> Vec<(&'static str, String)> {
    vec![
        ("symbol", "BTCUSDT".to_owned()),
        ("side", "BUY".to_owned()),
        ("type", "LIMIT".to_owned()),
        ("timeInForce", "GTC".to_owned()),
        ("quantity", "0.00125".to_owned()),
        ("price", "29000.01".to_owned()),
        ("newClientOrderId", format!("bw-bench-{n}")),
        ("newOrderRespType", "FULL".to_owned()),
        ("recvWindow", "5000".to_owned()),
        ("timestamp", (1_764_000_000_000 + n).to_string()),
    ]
}

fn per_op_us(n: u64, mut op: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        op(i);
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

#[derive(Debug)]
struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> Timestamp {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        Timestamp::from_unix_millis(i64::try_from(millis).unwrap_or(i64::MAX))
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (rounds, n, http_n) = if bench { (5, 20_000, 300) } else { (1, 10, 3) };
    let pem = {
        let pkcs8 = Ed25519KeyPair::generate().expect("key").to_pkcs8v1().expect("pkcs8");
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        )
    };
    let ring = KekRing::new(1, vec![Kek::generate(1).expect("kek")]).expect("ring");
    let binding = Binding {
        purpose: SecretPurpose::ExchangeApiSecret,
        user_id: "0b6f0a8e-5d6c-4f0e-9a57-2f7c1b0e9d11".to_owned(),
        credential_id: "6a1d8c2e-3b4f-4a5e-8c7d-9e0f1a2b3c4d".to_owned(),
        exchange: "binance".to_owned(),
        api_key_fingerprint: [7; 32],
    };
    let sealed = ring.seal(&binding, SECRET.as_bytes()).expect("seal");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio");

    let mut figures: Vec<[f64; 6]> = Vec::new();
    for round in 1..=rounds {
        let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
        let payload = encode_params(&order_params(0));
        let floor = per_op_us(n, |_| {
            black_box(hmac::sign(&key, black_box(payload.as_bytes())));
        });
        let hmac_order = per_op_us(n, |i| {
            black_box(
                signed_query(SignedEndpoint::NewOrder, KeyKind::Hmac, SECRET.as_bytes(), &order_params(i))
                    .expect("sign"),
            );
        });
        let ed_order = per_op_us(n / 4, |i| {
            black_box(
                signed_query(SignedEndpoint::NewOrder, KeyKind::Ed25519, pem.as_bytes(), &order_params(i))
                    .expect("sign"),
            );
        });
        let seal_open = per_op_us(n, |_| {
            let blob = ring.seal(&binding, black_box(SECRET.as_bytes())).expect("seal");
            black_box(ring.open(&binding, &blob).expect("open"));
        });
        let open_sign = per_op_us(n, |i| {
            let secret = ring.open(&binding, &sealed).expect("open");
            black_box(signed_query(SignedEndpoint::NewOrder, KeyKind::Hmac, &secret, &order_params(i)).expect("sign"));
        });
        let http_ms = runtime.block_on(place_over_http(http_n, round));
        println!(
            "round {round}: hmac floor {floor:.2} us | hmac order {hmac_order:.2} us | ed25519 order {ed_order:.2} us \
             | seal+open {seal_open:.2} us | open+sign {open_sign:.2} us | placement over HTTP {http_ms:.3} ms"
        );
        figures.push([floor, hmac_order, ed_order, seal_open, open_sign, http_ms]);
    }
    let names = [
        "HMAC-SHA256 of the payload, ready key (us)",
        "sign a LIMIT order, HMAC (us)",
        "sign a LIMIT order, Ed25519 from PEM (us)",
        "vault seal + open of a 64-byte secret (us)",
        "vault open + sign a LIMIT order, HMAC (us)",
        "place a LIMIT order at exchange-sim over HTTP (ms)",
    ];
    println!("\nmedian of {rounds} rounds (min..max):");
    for (i, name) in names.iter().enumerate() {
        let mut v: Vec<f64> = figures.iter().map(|f| f[i]).collect();
        v.sort_by(f64::total_cmp);
        println!("  {name:<52} {:>9.3}  ({:.3}..{:.3})", v[v.len() / 2], v[0], v[v.len() - 1]);
    }
    let ratio: Vec<f64> = figures.iter().map(|f| f[1] / f[0]).collect();
    println!("  signed order / raw HMAC, per round: {ratio:.2?}");
}

/// Median milliseconds of sequential placements (each a fresh client order id) at exchange-sim.
async fn place_over_http(n: u64, round: usize) -> f64 {
    let mut config = SimConfig::default_for_tests();
    config.limits.orders_per_10s = u32::MAX;
    config.limits.request_weight_per_minute = u32::MAX;
    config.limits.max_open_orders_per_symbol = u32::MAX;
    config.limits.orders_per_day = u32::MAX;
    config.accounts[0].balances = vec![("USDT".to_owned(), Decimal::new(1_000_000_000, 0))];
    let sim = ExchangeSim::spawn(config).await.expect("sim");
    let mut binance = BinanceConfig::new(sim.base_url().parse().expect("url"));
    binance.weight_budget = u32::MAX;
    binance.request_timeout = Duration::from_secs(5);
    let client = Arc::new(BinanceClient::new(binance, Arc::new(WallClock)).expect("client"));
    let credentials = PlainCredentials::new(
        SimConfig::TEST_API_KEY,
        KeyKind::Hmac,
        Zeroizing::new(SimConfig::TEST_API_SECRET.as_bytes().to_vec()),
    );
    let account = client.account(Arc::new(credentials));
    let pair = Pair::parse_3commas("USDT_BTC").expect("pair");
    let mut samples = Vec::new();
    for i in 0..n {
        let order = OrderRequest {
            pair: pair.clone(),
            side: Side::Buy,
            order_type: OrderType::Limit {
                price: Price::new(Decimal::new(2_000_000, 2)).expect("price"),
                time_in_force: TimeInForce::Gtc,
            },
            amount: OrderAmount::Base(Qty::new(Decimal::new(1, 3)).expect("qty")),
            client_order_id: ClientOrderId::parse(&format!("bw-bench-{round}-{i}")).expect("id"),
        };
        let start = Instant::now();
        account.place_order(&order).await.expect("placed");
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
