//! The Binance adapter over real HTTP against `exchange-sim`, which checks signatures, timestamps,
//! filters and weights the way Binance does. Every test ends by checking that each signed request
//! the simulator saw is on the signer's allowlist (EX-2).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use domain::{Clock, Decimal, OrderStatus, Pair, Price, Qty, Side, Timestamp};
use exchange::{
    ClientOrderId, Exchange, ExchangeError, KeyKind, OrderAmount, OrderRequest, OrderType, PlainCredentials,
    TimeInForce, VenueOrderRef,
};
use exchange_binance::{BinanceClient, BinanceConfig, sign};
use exchange_sim::{ExchangeSim, Fault, LostReply, SimAccount, SimConfig, SimKey, SimPermissions};
use zeroize::Zeroizing;

mod stream;

#[derive(Debug)]
struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> Timestamp {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
        Timestamp::from_unix_millis(i64::try_from(millis).unwrap())
    }
}

fn dec(raw: &str) -> Decimal {
    Decimal::from_str(raw).unwrap()
}

fn btcusdt() -> Pair {
    Pair::parse_3commas("USDT_BTC").unwrap()
}

fn config(sim: &ExchangeSim) -> BinanceConfig {
    let mut config = BinanceConfig::new(sim.base_url().parse().unwrap());
    config.request_timeout = Duration::from_secs(5);
    config.recv_window = Duration::from_millis(1_000);
    config.lookup_interval = Duration::from_millis(100);
    config
}

fn hmac(api_key: &str, secret: &str) -> Arc<PlainCredentials> {
    Arc::new(PlainCredentials::new(api_key, KeyKind::Hmac, Zeroizing::new(secret.as_bytes().to_vec())))
}

fn account_with(config: BinanceConfig, api_key: &str, secret: &str) -> (Arc<BinanceClient>, impl Exchange) {
    let client = Arc::new(BinanceClient::new(config, Arc::new(WallClock)).unwrap());
    let account = client.account(hmac(api_key, secret));
    (client, account)
}

fn test_account(sim: &ExchangeSim) -> (Arc<BinanceClient>, impl Exchange) {
    account_with(config(sim), SimConfig::TEST_API_KEY, SimConfig::TEST_API_SECRET)
}

fn limit_buy(id: &str, price: &str, qty: &str) -> OrderRequest {
    OrderRequest {
        pair: btcusdt(),
        side: Side::Buy,
        order_type: OrderType::Limit { price: Price::new(dec(price)).unwrap(), time_in_force: TimeInForce::Gtc },
        amount: OrderAmount::Base(Qty::new(dec(qty)).unwrap()),
        client_order_id: ClientOrderId::parse(id).unwrap(),
    }
}

/// EX-2 from the outside: the simulator saw no signed request off the allowlist.
fn assert_only_allowlisted(sim: &ExchangeSim) {
    for request in sim.request_log() {
        if request.query.contains("signature=") {
            assert!(
                sign::ALLOWLIST.contains(&(request.method.as_str(), request.path.as_str())),
                "signed {} {} is not on the allowlist",
                request.method,
                request.path
            );
        }
    }
}

fn posts_of_order(sim: &ExchangeSim) -> usize {
    sim.request_log().iter().filter(|r| r.method == "POST" && r.path == "/api/v3/order").count()
}

#[tokio::test]
async fn reads_markets_ticker_balances_and_key_permissions() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (client, account) = test_account(&sim);
    let markets = account.markets(&[btcusdt()]).await.unwrap();
    assert_eq!(markets.len(), 1);
    assert_eq!(markets[0].venue_symbol, "BTCUSDT");
    assert_eq!(markets[0].filters.tick_size, Some(dec("0.01")));
    assert_eq!(markets[0].filters.step_size, Some(dec("0.00001")));
    assert!(markets[0].filters.min_notional.is_some());
    let two = account.markets(&[btcusdt(), Pair::parse_3commas("USDT_ETH").unwrap()]).await.unwrap();
    assert_eq!(two.len(), 2);

    let ticker = account.ticker(&btcusdt()).await.unwrap();
    assert_eq!(ticker.last_price, dec("30000"));

    let mut balances = account.balances().await.unwrap();
    balances.sort_by(|a, b| a.asset.cmp(&b.asset));
    let shown: Vec<(String, Decimal)> = balances.iter().map(|b| (b.asset.to_string(), b.free)).collect();
    assert_eq!(shown, vec![("BTC".to_owned(), dec("0.5")), ("USDT".to_owned(), dec("10000"))]);

    let permissions = account.key_permissions().await.unwrap();
    assert!(permissions.spot_trading && permissions.ip_restricted);
    assert!(!permissions.withdrawals && !permissions.internal_transfer && !permissions.universal_transfer);
    assert_eq!(permissions.refusal(true), None);
    assert!(client.used_weight() > 0, "the weight header was read");
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn each_forbidden_permission_reads_as_such() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_client, account) = test_account(&sim);
    let cases = [
        (SimPermissions { withdrawals: true, ..SimPermissions::trading() }, "withdrawal_permission_enabled"),
        (SimPermissions { internal_transfer: true, ..SimPermissions::trading() }, "transfer_permission_enabled"),
        (SimPermissions { universal_transfer: true, ..SimPermissions::trading() }, "transfer_permission_enabled"),
        (SimPermissions { spot_trading: false, ..SimPermissions::trading() }, "trading_permission_missing"),
        (SimPermissions { ip_restricted: false, ..SimPermissions::trading() }, "ip_restriction_missing"),
    ];
    for (permissions, code) in cases {
        sim.set_permissions(SimConfig::TEST_API_KEY, permissions).unwrap();
        let read = account.key_permissions().await.unwrap();
        assert_eq!(read.refusal(true).map(|r| r.code()), Some(code), "{permissions:?}");
    }
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn an_ed25519_key_signs_requests_the_venue_verifies() {
    let pair = Ed25519KeyPair::generate().unwrap();
    let pkcs8 = pair.to_pkcs8v1().unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
    );
    let mut config = SimConfig::default_for_tests();
    config.accounts.push(SimAccount {
        api_key: "EdKey0000000000000000000000000000000000000000000000000000000001".to_owned(),
        key: SimKey::Ed25519 { public_key: pair.public_key().as_ref().to_vec() },
        permissions: SimPermissions::trading(),
        balances: vec![("USDT".to_owned(), dec("100"))],
    });
    let sim = ExchangeSim::spawn(config).await.unwrap();
    let client = Arc::new(BinanceClient::new(self::config(&sim), Arc::new(WallClock)).unwrap());
    let credentials = PlainCredentials::new(
        "EdKey0000000000000000000000000000000000000000000000000000000001",
        KeyKind::Ed25519,
        Zeroizing::new(pem.into_bytes()),
    );
    let account = client.account(Arc::new(credentials));
    let balances = account.balances().await.unwrap();
    assert_eq!(balances.len(), 1);
    assert_eq!(balances[0].free, dec("100"));
    assert!(account.key_permissions().await.unwrap().spot_trading);

    // Another Ed25519 key for the same API key: the venue rejects its signature.
    let other = Ed25519KeyPair::generate().unwrap().to_pkcs8v1().unwrap();
    let wrong = PlainCredentials::new(
        "EdKey0000000000000000000000000000000000000000000000000000000001",
        KeyKind::Ed25519,
        Zeroizing::new(other.as_ref().to_vec()),
    );
    let err = client.account(Arc::new(wrong)).balances().await.unwrap_err();
    assert_eq!(err, ExchangeError::InvalidSignature);
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn a_wrong_secret_an_unknown_key_and_a_revoked_key_are_told_apart() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_c, wrong_secret) = account_with(config(&sim), SimConfig::TEST_API_KEY, "not-the-secret");
    assert_eq!(wrong_secret.key_permissions().await.unwrap_err(), ExchangeError::InvalidSignature);

    let (_c, unknown) =
        account_with(config(&sim), "NoSuchKey0000000000000000000000000000000000000000000000000000001", "x");
    let err = unknown.key_permissions().await.unwrap_err();
    assert!(matches!(err, ExchangeError::InvalidApiKey { code: -2015 | -2014, .. }), "{err:?}");
    assert!(err.is_key_rejected());

    let (_c, account) = test_account(&sim);
    account.key_permissions().await.unwrap();
    sim.revoke_key(SimConfig::TEST_API_KEY).unwrap();
    let err = account.key_permissions().await.unwrap_err();
    assert!(err.is_key_rejected(), "{err:?}");
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn orders_are_placed_found_by_either_id_and_canceled() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_client, account) = test_account(&sim);
    let order = limit_buy("bw-test-limit-1", "29000.00", "0.01");
    let placed = account.place_order(&order).await.unwrap();
    assert_eq!(placed.status, OrderStatus::New);
    assert_eq!(placed.client_order_id, "bw-test-limit-1");
    assert_eq!(placed.price, dec("29000"));

    let by_venue =
        account.query_order(&btcusdt(), &VenueOrderRef::VenueId(placed.venue_order_id.clone())).await.unwrap();
    let by_client =
        account.query_order(&btcusdt(), &VenueOrderRef::Client(order.client_order_id.clone())).await.unwrap();
    assert_eq!(by_venue.venue_order_id, by_client.venue_order_id);
    assert_eq!(account.open_orders(&btcusdt()).await.unwrap().len(), 1);
    let locked = account.balances().await.unwrap().into_iter().find(|b| b.asset.as_str() == "USDT").unwrap().locked;
    assert_eq!(locked, dec("290"), "the quote is locked while the order rests");

    let canceled =
        account.cancel_order(&btcusdt(), &VenueOrderRef::Client(order.client_order_id.clone())).await.unwrap();
    assert_eq!(canceled.status, OrderStatus::Canceled);
    assert_eq!(canceled.client_order_id, "bw-test-limit-1");
    assert!(account.open_orders(&btcusdt()).await.unwrap().is_empty());
    let again = account.cancel_order(&btcusdt(), &VenueOrderRef::Client(order.client_order_id.clone())).await;
    assert!(matches!(again, Err(ExchangeError::CancelRejected(_))), "{again:?}");
    let missing = account.query_order(&btcusdt(), &VenueOrderRef::VenueId("999999".to_owned())).await;
    assert_eq!(missing, Err(ExchangeError::OrderNotFound));
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn a_market_order_fills_with_its_fee_and_shows_in_the_trades() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_client, account) = test_account(&sim);
    let order = OrderRequest {
        pair: btcusdt(),
        side: Side::Buy,
        order_type: OrderType::Market,
        amount: OrderAmount::Quote(Qty::new(dec("300")).unwrap()),
        client_order_id: ClientOrderId::parse("bw-test-market-1").unwrap(),
    };
    let filled = account.place_order(&order).await.unwrap();
    assert_eq!(filled.status, OrderStatus::Filled);
    assert_eq!(filled.executed_qty, dec("0.01"));
    assert_eq!(filled.cumulative_quote_qty, dec("300"));
    let fee: Decimal = filled.fills.iter().map(|f| f.commission).sum();
    assert_eq!(fee, dec("0.00001"), "0.1 % of the bought BTC");
    assert!(filled.fills.iter().all(|f| f.commission_asset.as_str() == "BTC"));

    let trades = account.my_trades(&btcusdt(), None).await.unwrap();
    assert_eq!(trades.len(), filled.fills.len());
    assert!(trades.iter().all(|t| t.side == Side::Buy && t.venue_order_id == filled.venue_order_id));
    let last = trades.last().unwrap().id.clone();
    assert!(account.my_trades(&btcusdt(), Some(&last)).await.unwrap().is_empty(), "fromId starts after the last seen");
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn filter_and_balance_refusals_are_named() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_client, account) = test_account(&sim);
    let off_step = account.place_order(&limit_buy("bw-test-lot", "29000", "0.000015")).await;
    assert!(matches!(&off_step, Err(ExchangeError::FilterFailure(msg)) if msg.contains("LOT_SIZE")), "{off_step:?}");
    let off_tick = account.place_order(&limit_buy("bw-test-tick", "29000.001", "0.01")).await;
    assert!(
        matches!(&off_tick, Err(ExchangeError::FilterFailure(msg)) if msg.contains("PRICE_FILTER")),
        "{off_tick:?}"
    );
    let too_big = account.place_order(&limit_buy("bw-test-poor", "29000", "1")).await;
    assert!(matches!(too_big, Err(ExchangeError::OrderRejected { code: -2010, .. })), "{too_big:?}");
    assert!(sim.orders(SimConfig::TEST_API_KEY).is_empty());
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn clock_skew_is_measured_and_a_stale_timestamp_is_resynced_once() {
    // EX-5: the venue's clock runs 30 s ahead; a 1 s receive window would refuse uncorrected requests.
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    sim.set_clock_offset_ms(30_000);
    let (client, account) = test_account(&sim);
    account.balances().await.unwrap();
    let skew = client.clock_skew_ms().unwrap();
    assert!((29_000..=31_000).contains(&skew), "measured {skew}");

    // The venue's clock jumps back 60 s after the measurement: the next request is refused with
    // -1021, the client measures again and the retry passes.
    sim.set_clock_offset_ms(-30_000);
    sim.clear_request_log();
    account.balances().await.unwrap();
    let skew = client.clock_skew_ms().unwrap();
    assert!((-31_000..=-29_000).contains(&skew), "re-measured {skew}");
    let log = sim.request_log();
    let accounts = log.iter().filter(|r| r.path == "/api/v3/account").count();
    let times = log.iter().filter(|r| r.path == "/api/v3/time").count();
    assert_eq!((accounts, times), (2, 1), "one refused request, one re-measure, one retry");
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn a_429_pauses_the_client_until_retry_after() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_client, account) = test_account(&sim);
    account.ticker(&btcusdt()).await.unwrap();
    sim.inject(Fault::RateLimited { retry_after_secs: 7 });
    assert_eq!(
        account.ticker(&btcusdt()).await,
        Err(ExchangeError::RateLimited { retry_after: Duration::from_secs(7) })
    );
    let seen = sim.request_log().len();
    let again = account.balances().await;
    assert!(matches!(again, Err(ExchangeError::RateLimited { .. })), "{again:?}");
    assert_eq!(sim.request_log().len(), seen, "refused locally: nothing was sent during the pause");
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn a_418_ban_is_reported_and_respected() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_client, account) = test_account(&sim);
    sim.inject(Fault::IpBanned { retry_after_secs: 120 });
    assert_eq!(
        account.ticker(&btcusdt()).await,
        Err(ExchangeError::IpBanned { retry_after: Duration::from_secs(120) })
    );
    let seen = sim.request_log().len();
    assert!(matches!(account.ticker(&btcusdt()).await, Err(ExchangeError::IpBanned { .. })));
    assert_eq!(sim.request_log().len(), seen);
}

#[tokio::test]
async fn the_client_side_weight_budget_refuses_before_the_venue_would() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let mut config = config(&sim);
    config.weight_budget = 30;
    let (_client, account) = account_with(config, SimConfig::TEST_API_KEY, SimConfig::TEST_API_SECRET);
    account.balances().await.unwrap(); // time (1) + account (20)
    let seen = sim.request_log().len();
    let refused = account.balances().await;
    assert!(matches!(refused, Err(ExchangeError::RateLimited { .. })), "{refused:?}");
    assert_eq!(sim.request_log().len(), seen);
}

#[tokio::test]
async fn a_placement_whose_answer_is_lost_is_found_by_lookup_and_never_resent() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_client, account) = test_account(&sim);
    for (n, reply) in
        [LostReply::ServiceUnavailable, LostReply::GatewayTimeout, LostReply::ConnectionDropped].into_iter().enumerate()
    {
        sim.clear_request_log();
        sim.inject(Fault::LostResponse { path: "/api/v3/order".to_owned(), reply });
        let id = format!("bw-test-lost-{n}");
        let report = account.place_order(&limit_buy(&id, "29000", "0.01")).await.unwrap();
        assert_eq!(report.client_order_id, id, "{reply:?}");
        assert_eq!(report.status, OrderStatus::New);
        assert_eq!(posts_of_order(&sim), 1, "{reply:?}: the order was sent once");
    }
    assert_eq!(sim.orders(SimConfig::TEST_API_KEY).len(), 3);
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn a_placement_that_never_reached_the_book_is_reported_not_placed_after_its_window() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_client, account) = test_account(&sim);
    sim.inject(Fault::ServerError { path: "/api/v3/order".to_owned() });
    let result = account.place_order(&limit_buy("bw-test-5xx", "29000", "0.01")).await;
    assert_eq!(result, Err(ExchangeError::NotPlaced));
    assert_eq!(posts_of_order(&sim), 1, "looked up, never resent");
    assert!(sim.orders(SimConfig::TEST_API_KEY).is_empty());
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn a_placement_that_times_out_is_resolved_by_lookup() {
    let mut sim_config = SimConfig::default_for_tests();
    sim_config.hang_for = Duration::from_secs(30);
    let sim = ExchangeSim::spawn(sim_config).await.unwrap();
    let mut config = config(&sim);
    config.request_timeout = Duration::from_millis(800);
    let (_client, account) = account_with(config, SimConfig::TEST_API_KEY, SimConfig::TEST_API_SECRET);
    // Performed, then the answer hangs past the client's timeout.
    sim.inject(Fault::LostResponse { path: "/api/v3/order".to_owned(), reply: LostReply::Hang });
    let report = account.place_order(&limit_buy("bw-test-hang", "29000", "0.01")).await.unwrap();
    assert_eq!(report.client_order_id, "bw-test-hang");
    // Held without being performed: not placed.
    sim.inject(Fault::Timeout { path: "/api/v3/order".to_owned() });
    let result = account.place_order(&limit_buy("bw-test-held", "29000", "0.01")).await;
    assert_eq!(result, Err(ExchangeError::NotPlaced));
    assert_eq!(posts_of_order(&sim), 2);
    assert_eq!(sim.orders(SimConfig::TEST_API_KEY).len(), 1);
    assert_only_allowlisted(&sim);
}

/// EX-4: our HMAC signatures agree with an independent implementation (`openssl dgst`) on the
/// published vector and on an order payload of our own.
#[test]
fn hmac_signatures_agree_with_openssl() {
    let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
    let ours = [
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
        "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.00125&price=31000.5&newClientOrderId=bw-x&recvWindow=5000&timestamp=1764000000000",
    ];
    for payload in ours {
        let mut child = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-hmac", secret, "-r"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("openssl is installed (Debian's openssl package)");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), payload.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let theirs = String::from_utf8(out.stdout).unwrap();
        let theirs = theirs.split_whitespace().next().unwrap();
        assert_eq!(sign::signature(KeyKind::Hmac, secret.as_bytes(), payload).unwrap(), theirs, "{payload}");
    }
}

#[tokio::test]
async fn candles_are_read_from_klines() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_client, account) = test_account(&sim);
    let minute = 60_000;
    let start = sim.server_time_ms() / minute * minute - 3 * minute;
    for (i, close) in ["30100", "30050.5", "30200"].into_iter().enumerate() {
        let candle = exchange_sim::Candle {
            open_time_ms: start + i64::try_from(i).unwrap() * minute,
            open: dec("30000"),
            high: dec("30300"),
            low: dec("29900"),
            close: dec(close),
            volume: dec("12.5"),
            quote_volume: dec("375000"),
            trades: 10,
            taker_buy_volume: dec("6"),
            taker_buy_quote_volume: dec("180000"),
        };
        sim.apply_candle("BTCUSDT", &candle).unwrap();
    }
    let candles = account.candles(&btcusdt(), 2).await.unwrap();
    assert_eq!(candles.len(), 2, "{candles:?}");
    assert_eq!(candles[1].close, dec("30200"));
    assert_eq!(candles[0].close, dec("30050.5"));
    assert!(candles[0].open_time < candles[1].open_time);
    assert_eq!(candles[1].volume, dec("12.5"));
}
