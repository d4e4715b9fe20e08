//! SIGNED request security: keys, HMAC and Ed25519 signatures, the timing rule, permissions.

use exchange_sim::{SimAccount, SimKey, SimPermissions};
use reqwest::Method;

use crate::{Client, KEY, SECRET, Signer, d, ed25519_pair, sim, sim_with};

#[tokio::test]
async fn a_good_hmac_signature_is_accepted_and_logged_as_signed() {
    let sim = sim().await;
    let reply = Client::hmac(&sim).signed(&sim, Method::GET, "/api/v3/account", "").await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["accountType"], "SPOT");
    let log = sim.request_log();
    assert_eq!(log.len(), 1);
    assert!(log[0].signed);
    assert_eq!(log[0].api_key.as_deref(), Some(KEY));
    assert_eq!(log[0].status, Some(200));

    sim.clear_request_log();
    Client::hmac(&sim).public("/api/v3/ping", "").await;
    let log = sim.request_log();
    assert_eq!((log.len(), log[0].path.as_str(), log[0].signed, log[0].status), (1, "/api/v3/ping", false, Some(200)));
}

#[tokio::test]
async fn a_wrong_hmac_signature_is_400_minus_1022() {
    let sim = sim().await;
    let client = Client::new(&sim, Some(KEY), Signer::Hmac("not the secret".to_owned()));
    let reply = client.signed(&sim, Method::GET, "/api/v3/account", "").await;
    assert_eq!((reply.status, reply.code()), (400, -1022));
    assert_eq!(reply.msg(), "Signature for this request is not valid.");
    assert!(!sim.request_log()[0].signed);
}

#[tokio::test]
async fn hmac_hex_is_case_insensitive_but_covers_every_byte_sent() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let query = client.sign_query("omitZeroBalances=true", sim.server_time_ms());
    let (unsigned, signature) = query.split_once("&signature=").expect("a signature");
    let upper = format!("{unsigned}&signature={}", signature.to_uppercase());
    let reply = client.send(Method::GET, "/api/v3/account", &upper, "").await.expect("a response");
    assert_eq!(reply.status, 200, "{}", reply.json);

    let tampered = query.replace("omitZeroBalances=true", "omitZeroBalances=false");
    let reply = client.send(Method::GET, "/api/v3/account", &tampered, "").await.expect("a response");
    assert_eq!(reply.code(), -1022);
}

#[tokio::test]
async fn the_payload_is_the_query_string_joined_to_the_body_without_separator() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC";
    let body_params = format!("quantity=0.01000&price=20000&timestamp={}", sim.server_time_ms());
    let signature = client.signer.sign(&format!("{query}{body_params}"));
    let body = format!("{body_params}&signature={signature}");
    let reply = client.send(Method::POST, "/api/v3/order", query, &body).await.expect("a response");
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["status"], "NEW");

    // Signing with an `&` between the parts is a different payload.
    let body_params = format!("quantity=0.01000&price=20000&timestamp={}", sim.server_time_ms());
    let signature = client.signer.sign(&format!("{query}&{body_params}"));
    let body = format!("{body_params}&signature={signature}");
    let reply = client.send(Method::POST, "/api/v3/order", query, &body).await.expect("a response");
    assert_eq!(reply.code(), -1022);
}

const ED_KEY: &str = "SimEd25519Key";

#[tokio::test]
async fn ed25519_signatures_verify_and_forgeries_do_not() {
    let (pair, public_key) = ed25519_pair(7);
    let sim = sim_with(|config| {
        config.accounts.push(SimAccount {
            api_key: ED_KEY.to_owned(),
            key: SimKey::Ed25519 { public_key },
            permissions: SimPermissions::trading(),
            balances: vec![("USDT".to_owned(), d("100"))],
        });
    })
    .await;
    let client = Client::new(&sim, Some(ED_KEY), Signer::Ed25519(pair));
    let reply = client.signed(&sim, Method::GET, "/api/v3/account", "omitZeroBalances=true").await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["balances"][0]["asset"], "USDT");

    let (other_pair, _) = ed25519_pair(8);
    let forger = Client::new(&sim, Some(ED_KEY), Signer::Ed25519(other_pair));
    let reply = forger.signed(&sim, Method::GET, "/api/v3/account", "").await;
    assert_eq!((reply.status, reply.code()), (400, -1022));

    // An HMAC signature does not pass for an Ed25519 key.
    let hmac = Client::new(&sim, Some(ED_KEY), Signer::Hmac(SECRET.to_owned()));
    assert_eq!(hmac.signed(&sim, Method::GET, "/api/v3/account", "").await.code(), -1022);
}

#[tokio::test]
async fn an_ed25519_key_can_be_configured_from_its_pem() {
    let (pair, public_key) = ed25519_pair(9);
    let mut der = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    der.extend_from_slice(&public_key);
    use base64::Engine as _;
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    );
    let key = SimKey::ed25519_from_pem(&pem).expect("an Ed25519 PEM");
    let sim = sim_with(|config| {
        config.accounts.push(SimAccount {
            api_key: ED_KEY.to_owned(),
            key,
            permissions: SimPermissions::trading(),
            balances: Vec::new(),
        });
    })
    .await;
    let client = Client::new(&sim, Some(ED_KEY), Signer::Ed25519(pair));
    assert_eq!(client.signed(&sim, Method::GET, "/api/v3/account", "").await.status, 200);
}

#[tokio::test]
async fn stale_and_future_timestamps_are_minus_1021() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let now = sim.server_time_ms();
    // Ten seconds old with the default recvWindow of 5000.
    let reply = client.signed_at(Method::GET, "/api/v3/account", "", now - 10_000).await;
    assert_eq!((reply.status, reply.code()), (400, -1021));
    assert_eq!(reply.msg(), "Timestamp for this request is outside of the recvWindow.");
    // The same age passes with a wider window.
    let reply = client.signed_at(Method::GET, "/api/v3/account", "recvWindow=20000", now - 10_000).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    // Five seconds ahead of the server.
    let reply = client.signed_at(Method::GET, "/api/v3/account", "", sim.server_time_ms() + 5_000).await;
    assert_eq!(reply.code(), -1021);
    assert_eq!(reply.msg(), "Timestamp for this request was 1000ms ahead of the server's time.");
    // recvWindow is capped at 60000.
    let reply = client.signed_at(Method::GET, "/api/v3/account", "recvWindow=60001", now).await;
    assert_eq!(reply.code(), -1102);
    assert_eq!(reply.msg(), "'recvWindow' contains unexpected value. Cannot be greater than 60000.");
}

#[tokio::test]
async fn the_clock_offset_moves_server_time_and_the_timing_rule_with_it() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let local_now = || {
        i64::try_from(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis(),
        )
        .expect("fits")
    };

    sim.set_clock_offset_ms(30_000);
    let before = local_now();
    let server_time = client.public("/api/v3/time", "").await.json["serverTime"].as_i64().expect("serverTime");
    let after = local_now();
    assert!(server_time >= before + 30_000 && server_time <= after + 30_000, "{server_time} vs {before}..{after}");

    // A client that trusts its own clock is now 30 s behind the server.
    let reply = client.signed_at(Method::GET, "/api/v3/account", "", local_now()).await;
    assert_eq!(reply.code(), -1021);
    // One that corrects by the measured skew passes.
    let skew = server_time - after;
    let reply = client.signed_at(Method::GET, "/api/v3/account", "", local_now() + skew).await;
    assert_eq!(reply.status, 200, "{}", reply.json);

    // A server behind the client rejects the client's timestamps as from the future.
    sim.set_clock_offset_ms(-30_000);
    assert_eq!(client.signed_at(Method::GET, "/api/v3/account", "", local_now()).await.code(), -1021);
}

#[tokio::test]
async fn keys_that_are_missing_malformed_unknown_or_revoked_are_refused() {
    let sim = sim().await;
    let signer = || Signer::Hmac(SECRET.to_owned());
    let cases = [
        (None, 401, -2014, "API-key format invalid."),
        (Some("not/a key"), 401, -2014, "API-key format invalid."),
        (Some("UnknownKey123"), 401, -2015, "Invalid API-key, IP, or permissions for action."),
    ];
    for (key, status, code, msg) in cases {
        let reply = Client::new(&sim, key, signer()).signed(&sim, Method::GET, "/api/v3/account", "").await;
        assert_eq!((reply.status, reply.code(), reply.msg()), (status, code, msg), "key {key:?}");
    }

    sim.revoke_key(KEY).expect("a known key");
    let reply = Client::hmac(&sim).signed(&sim, Method::GET, "/api/v3/account", "").await;
    assert_eq!((reply.status, reply.code()), (401, -2015));
    assert!(sim.revoke_key("UnknownKey123").is_err());
}

#[tokio::test]
async fn missing_timestamp_or_signature_is_minus_1102() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let signature = client.signer.sign("omitZeroBalances=true");
    let reply = client
        .send(Method::GET, "/api/v3/account", &format!("omitZeroBalances=true&signature={signature}"), "")
        .await
        .expect("a response");
    assert_eq!(
        (reply.code(), reply.msg()),
        (-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
    );

    let query = format!("timestamp={}", sim.server_time_ms());
    let reply = client.send(Method::GET, "/api/v3/account", &query, "").await.expect("a response");
    assert_eq!(
        (reply.code(), reply.msg()),
        (-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
    );
}

#[tokio::test]
async fn a_key_without_spot_trading_cannot_trade_but_can_read() {
    let sim = sim().await;
    sim.set_permissions(KEY, SimPermissions::read_only()).expect("a known key");
    let client = Client::hmac(&sim);
    let order = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01";
    let reply = client.order(&sim, order).await;
    assert_eq!((reply.status, reply.code()), (401, -2015));
    assert!(sim.orders(KEY).is_empty());
    assert_eq!(client.signed(&sim, Method::GET, "/api/v3/account", "").await.json["canTrade"], false);

    sim.set_permissions(KEY, SimPermissions::trading()).expect("a known key");
    assert_eq!(client.order(&sim, order).await.status, 200);
    assert_eq!(client.signed(&sim, Method::GET, "/api/v3/account", "").await.json["canTrade"], true);
}

#[tokio::test]
async fn a_key_without_reading_cannot_read_account_data() {
    let sim = sim().await;
    let permissions = SimPermissions { reading: false, ..SimPermissions::trading() };
    sim.set_permissions(KEY, permissions).expect("a known key");
    let reply = Client::hmac(&sim).signed(&sim, Method::GET, "/api/v3/account", "").await;
    assert_eq!(reply.code(), -2015);
}
