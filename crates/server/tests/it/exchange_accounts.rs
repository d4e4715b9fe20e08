//! Exchange accounts over HTTP against the in-process exchange-sim (real HTTP, real signatures):
//! keys that can withdraw or transfer are refused and never stored (EX-1, EX-3), one key one place,
//! step-up and a verified email before a key is connected (AU-8), balances masked while hidden,
//! re-checks that pause an account, deletion that destroys the sealed secret, and a rotation of the
//! vault's key while the key is in use (SEC-4).

use std::time::Duration;

use exchange_sim::{Fault, SimPermissions};
use serde_json::{Value, json};

use crate::{Backend, PASSWORD, TestApp, app};

crate::on_both!(
    a_key_is_connected_listed_used_rechecked_and_deleted,
    each_dangerous_permission_is_refused_and_nothing_is_stored,
    a_key_is_connected_once_across_users,
    a_scheduled_check_pauses_a_key_that_gained_withdrawals,
    signing_keeps_working_through_a_vault_rotation,
);

async fn user(app: &TestApp, email: &str) -> String {
    app.signed_in(email, PASSWORD).await
}

fn hmac_body(app: &TestApp, name: &str) -> Value {
    json!({
        "exchange": "binance",
        "name": name,
        "api_key": app.venue.hmac_api_key,
        "api_secret": app.venue.hmac_secret,
    })
}

async fn connect(app: &TestApp, cookie: &str, body: Value) -> crate::Reply {
    app.post("/api/v1/exchange-accounts", body, Some(cookie)).await
}

async fn audit_kinds(app: &TestApp, cookie: &str) -> Vec<(String, Value)> {
    let reply = app.get("/api/v1/audit-log", Some(cookie)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["detail"].clone()))
        .collect()
}

pub async fn a_key_is_connected_listed_used_rechecked_and_deleted(backend: Backend) {
    let app = app(backend).await;
    let cookie = user(&app, "trader@example.com").await;
    let created = connect(&app, &cookie, hmac_body(&app, "Main")).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let account = &created.json;
    let last4 = &app.venue.hmac_api_key[app.venue.hmac_api_key.len() - 4..];
    assert_eq!(account["exchange"], "binance");
    assert_eq!(account["name"], "Main");
    assert_eq!(account["api_key_hint"], format!("…{last4}"));
    assert_eq!(account["status"], "active");
    assert_eq!(
        account["permissions"],
        json!({"spot_trading": true, "withdrawals": false, "transfers": false, "ip_restricted": true})
    );
    assert!(!created.text.contains(&app.venue.hmac_secret) && !created.text.contains(&app.venue.hmac_api_key));
    let id = account["id"].as_str().unwrap().to_owned();

    let list = app.get("/api/v1/exchange-accounts", Some(&cookie)).await;
    assert_eq!(list.json.as_array().unwrap().len(), 1);
    assert_eq!(list.json[0]["id"], id.as_str());

    // Balances, read by signing with the secret the vault opens.
    let balances = app.get(&format!("/api/v1/exchange-accounts/{id}/balances"), Some(&cookie)).await;
    assert_eq!(balances.status, 200, "{}", balances.text);
    let usdt = balances.json.as_array().unwrap().iter().find(|b| b["asset"] == "USDT").unwrap().clone();
    assert_eq!(usdt, json!({"asset": "USDT", "free": "10000", "locked": "0"}));
    // Hidden balances are masked unless revealed.
    let hide =
        app.send("PATCH", "/api/v1/me/preferences", Some(json!({"hide_balances": true})), Some(&cookie), &[]).await;
    assert_eq!(hide.status, 200);
    let masked = app.get(&format!("/api/v1/exchange-accounts/{id}/balances"), Some(&cookie)).await;
    assert!(
        masked.json.as_array().unwrap().iter().all(|b| b["free"] == "***" && b["locked"] == "***"),
        "{}",
        masked.text
    );
    let revealed = app.get(&format!("/api/v1/exchange-accounts/{id}/balances?reveal=true"), Some(&cookie)).await;
    assert!(revealed.text.contains("\"10000\""), "{}", revealed.text);

    let rechecked = app.post(&format!("/api/v1/exchange-accounts/{id}/recheck"), json!({}), Some(&cookie)).await;
    assert_eq!((rechecked.status, rechecked.json["status"].as_str()), (200, Some("active")), "{}", rechecked.text);

    // A key revoked on the exchange pauses the account at the next check.
    app.venue.sim.revoke_key(&app.venue.hmac_api_key).unwrap();
    let revoked = app.post(&format!("/api/v1/exchange-accounts/{id}/recheck"), json!({}), Some(&cookie)).await;
    assert_eq!(
        (revoked.json["status"].as_str(), revoked.json["status_reason"].as_str()),
        (Some("paused"), Some("key_rejected")),
        "{}",
        revoked.text
    );

    // Someone else's account is not there for them.
    let other = user(&app, "other@example.com").await;
    for (method, path) in [
        ("GET", format!("/api/v1/exchange-accounts/{id}")),
        ("GET", format!("/api/v1/exchange-accounts/{id}/balances")),
        ("POST", format!("/api/v1/exchange-accounts/{id}/recheck")),
        ("DELETE", format!("/api/v1/exchange-accounts/{id}")),
    ] {
        let reply = app.send(method, &path, (method == "POST").then(|| json!({})), Some(&other), &[]).await;
        assert_eq!((reply.status, reply.code()), (404, "not_found"), "{method} {path}");
    }

    // Deleting needs a recent confirmation.
    app.clock.advance(Duration::from_secs(600));
    let late = app.send("DELETE", &format!("/api/v1/exchange-accounts/{id}"), None, Some(&cookie), &[]).await;
    assert_eq!((late.status, late.code()), (403, "reauth_required"));
    let reauth = app.post("/api/v1/auth/reauth", json!({ "password": PASSWORD }), Some(&cookie)).await;
    assert_eq!(reauth.status, 204);
    let cookie = reauth.session_cookie().unwrap();
    let deleted = app.send("DELETE", &format!("/api/v1/exchange-accounts/{id}"), None, Some(&cookie), &[]).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(app.get("/api/v1/exchange-accounts", Some(&cookie)).await.json.as_array().unwrap().is_empty());
    assert_eq!(app.store.count_blobs_with_kek(1).await.unwrap(), 0, "the sealed secret went with the account");

    let kinds: Vec<String> = audit_kinds(&app, &cookie).await.into_iter().map(|(k, _)| k).collect();
    for kind in ["exchange_key.added", "exchange_key.checked", "exchange_key.removed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    let mails = app.smtp.wait_for("trader@example.com", 2).await;
    assert!(mails.iter().any(|m| m.subject().contains("exchange key was connected")), "notice of a new key (AU-9)");
}

pub async fn each_dangerous_permission_is_refused_and_nothing_is_stored(backend: Backend) {
    let app = app(backend).await;
    let cookie = user(&app, "careful@example.com").await;
    let key = app.venue.hmac_api_key.clone();
    let cases = [
        (SimPermissions { withdrawals: true, ..SimPermissions::trading() }, "withdrawal_permission_enabled"),
        (
            SimPermissions { withdrawals: true, ip_restricted: false, ..SimPermissions::trading() },
            "withdrawal_permission_enabled",
        ),
        (SimPermissions { internal_transfer: true, ..SimPermissions::trading() }, "transfer_permission_enabled"),
        (SimPermissions { universal_transfer: true, ..SimPermissions::trading() }, "transfer_permission_enabled"),
        (SimPermissions { spot_trading: false, ..SimPermissions::trading() }, "trading_permission_missing"),
        (SimPermissions { ip_restricted: false, ..SimPermissions::trading() }, "ip_restriction_missing"),
    ];
    for (permissions, code) in cases {
        app.venue.sim.set_permissions(&key, permissions).unwrap();
        let refused = connect(&app, &cookie, hmac_body(&app, "Refused")).await;
        assert_eq!((refused.status, refused.code()), (422, code), "{permissions:?}: {}", refused.text);
        assert!(refused.json["message"].as_str().unwrap().contains("not stored"), "{}", refused.text);
    }
    assert!(app.get("/api/v1/exchange-accounts", Some(&cookie)).await.json.as_array().unwrap().is_empty());
    assert_eq!(app.store.count_blobs_with_kek(1).await.unwrap(), 0, "a refused secret is never stored");
    let refusals: Vec<Value> = audit_kinds(&app, &cookie)
        .await
        .into_iter()
        .filter(|(k, _)| k == "exchange_key.refused")
        .map(|(_, detail)| detail)
        .collect();
    assert_eq!(refusals.len(), 6);
    assert!(refusals.iter().any(|d| d["reason"] == "withdrawal_permission_enabled"));
    let mails = app.smtp.wait_for("careful@example.com", 2).await;
    assert!(mails.iter().any(|m| m.subject().contains("refused an exchange key")), "notice of a refused key (AU-9)");

    // Wrong secret, unknown key, malformed Ed25519 key, missing secret: refused as such.
    app.venue.sim.set_permissions(&key, SimPermissions::trading()).unwrap();
    let mut wrong = hmac_body(&app, "Wrong");
    wrong["api_secret"] = json!("not-the-secret");
    let reply = connect(&app, &cookie, wrong).await;
    assert_eq!((reply.status, reply.code()), (422, "invalid_api_key"), "{}", reply.text);
    let mut unknown = hmac_body(&app, "Unknown");
    unknown["api_key"] = json!("UnknownKey000000000000000000000000000000000000000000000000000001");
    assert_eq!(connect(&app, &cookie, unknown).await.code(), "invalid_api_key");
    let pem = json!({"exchange": "binance", "name": "Bad pem", "api_key": test_support::ED25519_API_KEY, "private_key": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"});
    let reply = connect(&app, &cookie, pem).await;
    assert_eq!((reply.status, reply.code(), reply.json["field"].as_str()), (422, "invalid_input", Some("private_key")));
    let neither = json!({"exchange": "binance", "name": "Nothing", "api_key": key});
    assert_eq!(connect(&app, &cookie, neither).await.code(), "invalid_input");
    let paper = json!({"exchange": "kraken", "name": "Elsewhere", "api_key": key, "api_secret": "x"});
    assert_eq!(connect(&app, &cookie, paper).await.json["field"], "exchange");

    // The venue cannot be reached: nothing stored, 502.
    app.venue.sim.inject(Fault::ServerError { path: "/sapi/v1/account/apiRestrictions".to_owned() });
    let reply = connect(&app, &cookie, hmac_body(&app, "Down")).await;
    assert_eq!((reply.status, reply.code()), (502, "exchange_unreachable"), "{}", reply.text);
    assert_eq!(app.store.count_blobs_with_kek(1).await.unwrap(), 0);

    // A key without IP restriction is accepted only by a deliberate, audited waiver.
    app.venue.sim.set_permissions(&key, SimPermissions { ip_restricted: false, ..SimPermissions::trading() }).unwrap();
    let mut waived = hmac_body(&app, "Dynamic IP");
    waived["waive_ip_restriction"] = json!(true);
    let reply = connect(&app, &cookie, waived).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        (reply.json["ip_restriction_waived"].as_bool(), reply.json["permissions"]["ip_restricted"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(audit_kinds(&app, &cookie).await.iter().any(|(k, _)| k == "exchange_key.ip_restriction_waived"));

    // An Ed25519 key connects; its private key signs through the vault.
    let ed = json!({"exchange": "binance", "name": "Ed", "api_key": test_support::ED25519_API_KEY, "private_key": app.venue.ed25519_pem});
    let reply = connect(&app, &cookie, ed).await;
    assert_eq!((reply.status, reply.json["key_type"].as_str()), (201, Some("ed25519")), "{}", reply.text);
    let id = reply.json["id"].as_str().unwrap();
    let balances = app.get(&format!("/api/v1/exchange-accounts/{id}/balances"), Some(&cookie)).await;
    assert_eq!(balances.json, json!([{"asset": "USDT", "free": "2500", "locked": "0"}]), "{}", balances.text);
}

pub async fn a_key_is_connected_once_across_users(backend: Backend) {
    let app = app(backend).await;
    let first = user(&app, "first@example.com").await;
    let second = user(&app, "second@example.com").await;
    assert_eq!(connect(&app, &first, hmac_body(&app, "Mine")).await.status, 201);
    for cookie in [&first, &second] {
        let again = connect(&app, cookie, hmac_body(&app, "Again")).await;
        assert_eq!((again.status, again.code()), (409, "api_key_already_connected"), "{}", again.text);
    }
    assert!(app.get("/api/v1/exchange-accounts", Some(&second)).await.json.as_array().unwrap().is_empty());

    // Step-up and a verified email come first.
    app.clock.advance(Duration::from_secs(600));
    let stale =
        connect(&app, &second, json!({"exchange": "binance", "name": "x", "api_key": "K", "api_secret": "S"})).await;
    assert_eq!((stale.status, stale.code()), (403, "reauth_required"));
    app.register("unverified@example.com", PASSWORD).await;
    let unverified = app.login("unverified@example.com", PASSWORD).await;
    let reply = connect(&app, &unverified, hmac_body(&app, "Early")).await;
    assert_eq!((reply.status, reply.code()), (403, "email_not_verified"), "{}", reply.text);
    let anonymous = app.post("/api/v1/exchange-accounts", hmac_body(&app, "Anon"), None).await;
    assert_eq!(anonymous.status, 401);
}

/// A session cannot use the server to try stolen keys at the exchange: after 10 refused or rejected
/// keys in a row the user must wait, and the venue is not asked meanwhile.
#[tokio::test]
async fn refused_keys_are_throttled_per_user() {
    let app = app(Backend::Sqlite).await;
    let cookie = user(&app, "prober@example.com").await;
    for n in 0..10 {
        let mut guess = hmac_body(&app, "Guess");
        guess["api_secret"] = json!(format!("guess-{n}"));
        assert_eq!(connect(&app, &cookie, guess).await.code(), "invalid_api_key", "attempt {n}");
    }
    let asked = app.venue.sim.request_log().len();
    let blocked = connect(&app, &cookie, hmac_body(&app, "Right one")).await;
    assert_eq!((blocked.status, blocked.code()), (429, "rate_limited"), "{}", blocked.text);
    assert!(blocked.header("retry-after").is_some());
    assert_eq!(app.venue.sim.request_log().len(), asked, "the venue is not asked while blocked");
    // Another user is not affected.
    let other = user(&app, "honest@example.com").await;
    assert_eq!(connect(&app, &other, hmac_body(&app, "Mine")).await.status, 201);
}

pub async fn a_scheduled_check_pauses_a_key_that_gained_withdrawals(backend: Backend) {
    crate::logs::install();
    let app =
        test_support::spawn_app_with(backend, |config| config.housekeeping_every = Duration::from_millis(100)).await;
    let cookie = user(&app, "watched@example.com").await;
    let created = connect(&app, &cookie, hmac_body(&app, "Watched")).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().unwrap().to_owned();

    // On demand: a key that can withdraw pauses the account (and the user hears of it); fixed on
    // the exchange, the next check makes it active again.
    let sim = &app.venue.sim;
    let key = app.venue.hmac_api_key.clone();
    sim.set_permissions(&key, SimPermissions { withdrawals: true, ..SimPermissions::trading() }).unwrap();
    let paused = app.post(&format!("/api/v1/exchange-accounts/{id}/recheck"), json!({}), Some(&cookie)).await;
    assert_eq!(
        (paused.json["status"].as_str(), paused.json["status_reason"].as_str()),
        (Some("paused"), Some("withdrawal_permission_enabled")),
        "{}",
        paused.text
    );
    let mails = app.smtp.wait_for("watched@example.com", 3).await;
    assert!(mails.iter().any(|m| m.subject().contains("Trading paused")), "the user is told");
    sim.set_permissions(&key, SimPermissions::trading()).unwrap();
    let active = app.post(&format!("/api/v1/exchange-accounts/{id}/recheck"), json!({}), Some(&cookie)).await;
    assert_eq!(active.json["status"], "active", "{}", active.text);

    // The key gains withdrawals on the exchange; a day passes; the scheduled check finds it.
    sim.set_permissions(&key, SimPermissions { withdrawals: true, ..SimPermissions::trading() }).unwrap();
    app.clock.advance(Duration::from_secs(25 * 3600));
    let cookie = app.login("watched@example.com", PASSWORD).await;
    let mut checked = None;
    for _ in 0..100 {
        let account = app.get(&format!("/api/v1/exchange-accounts/{id}"), Some(&cookie)).await;
        if account.json["last_checked_at"] != active.json["last_checked_at"] {
            checked = Some(account.json);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let checked = checked.expect("the scheduled check ran within 5 s");
    assert_eq!(
        (checked["status"].as_str(), checked["status_reason"].as_str()),
        (Some("paused"), Some("withdrawal_permission_enabled"))
    );
    let scheduled: Vec<Value> = audit_kinds(&app, &cookie)
        .await
        .into_iter()
        .filter(|(k, d)| k == "exchange_key.checked" && d["scheduled"] == true)
        .map(|(_, d)| d)
        .collect();
    assert!(!scheduled.is_empty(), "the scheduled check is audited");
}

pub async fn signing_keeps_working_through_a_vault_rotation(backend: Backend) {
    let app = app(backend).await;
    let cookie = user(&app, "rotating@example.com").await;
    let created = connect(&app, &cookie, hmac_body(&app, "Rotating")).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/exchange-accounts/{id}/balances");

    // Readers sign continuously while the key-encryption key rotates and the rewrap job runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (client, url, cookie, stop) = (app.client.clone(), app.url(&path), cookie.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || ok == 0 {
                let reply =
                    client.get(&url).header("cookie", format!("__Host-bulwark_session={cookie}")).send().await.unwrap();
                if reply.status() == 200 { ok += 1 } else { failed += 1 }
            }
            (ok, failed)
        }));
    }
    let version = app.keys.rotate().await.unwrap();
    assert_eq!(version, 2);
    let report = app.keys.finish_rotations().await.unwrap();
    assert_eq!(report.rewrapped, 1, "{report:?}");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for reader in readers {
        let (ok, failed) = reader.await.unwrap();
        assert!(ok > 0);
        assert_eq!(failed, 0, "no failed signature during rotation");
    }
    assert_eq!(app.store.count_blobs_with_kek(1).await.unwrap(), 0);
    assert_eq!(app.store.count_blobs_with_kek(2).await.unwrap(), 1);
    assert_eq!(app.get(&path, Some(&cookie)).await.status, 200);
}

/// A paper account is opened in the paper market with a key and secret of its own, checked and
/// sealed like a real key, and used through the same adapter.
#[tokio::test]
async fn a_paper_account_is_opened_in_the_paper_market_and_used_like_a_real_key() {
    let app = app(Backend::Sqlite).await;
    let cookie = user(&app, "paper@example.com").await;
    let created = connect(&app, &cookie, json!({"exchange": "paper", "name": "Practice"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!((created.json["exchange"].as_str(), created.json["status"].as_str()), (Some("paper"), Some("active")));
    assert_eq!(created.json["permissions"]["withdrawals"], false);
    let id = created.json["id"].as_str().unwrap();
    let balances = app.get(&format!("/api/v1/exchange-accounts/{id}/balances"), Some(&cookie)).await;
    assert_eq!(balances.json, json!([{"asset": "USDT", "free": "10000", "locked": "0"}]), "{}", balances.text);
    assert_eq!(app.store.count_blobs_with_kek(1).await.unwrap(), 1, "its secret is sealed like any other");

    let custom = json!({"exchange": "paper", "name": "Rich", "balances": {"USDT": "2500.5", "BTC": 0.25}});
    let created = connect(&app, &cookie, custom).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().unwrap();
    let mut balances = app.get(&format!("/api/v1/exchange-accounts/{id}/balances"), Some(&cookie)).await.json;
    balances.as_array_mut().unwrap().sort_by_key(|b| b["asset"].as_str().unwrap().to_owned());
    assert_eq!(
        balances,
        json!([{"asset": "BTC", "free": "0.25", "locked": "0"}, {"asset": "USDT", "free": "2500.5", "locked": "0"}])
    );

    for (body, field) in [
        (json!({"exchange": "paper", "name": "x", "balances": {"USDT": "-1"}}), "balances"),
        (json!({"exchange": "paper", "name": "x", "balances": {"US DT": "1"}}), "balances"),
        (json!({"exchange": "paper", "name": "x", "balances": {"USDT": "1e13"}}), "balances"),
        (json!({"exchange": "paper", "name": "x", "balances": {}}), "balances"),
        (json!({"exchange": "paper", "name": "x", "api_key": "K", "api_secret": "S"}), "api_key"),
        (
            json!({"exchange": "binance", "name": "x", "api_key": "K", "api_secret": "S", "balances": {"USDT": 1}}),
            "balances",
        ),
    ] {
        let reply = connect(&app, &cookie, body.clone()).await;
        assert_eq!((reply.status, reply.json["field"].as_str()), (422, Some(field)), "{body}: {}", reply.text);
    }
    assert_eq!(app.get("/api/v1/exchange-accounts", Some(&cookie)).await.json.as_array().unwrap().len(), 2);
}

/// A newcomer's first trades on paper: a market buy and a limit sell, the open order canceled, the
/// fills in the history, the chart drawn; every order audited as a use of the key.
#[tokio::test]
async fn paper_accounts_trade_by_hand_and_show_orders_trades_and_a_chart() {
    let app = app(Backend::Sqlite).await;
    let cookie = user(&app, "trader-paper@example.com").await;
    let created = connect(&app, &cookie, json!({"exchange": "paper", "name": "Practice"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let path = |rest: &str| format!("/api/v1/exchange-accounts/{id}/{rest}");

    let markets = app.get(&path("markets"), Some(&cookie)).await;
    assert!(markets.json.as_array().unwrap().iter().any(|m| m["pair"] == "USDT_BTC"), "{}", markets.text);

    // Market buy for 300 USDT at 30000: 0.01 BTC less the 0.1 % fee.
    let buy = json!({"pair": "USDT_BTC", "side": "buy", "type": "market", "quote_quantity": "300"});
    let bought = app.post(&path("orders"), buy, Some(&cookie)).await;
    assert_eq!((bought.status, bought.json["status"].as_str()), (201, Some("filled")), "{}", bought.text);
    assert_eq!(bought.json["executed_quantity"], "0.01");

    // A limit sell above the price rests; its quantity is rounded down to the step.
    let sell =
        json!({"pair": "USDT_BTC", "side": "sell", "type": "limit", "quantity": "0.0050009", "price": 31000.004});
    let resting = app.post(&path("orders"), sell, Some(&cookie)).await;
    assert_eq!((resting.status, resting.json["status"].as_str()), (201, Some("new")), "{}", resting.text);
    assert_eq!((resting.json["quantity"].as_str(), resting.json["price"].as_str()), (Some("0.005"), Some("31000.01")));
    let open = app.get(&path("orders?pair=USDT_BTC"), Some(&cookie)).await;
    assert_eq!(open.json.as_array().unwrap().len(), 1, "{}", open.text);
    let order_id = resting.json["id"].as_str().unwrap();
    let canceled =
        app.send("DELETE", &path(&format!("orders/{order_id}?pair=USDT_BTC")), None, Some(&cookie), &[]).await;
    assert_eq!(canceled.json["status"], "canceled", "{}", canceled.text);
    assert!(app.get(&path("orders?pair=USDT_BTC"), Some(&cookie)).await.json.as_array().unwrap().is_empty());
    let again = app.send("DELETE", &path(&format!("orders/{order_id}?pair=USDT_BTC")), None, Some(&cookie), &[]).await;
    assert_eq!(again.status, 404);

    // A market sell of what was bought fills; the history shows both trades, newest first.
    let sell_all = json!({"pair": "USDT_BTC", "side": "sell", "type": "market", "quantity": "0.00999"});
    let sold = app.post(&path("orders"), sell_all, Some(&cookie)).await;
    assert_eq!(sold.json["status"], "filled", "{}", sold.text);
    let trades = app.get(&path("trades?pair=USDT_BTC"), Some(&cookie)).await;
    let sides: Vec<&str> = trades.json.as_array().unwrap().iter().map(|t| t["side"].as_str().unwrap()).collect();
    assert_eq!(sides, ["sell", "buy"], "{}", trades.text);
    assert_eq!(trades.json[1]["fee_asset"], "BTC");

    // Amounts follow hide-balances.
    let hide =
        app.send("PATCH", "/api/v1/me/preferences", Some(json!({"hide_balances": true})), Some(&cookie), &[]).await;
    assert_eq!(hide.status, 200);
    let hidden = app.get(&path("trades?pair=USDT_BTC"), Some(&cookie)).await;
    assert!(hidden.json.as_array().unwrap().iter().all(|t| t["quantity"] == "***" && t["fee"] == "***"));
    let shown = app.get(&path("trades?pair=USDT_BTC&reveal=true"), Some(&cookie)).await;
    assert_eq!(shown.json[1]["quantity"], "0.01");

    // Refusals: the market's rules, a bad pair, an order without its price.
    let tiny = json!({"pair": "USDT_BTC", "side": "buy", "type": "limit", "quantity": "0.00001", "price": "100"});
    let reply = app.post(&path("orders"), tiny, Some(&cookie)).await;
    assert_eq!((reply.status, reply.code()), (422, "order_rejected"), "{}", reply.text);
    assert!(reply.json["message"].as_str().unwrap().contains("NOTIONAL"), "{}", reply.text);
    // More than the account holds: sent, and refused by the venue (-2010).
    let poor = json!({"pair": "USDT_BTC", "side": "buy", "type": "market", "quote_quantity": "20000"});
    let reply = app.post(&path("orders"), poor, Some(&cookie)).await;
    assert_eq!(reply.code(), "order_rejected", "{}", reply.text);
    assert!(reply.json["message"].as_str().unwrap().contains("insufficient balance"), "{}", reply.text);
    let bad_pair = json!({"pair": "BTCUSDT", "side": "buy", "type": "market", "quantity": "1"});
    assert_eq!(app.post(&path("orders"), bad_pair, Some(&cookie)).await.json["field"], "pair");
    let no_price = json!({"pair": "USDT_BTC", "side": "buy", "type": "limit", "quantity": "0.01"});
    assert_eq!(app.post(&path("orders"), no_price, Some(&cookie)).await.json["field"], "type");

    // The chart is an SVG drawn by the server.
    let chart = app.get(&path("chart.svg?pair=USDT_BTC"), Some(&cookie)).await;
    assert_eq!(chart.status, 200);
    assert!(chart.header("content-type").unwrap().starts_with("image/svg+xml"));
    assert!(
        chart.text.starts_with("<svg") && chart.text.contains("USDT_BTC"),
        "{}",
        &chart.text[..80.min(chart.text.len())]
    );

    let used = audit_kinds(&app, &cookie).await.into_iter().filter(|(k, _)| k == "exchange_key.used").count();
    assert_eq!(used, 4, "every order sent with the key is audited, refused by the venue or not (not reads)");

    // Starting over: open orders canceled, balances replaced, history kept.
    let again = json!({"pair": "USDT_BTC", "side": "buy", "type": "limit", "quantity": "0.01", "price": "20000"});
    assert_eq!(app.post(&path("orders"), again, Some(&cookie)).await.status, 201);
    let reset = app.post(&path("reset"), json!({"balances": {"USDT": 500}}), Some(&cookie)).await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert!(app.get(&path("orders?pair=USDT_BTC"), Some(&cookie)).await.json.as_array().unwrap().is_empty());
    let balances = app.get(&path("balances?reveal=true"), Some(&cookie)).await;
    assert_eq!(balances.json, json!([{"asset": "USDT", "free": "500", "locked": "0"}]), "{}", balances.text);
    assert_eq!(app.get(&path("trades?pair=USDT_BTC"), Some(&cookie)).await.json.as_array().unwrap().len(), 2);
    assert!(audit_kinds(&app, &cookie).await.iter().any(|(k, d)| k == "paper.reset" && d["canceled_orders"] == 1));
}

/// Orders on a real key pass the order guard (TR-1) with the strict default policy: the 2022
/// attack — buying far above the market — is refused and audited before anything is signed; an
/// ordinary order goes through.
#[tokio::test]
async fn manual_orders_on_a_real_key_pass_the_order_guard() {
    let app = app(Backend::Sqlite).await;
    let cookie = user(&app, "real@example.com").await;
    let created = connect(&app, &cookie, hmac_body(&app, "Real")).await;
    let id = created.json["id"].as_str().unwrap();
    let policy = app.get(&format!("/api/v1/exchange-accounts/{id}/policy"), Some(&cookie)).await;
    assert_eq!(policy.json["default"], true);
    assert_eq!(policy.json["max_price_deviation_percent"], "5");
    let pump = json!({"pair": "USDT_BTC", "side": "buy", "type": "limit", "quantity": "0.001", "price": "45000"});
    let reply = app.post(&format!("/api/v1/exchange-accounts/{id}/orders"), pump, Some(&cookie)).await;
    assert_eq!((reply.status, reply.code()), (422, "price_too_far"), "{}", reply.text);
    assert!(app.venue.sim.orders(&app.venue.hmac_api_key).is_empty(), "nothing was signed or sent");
    let refused = audit_kinds(&app, &cookie).await;
    assert!(refused.iter().any(|(k, d)| k == "order.refused" && d["code"] == "price_too_far"), "{refused:?}");
    assert!(!refused.iter().any(|(k, _)| k == "exchange_key.used"));
    let order = json!({"pair": "USDT_BTC", "side": "buy", "type": "market", "quote_quantity": "100"});
    let reply = app.post(&format!("/api/v1/exchange-accounts/{id}/orders"), order, Some(&cookie)).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(app.venue.sim.orders(&app.venue.hmac_api_key).len(), 1);
    let reset = app.post(&format!("/api/v1/exchange-accounts/{id}/reset"), json!({}), Some(&cookie)).await;
    assert_eq!((reset.status, reset.code()), (409, "not_paper"));
}
