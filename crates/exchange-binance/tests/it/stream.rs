//! The user data stream over a real WebSocket against `exchange-sim`: order updates as the venue
//! pushes them, the end of the stream, the keepalive, and the stream URL. Every wait is for the
//! next event with a timeout; the listen-key requests must go out unsigned.

use std::time::Duration;

use domain::{Decimal, OrderStatus, Side};
use exchange::{Exchange, ExchangeError, OrderEvent, OrderEventStream, VenueOrderRef};
use exchange_binance::{BinanceClient, BinanceConfig, sign};
use exchange_sim::{Candle, ExchangeSim, SimConfig};
use futures_util::StreamExt as _;
use tokio::io::AsyncReadExt as _;

use crate::{WallClock, account_with, assert_only_allowlisted, btcusdt, config, dec, limit_buy, test_account};

const MINUTE_MS: i64 = 60_000;

/// The next item of the stream, within ten seconds.
async fn next(events: &mut OrderEventStream) -> Option<Result<OrderEvent, ExchangeError>> {
    tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("an event within 10 s")
}

async fn next_event(events: &mut OrderEventStream) -> OrderEvent {
    match next(events).await {
        Some(Ok(event)) => event,
        other => panic!("expected an order event, got {other:?}"),
    }
}

/// The stream ends with exactly one error, then nothing.
async fn assert_ends_with_an_error(events: &mut OrderEventStream) -> ExchangeError {
    let err = match next(events).await {
        Some(Err(err)) => err,
        other => panic!("expected the stream to end with an error, got {other:?}"),
    };
    assert!(next(events).await.is_none(), "nothing after the error");
    err
}

/// The USER_STREAM requests the simulator saw carried the API key alone: no timestamp, no
/// signature, none verified as signed. Returns how many there were.
fn assert_user_stream_unsigned(sim: &ExchangeSim) -> usize {
    let log = sim.request_log();
    let user_stream: Vec<_> = log.iter().filter(|r| r.path == sign::USER_DATA_STREAM).collect();
    for request in &user_stream {
        assert!(
            sign::USER_STREAM.contains(&(request.method.as_str(), request.path.as_str())),
            "{} {}",
            request.method,
            request.path
        );
        assert!(!request.signed, "{} {} was signed", request.method, request.path);
        assert!(!request.query.contains("signature=") && !request.query.contains("timestamp="), "{}", request.query);
        assert_eq!(request.api_key.as_deref(), Some(SimConfig::TEST_API_KEY));
        assert_eq!(request.status, Some(200), "{} {}", request.method, request.path);
    }
    user_stream.len()
}

/// A one-minute candle that dips to 28,900 from 30,000 with `volume` traded.
fn dip(open_time_ms: i64, volume: &str) -> Candle {
    Candle::new(open_time_ms, dec("30000"), dec("30000"), dec("28900"), dec("30000"), dec(volume))
}

#[tokio::test]
async fn an_order_filled_in_part_then_in_full_is_pushed_with_its_fills_in_order() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_client, account) = test_account(&sim);
    let mut events = account.order_events().await.unwrap().expect("Binance has a user data stream");

    let placed = account.place_order(&limit_buy("bw-stream-fill", "29000", "0.01")).await.unwrap();
    let new = next_event(&mut events).await;
    assert_eq!(
        (new.venue_symbol.as_str(), new.client_order_id.as_str(), new.venue_order_id.as_str()),
        ("BTCUSDT", "bw-stream-fill", placed.venue_order_id.as_str())
    );
    assert_eq!((new.side, new.status), (Side::Buy, OrderStatus::New));
    assert_eq!((new.price, new.orig_qty, new.executed_qty), (dec("29000"), dec("0.01"), Decimal::ZERO));
    assert_eq!(new.last_fill, None);

    // A candle reaches the order with less volume than it asks for: a partial fill.
    let minute = sim.server_time_ms() / MINUTE_MS * MINUTE_MS;
    assert_eq!(sim.apply_candle("BTCUSDT", &dip(minute, "0.004")).unwrap(), 1);
    let partial = next_event(&mut events).await;
    assert_eq!((partial.client_order_id.as_str(), partial.status), ("bw-stream-fill", OrderStatus::PartiallyFilled));
    assert_eq!((partial.executed_qty, partial.cumulative_quote_qty), (dec("0.004"), dec("116")));
    let fill = partial.last_fill.clone().expect("the partial fill");
    assert_eq!((fill.price, fill.qty), (dec("29000"), dec("0.004")));
    assert_eq!((fill.commission, fill.commission_asset.as_str()), (dec("0.000004"), "BTC"), "0.1 % of the BTC bought");
    let first_trade = fill.trade_id.expect("a trade id");
    assert!(partial.at >= new.at);

    // The next candle fills the rest.
    assert_eq!(sim.apply_candle("BTCUSDT", &dip(minute + MINUTE_MS, "1")).unwrap(), 1);
    let filled = next_event(&mut events).await;
    assert_eq!((filled.client_order_id.as_str(), filled.status), ("bw-stream-fill", OrderStatus::Filled));
    assert_eq!((filled.executed_qty, filled.cumulative_quote_qty), (dec("0.01"), dec("290")));
    let fill = filled.last_fill.clone().expect("the last fill");
    assert_eq!((fill.price, fill.qty, fill.commission), (dec("29000"), dec("0.006"), dec("0.000006")));
    assert_ne!(fill.trade_id.as_deref(), Some(first_trade.as_str()));

    // The events agree with what the venue answers when asked.
    let queried =
        account.query_order(&btcusdt(), &VenueOrderRef::VenueId(placed.venue_order_id.clone())).await.unwrap();
    assert_eq!((queried.status, queried.executed_qty), (filled.status, filled.executed_qty));
    let trades = account.my_trades(&btcusdt(), None).await.unwrap();
    let fills: Vec<(Decimal, Decimal)> = trades.iter().map(|t| (t.qty, t.commission)).collect();
    assert_eq!(fills, vec![(dec("0.004"), dec("0.000004")), (dec("0.006"), dec("0.000006"))]);

    assert_eq!(assert_user_stream_unsigned(&sim), 1, "one listen key request");
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn a_cancel_is_pushed_with_the_original_client_order_id() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_client, account) = test_account(&sim);
    let mut events = account.order_events().await.unwrap().unwrap();
    let order = limit_buy("bw-stream-cancel", "29000", "0.01");
    account.place_order(&order).await.unwrap();
    assert_eq!(next_event(&mut events).await.status, OrderStatus::New);

    let canceled =
        account.cancel_order(&btcusdt(), &VenueOrderRef::Client(order.client_order_id.clone())).await.unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(event.status, OrderStatus::Canceled);
    assert_eq!(event.client_order_id, "bw-stream-cancel", "the order's id, not the cancel request's");
    assert_eq!(event.venue_order_id, canceled.venue_order_id);
    assert_eq!((event.executed_qty, event.last_fill), (Decimal::ZERO, None));

    // An order canceled by its venue id is reported the same way.
    let other = account.place_order(&limit_buy("bw-stream-cancel-2", "28000", "0.01")).await.unwrap();
    assert_eq!(next_event(&mut events).await.client_order_id, "bw-stream-cancel-2");
    account.cancel_order(&btcusdt(), &VenueOrderRef::VenueId(other.venue_order_id.clone())).await.unwrap();
    let event = next_event(&mut events).await;
    assert_eq!((event.status, event.client_order_id.as_str()), (OrderStatus::Canceled, "bw-stream-cancel-2"));
    assert_user_stream_unsigned(&sim);
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn the_stream_ends_with_one_error_when_the_venue_goes_away() {
    let mut sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_client, account) = account_with(config(&sim), SimConfig::TEST_API_KEY, SimConfig::TEST_API_SECRET);
    let mut events = account.order_events().await.unwrap().unwrap();
    account.place_order(&limit_buy("bw-stream-stop", "29000", "0.01")).await.unwrap();
    assert_eq!(next_event(&mut events).await.client_order_id, "bw-stream-stop");
    assert_user_stream_unsigned(&sim);
    assert_only_allowlisted(&sim);

    sim.stop().unwrap();
    let err = assert_ends_with_an_error(&mut events).await;
    assert!(matches!(err, ExchangeError::Unreachable(_)), "{err:?}");
    assert!(err.is_transient(), "the caller reconnects");
    // Reconnecting to a venue that is gone fails at once instead of hanging.
    assert!(matches!(account.order_events().await, Err(ExchangeError::Unreachable(_))));
}

#[tokio::test]
async fn the_stream_ends_with_one_error_when_the_listen_key_expires() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let (_client, account) = test_account(&sim);
    let mut events = account.order_events().await.unwrap().unwrap();
    account.place_order(&limit_buy("bw-stream-expiry", "29000", "0.01")).await.unwrap();
    assert_eq!(next_event(&mut events).await.client_order_id, "bw-stream-expiry");

    // A key lives 60 minutes after its last keepalive on the venue's clock; the keepalive is 30
    // minutes away on ours, so the key expires and the venue says so (`listenKeyExpired`).
    sim.advance_clock_ms(61 * MINUTE_MS);
    let err = assert_ends_with_an_error(&mut events).await;
    assert!(matches!(&err, ExchangeError::Unreachable(why) if why.contains("expired")), "{err:?}");

    // A new stream gets a new key and works.
    let mut events = account.order_events().await.unwrap().unwrap();
    account.place_order(&limit_buy("bw-stream-again", "29000", "0.01")).await.unwrap();
    assert_eq!(next_event(&mut events).await.client_order_id, "bw-stream-again");
    assert_eq!(assert_user_stream_unsigned(&sim), 2, "a listen key request per stream");
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn the_listen_key_is_kept_alive_unsigned_while_the_stream_lives() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let mut config = config(&sim);
    config.listen_key_keepalive = Duration::from_millis(50);
    let (_client, account) = account_with(config, SimConfig::TEST_API_KEY, SimConfig::TEST_API_SECRET);
    let mut events = account.order_events().await.unwrap().unwrap();
    let keepalives = || {
        sim.request_log()
            .iter()
            .filter(|r| r.method == "PUT" && r.path == sign::USER_DATA_STREAM && r.status == Some(200))
            .count()
    };
    let wait_for_keepalives = |at_least: usize| async move {
        tokio::time::timeout(Duration::from_secs(10), async {
            while keepalives() < at_least {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("keepalives within 10 s");
    };

    // 40 minutes pass on the venue's clock, a keepalive lands, 40 more pass: 80 minutes after the
    // key was made, it is alive because it was kept alive. The keepalives go one at a time, so the
    // second to land after the clock moved was sent after it.
    wait_for_keepalives(1).await;
    sim.advance_clock_ms(40 * MINUTE_MS);
    wait_for_keepalives(keepalives() + 2).await;
    sim.advance_clock_ms(40 * MINUTE_MS);
    wait_for_keepalives(keepalives() + 1).await;
    account.place_order(&limit_buy("bw-stream-kept", "29000", "0.01")).await.unwrap();
    assert_eq!(next_event(&mut events).await.client_order_id, "bw-stream-kept");
    let log = sim.request_log();
    let put = log.iter().rfind(|r| r.method == "PUT" && r.path == sign::USER_DATA_STREAM).unwrap();
    assert!(put.query.starts_with("listenKey=") && !put.query.contains('&'), "the listen key alone");
    assert!(assert_user_stream_unsigned(&sim) >= 4, "one POST and the keepalives");

    // Dropping the stream stops the keepalive: at most one already under way still lands.
    drop(events);
    let at_drop = keepalives();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(keepalives() <= at_drop + 1, "{} keepalives after the stream was dropped", keepalives() - at_drop);
    assert_only_allowlisted(&sim);
}

#[tokio::test]
async fn a_refused_keepalive_ends_the_stream() {
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let mut config = config(&sim);
    config.listen_key_keepalive = Duration::from_millis(100);
    let (_client, account) = account_with(config, SimConfig::TEST_API_KEY, SimConfig::TEST_API_SECRET);
    let mut events = account.order_events().await.unwrap().unwrap();
    // The key is revoked: the next keepalive is refused for the key, and the stream ends.
    sim.revoke_key(SimConfig::TEST_API_KEY).unwrap();
    let err = assert_ends_with_an_error(&mut events).await;
    assert!(err.is_key_rejected(), "{err:?}");
    assert_only_allowlisted(&sim);
}

#[test]
fn the_stream_url_is_derived_from_the_rest_url_and_plain_ws_is_for_loopback_only() {
    let derived = |rest: &str| BinanceConfig::new(rest.parse().unwrap()).stream_base_url();
    // Binance's REST hosts → Binance's stream host.
    for rest in ["https://api.binance.com", "https://api.binance.com/", "https://api3.binance.com"] {
        assert_eq!(derived(rest).unwrap().as_str(), "wss://stream.binance.com:9443/", "{rest}");
    }
    // Elsewhere the REST origin, http → ws and https → wss (how exchange-sim serves it).
    assert_eq!(derived("http://127.0.0.1:8123").unwrap().as_str(), "ws://127.0.0.1:8123/");
    assert_eq!(derived("http://localhost:8123/api").unwrap().as_str(), "ws://localhost:8123/");
    assert_eq!(derived("http://[::1]:8123").unwrap().as_str(), "ws://[::1]:8123/");
    assert_eq!(derived("https://paper.example.org").unwrap().as_str(), "wss://paper.example.org/");
    // Plain WebSocket only to loopback.
    for refused in ["http://10.0.0.5:8123", "http://paper.example.org"] {
        assert!(matches!(derived(refused), Err(ExchangeError::InvalidRequest { code: 0, .. })), "{refused}");
        let config = BinanceConfig::new(refused.parse().unwrap());
        assert!(BinanceClient::new(config, std::sync::Arc::new(WallClock)).is_err(), "{refused}");
    }
    // An explicit stream URL is checked by the same rule.
    let explicit = |rest: &str, stream: &str| {
        let mut config = BinanceConfig::new(rest.parse().unwrap());
        config.stream_url = Some(stream.parse().unwrap());
        config.stream_base_url()
    };
    assert_eq!(
        explicit("https://api.binance.com", "wss://stream.binance.com:443").unwrap().as_str(),
        "wss://stream.binance.com/"
    );
    assert!(explicit("http://127.0.0.1:1", "ws://127.0.0.1:2").is_ok());
    for refused in [
        "ws://stream.binance.com:9443",
        "https://stream.binance.com",
        "wss://user:pw@stream.binance.com",
        "wss://stream.binance.com/?x=1",
    ] {
        assert!(explicit("https://api.binance.com", refused).is_err(), "{refused}");
    }
}

#[tokio::test]
async fn a_wss_stream_url_is_spoken_to_in_tls() {
    // A loopback listener in place of a TLS server: the first bytes it hears must be a TLS
    // handshake record (content type 22), not an HTTP upgrade in the clear.
    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let heard = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut first = [0_u8; 3];
        socket.read_exact(&mut first).await.unwrap();
        first
    });
    let mut config = config(&sim);
    config.stream_url = Some(format!("wss://127.0.0.1:{port}").parse().unwrap());
    let (_client, account) = account_with(config, SimConfig::TEST_API_KEY, SimConfig::TEST_API_SECRET);
    let result = account.order_events().await;
    assert!(matches!(result, Err(ExchangeError::Unreachable(_))), "{result:?}");
    let first = heard.await.unwrap();
    assert_eq!(first, [0x16, 0x03, 0x01], "a TLS handshake record");
    assert_user_stream_unsigned(&sim);
    assert_only_allowlisted(&sim);
}
