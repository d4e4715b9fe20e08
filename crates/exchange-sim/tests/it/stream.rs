//! User data streams: listen keys (`/api/v3/userDataStream`, the API key alone) and the WebSocket
//! `/ws/<listenKey>` carrying `executionReport`, `outboundAccountPosition` and `listenKeyExpired`.
//! Every wait is for the next message, with a timeout; nothing sleeps.

use std::sync::Arc;
use std::time::Duration;

use exchange_sim::{Candle, ExchangeSim, PricePath, SimAccount, SimKey, SimPermissions};
use futures_util::StreamExt as _;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{Client, KEY, Reply, Signer, d, sim, sim_with};

const OTHER_KEY: &str = "StreamOther01";
const OTHER_SECRET: &str = "stream-other-secret";
const T0: i64 = 1_700_000_040_000;
const MINUTE_MS: i64 = 60_000;
const USER_DATA_STREAM: &str = "/api/v3/userDataStream";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Every field Binance documents for an `executionReport` of a plain order.
const REPORT_FIELDS: [&str; 34] = [
    "e", "E", "s", "c", "S", "o", "f", "q", "p", "P", "F", "g", "C", "x", "X", "r", "i", "l", "z", "L", "n", "N", "T",
    "t", "I", "w", "m", "M", "O", "Z", "Y", "Q", "W", "V",
];

async fn two_accounts() -> ExchangeSim {
    sim_with(|config| {
        config.frozen_clock_ms = Some(T0);
        config.accounts.push(SimAccount {
            api_key: OTHER_KEY.to_owned(),
            key: SimKey::Hmac { secret: OTHER_SECRET.to_owned() },
            permissions: SimPermissions::trading(),
            balances: vec![("USDT".to_owned(), Decimal::from(1_000))],
        });
    })
    .await
}

fn other(sim: &ExchangeSim) -> Client {
    Client::new(sim, Some(OTHER_KEY), Signer::Hmac(OTHER_SECRET.to_owned()))
}

async fn start(client: &Client) -> Reply {
    client.send(Method::POST, USER_DATA_STREAM, "", "").await.expect("a response")
}

async fn listen_key(client: &Client) -> String {
    let reply = start(client).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["listenKey"].as_str().expect("a listen key").to_owned()
}

async fn keep_alive(client: &Client, listen_key: &str) -> Reply {
    client.send(Method::PUT, USER_DATA_STREAM, &format!("listenKey={listen_key}"), "").await.expect("a response")
}

async fn close(client: &Client, listen_key: &str) -> Reply {
    client.send(Method::DELETE, USER_DATA_STREAM, &format!("listenKey={listen_key}"), "").await.expect("a response")
}

async fn connect(sim: &ExchangeSim, listen_key: &str) -> Ws {
    let url = format!("ws://{}/ws/{listen_key}", sim.local_addr());
    let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("the stream opens");
    ws
}

/// The next frame that is not a ping or pong, within ten seconds.
async fn next_frame(ws: &mut Ws) -> Option<Message> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame within 10 s");
        match frame {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(message)) => return Some(message),
            Some(Err(_)) | None => return None,
        }
    }
}

/// The next event, as JSON.
async fn next_event(ws: &mut Ws) -> Value {
    match next_frame(ws).await {
        Some(Message::Text(text)) => serde_json::from_str(text.as_str()).expect("a JSON event"),
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Asserts that the connection ends (a close frame or the end of the stream) with no event first.
async fn assert_closed(ws: &mut Ws) {
    match next_frame(ws).await {
        Some(Message::Close(_)) | None => {}
        other => panic!("expected the stream to close, got {other:?}"),
    }
}

fn limit(side: &str, qty: &str, price: &str, client_order_id: &str) -> String {
    format!(
        "symbol=BTCUSDT&side={side}&type=LIMIT&timeInForce=GTC&quantity={qty}&price={price}&newClientOrderId={client_order_id}"
    )
}

fn fields(event: &Value) -> Vec<(&str, Value)> {
    let get = |name: &'static str| (name, event[name].clone());
    vec![get("e"), get("s"), get("c"), get("C"), get("S"), get("o"), get("f"), get("x"), get("X"), get("r")]
}

fn balances(event: &Value) -> Value {
    assert_eq!(event["e"], "outboundAccountPosition", "{event}");
    event["B"].clone()
}

#[tokio::test]
async fn listen_keys_take_the_api_key_alone_and_are_kept_alive_and_closed() {
    let sim = two_accounts().await;
    let alice = Client::hmac(&sim);

    let missing = Client::new(&sim, None, Signer::Hmac(String::new()));
    let reply = start(&missing).await;
    assert_eq!((reply.status, reply.code()), (401, -2014));
    let unknown = Client::new(&sim, Some("NoSuchKey42"), Signer::Hmac(String::new()));
    assert_eq!(start(&unknown).await.code(), -2015);

    let reply = start(&alice).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.header("x-mbx-used-weight-1m"), Some("6"), "three requests of weight 2, refused ones too");
    let key = reply.json["listenKey"].as_str().expect("a listen key").to_owned();
    assert_eq!(reply.json.as_object().map(|object| object.len()), Some(1), "{}", reply.json);
    assert_eq!(key.len(), 60);
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
    let record = sim.request_log().into_iter().rfind(|record| record.path == USER_DATA_STREAM).expect("logged");
    assert!(!record.signed, "no signature is asked for");
    assert_eq!(listen_key(&alice).await, key, "the live key again");

    let kept = keep_alive(&alice, &key).await;
    assert_eq!((kept.status, kept.json.clone()), (200, json!({})));
    let reply = alice.send(Method::PUT, USER_DATA_STREAM, "", "").await.expect("a response");
    assert_eq!(reply.code(), -1102);
    let reply = keep_alive(&alice, &"x".repeat(60)).await;
    assert_eq!((reply.status, reply.code(), reply.msg()), (400, -1125, "This listenKey does not exist."));
    assert_eq!(keep_alive(&other(&sim), &key).await.code(), -1125, "another account's key does not exist for it");
    assert_eq!(close(&other(&sim), &key).await.code(), -1125);
    let bob_key = listen_key(&other(&sim)).await;
    assert_ne!(bob_key, key);

    let closed = close(&alice, &key).await;
    assert_eq!((closed.status, closed.json.clone()), (200, json!({})));
    assert_eq!(keep_alive(&alice, &key).await.code(), -1125);
    assert_eq!(close(&alice, &key).await.code(), -1125);
    assert_ne!(listen_key(&alice).await, key, "a new key after the close");
}

#[tokio::test]
async fn an_unknown_or_closed_listen_key_is_refused_before_the_upgrade() {
    let sim = sim().await;
    let alice = Client::hmac(&sim);
    let key = listen_key(&alice).await;
    assert_eq!(close(&alice, &key).await.status, 200);
    for refused in [key, "UnknownListenKey0000000000000000000000000000000000000000000".to_owned()] {
        let url = format!("ws://{}/ws/{refused}", sim.local_addr());
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 400);
                let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).expect("JSON");
                assert_eq!(body, json!({"code": -1125, "msg": "This listenKey does not exist."}));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_resting_order_is_reported_new_filled_and_canceled_each_with_its_balances() {
    let sim = two_accounts().await;
    let alice = Client::hmac(&sim);
    let mut ws = connect(&sim, &listen_key(&alice).await).await;

    let placed = alice.order(&sim, &limit("BUY", "0.10000", "25000.00", "ws-1")).await;
    assert_eq!(placed.status, 200, "{}", placed.json);
    let order_id = placed.json["orderId"].as_u64().expect("an order id");
    let new = next_event(&mut ws).await;
    for field in REPORT_FIELDS {
        assert!(new.get(field).is_some(), "{field} missing from {new}");
    }
    assert_eq!(
        fields(&new),
        fields(&json!({"e": "executionReport", "s": "BTCUSDT", "c": "ws-1", "C": "", "S": "BUY", "o": "LIMIT",
            "f": "GTC", "x": "NEW", "X": "NEW", "r": "NONE"}))
    );
    assert_eq!(new["i"], order_id);
    assert_eq!((new["q"].clone(), new["p"].clone()), (json!("0.10000000"), json!("25000.00000000")));
    assert_eq!(
        (new["P"].clone(), new["F"].clone(), new["g"].clone()),
        (json!("0.00000000"), json!("0.00000000"), json!(-1))
    );
    assert_eq!(
        (new["l"].clone(), new["z"].clone(), new["L"].clone()),
        (json!("0.00000000"), json!("0.00000000"), json!("0.00000000"))
    );
    assert_eq!((new["n"].clone(), new["N"].clone(), new["t"].clone()), (json!("0"), Value::Null, json!(-1)));
    assert_eq!((new["w"].clone(), new["m"].clone(), new["V"].clone()), (json!(true), json!(false), json!("NONE")));
    assert_eq!(
        (new["Z"].clone(), new["Y"].clone(), new["Q"].clone()),
        (json!("0.00000000"), json!("0.00000000"), json!("0.00000000"))
    );
    assert_eq!(
        (new["E"].clone(), new["T"].clone(), new["O"].clone(), new["W"].clone()),
        (json!(T0), json!(T0), json!(T0), json!(T0))
    );
    assert_eq!(placed.json["transactTime"], new["T"]);
    let position = next_event(&mut ws).await;
    assert_eq!((position["E"].clone(), position["u"].clone()), (json!(T0), json!(T0)));
    assert_eq!(balances(&position), json!([{"a": "USDT", "f": "7500.00000000", "l": "2500.00000000"}]));

    sim.advance_clock_ms(1_000);
    assert_eq!(sim.set_price("BTCUSDT", d("24000")), Ok(1));
    let filled = next_event(&mut ws).await;
    let trade = sim.trades(KEY).pop().expect("a trade");
    assert_eq!(
        (filled["x"].clone(), filled["X"].clone(), filled["i"].clone()),
        (json!("TRADE"), json!("FILLED"), json!(order_id))
    );
    assert_eq!(
        (filled["l"].clone(), filled["L"].clone(), filled["z"].clone()),
        (json!("0.10000000"), json!("25000.00000000"), json!("0.10000000"))
    );
    assert_eq!((filled["n"].clone(), filled["N"].clone()), (json!("0.00010000"), json!("BTC")));
    assert_eq!(
        (filled["t"].clone(), filled["m"].clone(), filled["w"].clone()),
        (json!(trade.id), json!(true), json!(false))
    );
    assert_eq!((filled["Z"].clone(), filled["Y"].clone()), (json!("2500.00000000"), json!("2500.00000000")));
    assert_eq!(
        (filled["T"].clone(), filled["E"].clone(), filled["O"].clone()),
        (json!(T0 + 1_000), json!(T0 + 1_000), json!(T0))
    );
    assert_eq!(
        balances(&next_event(&mut ws).await),
        json!([{"a": "BTC", "f": "0.59990000", "l": "0.00000000"}, {"a": "USDT", "f": "7500.00000000", "l": "0.00000000"}])
    );

    let placed = alice.order(&sim, &limit("BUY", "0.10000", "20000.00", "ws-2")).await;
    assert_eq!(next_event(&mut ws).await["c"], "ws-2");
    assert_eq!(
        balances(&next_event(&mut ws).await),
        json!([{"a": "USDT", "f": "5500.00000000", "l": "2000.00000000"}])
    );
    let canceled = alice
        .signed(
            &sim,
            Method::DELETE,
            "/api/v3/order",
            "symbol=BTCUSDT&origClientOrderId=ws-2&newClientOrderId=cancel-2",
        )
        .await;
    assert_eq!(canceled.status, 200, "{}", canceled.json);
    let report = next_event(&mut ws).await;
    assert_eq!(
        fields(&report),
        fields(&json!({"e": "executionReport", "s": "BTCUSDT", "c": "cancel-2", "C": "ws-2", "S": "BUY", "o": "LIMIT",
            "f": "GTC", "x": "CANCELED", "X": "CANCELED", "r": "NONE"}))
    );
    assert_eq!(
        (report["i"].clone(), report["w"].clone(), report["z"].clone()),
        (placed.json["orderId"].clone(), json!(false), json!("0.00000000"))
    );
    assert_eq!(balances(&next_event(&mut ws).await), json!([{"a": "USDT", "f": "7500.00000000", "l": "0.00000000"}]));
}

#[tokio::test]
async fn market_ioc_and_partial_executions_have_their_reports() {
    let sim = two_accounts().await;
    let alice = Client::hmac(&sim);
    let mut ws = connect(&sim, &listen_key(&alice).await).await;

    let market = alice.order(&sim, "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.10000").await;
    assert_eq!(market.status, 200, "{}", market.json);
    let new = next_event(&mut ws).await;
    assert_eq!((new["x"].clone(), new["o"].clone(), new["w"].clone()), (json!("NEW"), json!("MARKET"), json!(false)));
    assert!(new.get("W").is_none(), "a market order is never on the book: {new}");
    let trade = next_event(&mut ws).await;
    assert_eq!(
        (trade["x"].clone(), trade["X"].clone(), trade["m"].clone()),
        (json!("TRADE"), json!("FILLED"), json!(false))
    );
    assert_eq!(
        (trade["L"].clone(), trade["n"].clone(), trade["N"].clone()),
        (json!("30000.00000000"), json!("3.00000000"), json!("USDT"))
    );
    assert_eq!(
        balances(&next_event(&mut ws).await),
        json!([{"a": "BTC", "f": "0.40000000", "l": "0.00000000"}, {"a": "USDT", "f": "12997.00000000", "l": "0.00000000"}]),
        "one position after the placement and its fill"
    );

    let ioc =
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=IOC&quantity=0.10000&price=20000.00&newClientOrderId=ioc-1";
    assert_eq!(alice.order(&sim, ioc).await.json["status"], "EXPIRED");
    assert_eq!((next_event(&mut ws).await["x"].clone()), json!("NEW"));
    let expired = next_event(&mut ws).await;
    assert_eq!(
        (expired["x"].clone(), expired["X"].clone(), expired["c"].clone(), expired["C"].clone()),
        (json!("EXPIRED"), json!("EXPIRED"), json!("ioc-1"), json!(""))
    );
    assert_eq!(balances(&next_event(&mut ws).await), json!([{"a": "USDT", "f": "12997.00000000", "l": "0.00000000"}]));

    alice.order(&sim, &limit("BUY", "0.20000", "25000.00", "part-1")).await;
    assert_eq!(next_event(&mut ws).await["c"], "part-1");
    next_event(&mut ws).await;
    let candle = Candle::new(T0, d("30000"), d("30000"), d("24000"), d("29000"), d("0.05"));
    assert_eq!(sim.apply_candle("BTCUSDT", &candle), Ok(1));
    let partial = next_event(&mut ws).await;
    assert_eq!(
        (partial["x"].clone(), partial["X"].clone(), partial["w"].clone()),
        (json!("TRADE"), json!("PARTIALLY_FILLED"), json!(true))
    );
    assert_eq!(
        (partial["l"].clone(), partial["z"].clone(), partial["Y"].clone()),
        (json!("0.05000000"), json!("0.05000000"), json!("1250.00000000"))
    );
    assert_eq!(balances(&next_event(&mut ws).await)[0]["a"], "BTC");
}

#[tokio::test]
async fn an_account_hears_only_its_own_orders_on_each_of_its_connections() {
    let sim = two_accounts().await;
    let (alice, bob) = (Client::hmac(&sim), other(&sim));
    let alice_key = listen_key(&alice).await;
    let (mut first, mut second) = (connect(&sim, &alice_key).await, connect(&sim, &alice_key).await);
    let mut bobs = connect(&sim, &listen_key(&bob).await).await;

    assert_eq!(bob.order(&sim, &limit("BUY", "0.01000", "20000.00", "bob-1")).await.status, 200);
    assert_eq!(alice.order(&sim, &limit("BUY", "0.01000", "20000.00", "alice-1")).await.status, 200);
    for ws in [&mut first, &mut second] {
        assert_eq!(next_event(ws).await["c"], "alice-1", "Bob's order, placed first, is not on Alice's stream");
        assert_eq!(balances(&next_event(ws).await)[0]["f"], "9800.00000000");
    }
    assert_eq!(next_event(&mut bobs).await["c"], "bob-1");
    assert_eq!(
        balances(&next_event(&mut bobs).await),
        json!([{"a": "USDT", "f": "800.00000000", "l": "200.00000000"}])
    );
    assert_eq!(sim.set_price("BTCUSDT", d("19000")), Ok(2));
    assert_eq!(next_event(&mut first).await["c"], "alice-1");
    assert_eq!(next_event(&mut bobs).await["c"], "bob-1");
}

#[tokio::test]
async fn a_key_expires_60_minutes_after_its_last_keepalive_and_its_connections_hear_it() {
    let sim = two_accounts().await;
    let alice = Client::hmac(&sim);
    let key = listen_key(&alice).await;
    let mut ws = connect(&sim, &key).await;

    sim.advance_clock_ms(59 * MINUTE_MS);
    assert_eq!(keep_alive(&alice, &key).await.status, 200);
    sim.advance_clock_ms(59 * MINUTE_MS);
    assert_eq!(alice.order(&sim, &limit("BUY", "0.01000", "20000.00", "late-1")).await.status, 200);
    assert_eq!(next_event(&mut ws).await["c"], "late-1", "alive 118 minutes after its creation");
    next_event(&mut ws).await;

    // Due now; the open connection notices within a fraction of a second, without any request.
    sim.advance_clock_ms(MINUTE_MS);
    let expired = next_event(&mut ws).await;
    let now = T0 + 119 * MINUTE_MS;
    assert_eq!(expired, json!({"e": "listenKeyExpired", "E": now.to_string(), "listenKey": key}));
    assert_closed(&mut ws).await;
    assert_eq!(keep_alive(&alice, &key).await.code(), -1125);
    let fresh = listen_key(&alice).await;
    assert_ne!(fresh, key, "a new key after expiry");
    let mut ws = connect(&sim, &fresh).await;
    alice.signed(&sim, Method::DELETE, "/api/v3/order", "symbol=BTCUSDT&origClientOrderId=late-1").await;
    assert_eq!(next_event(&mut ws).await["x"], "CANCELED");
}

#[tokio::test]
async fn closing_a_key_closes_its_connections_without_listen_key_expired() {
    let sim = two_accounts().await;
    let alice = Client::hmac(&sim);
    let key = listen_key(&alice).await;
    let mut ws = connect(&sim, &key).await;
    assert_eq!(close(&alice, &key).await.status, 200);
    assert_closed(&mut ws).await;
    assert_eq!(alice.order(&sim, &limit("BUY", "0.01000", "20000.00", "unheard")).await.status, 200);
}

#[tokio::test]
async fn a_fill_the_clock_brings_is_pushed_without_any_request() {
    let csv = "1624559520000,34970.90,35047.03,34800.01,35047.03,1.5\n";
    let candles: Arc<[Candle]> = Candle::parse_csv(csv).expect("a kline file").into();
    let sim = sim_with(|config| {
        config.frozen_clock_ms = Some(T0);
        config.step_every = Duration::from_secs(1);
        config.symbols[0].path = PricePath::Replay { candles };
    })
    .await;
    let alice = Client::hmac(&sim);
    let mut ws = connect(&sim, &listen_key(&alice).await).await;
    assert_eq!(alice.order(&sim, &limit("SELL", "0.10000", "35040.00", "walk-1")).await.status, 200);
    assert_eq!(next_event(&mut ws).await["x"], "NEW");
    next_event(&mut ws).await;

    // The candle falls due; only the open connection's own look at the state takes it.
    sim.advance_clock_ms(1_000);
    let filled = next_event(&mut ws).await;
    assert_eq!(
        (filled["x"].clone(), filled["X"].clone(), filled["c"].clone()),
        (json!("TRADE"), json!("FILLED"), json!("walk-1"))
    );
    assert_eq!((filled["L"].clone(), filled["T"].clone()), (json!("35040.00000000"), json!(T0 + 1_000)));
}
