//! TradingView webhooks end to end: the exact 3Commas message shapes posted to the running app,
//! acted on by its runner through the real Binance adapter against the paper exchange-sim
//! (`spec/webhooks.md`, WH-1..3 of `spec/security.md`). Waits are conditions with deadlines.

use std::time::Duration;

use domain::{Clock as _, Decimal};
use serde_json::{Value, json};

use crate::deals::{assert_sent_once, bot_body, count, dec, orders, paper_account, price, wait_deal};
use crate::{Backend, PASSWORD, Reply, TestApp, logs, spawn_app_with};

const DCA_PATH: &str = "/trade_signal/trading_view";
const SIGNAL_PATH: &str = "/signal_bots/webhooks";

async fn app_with(backend: Backend, configure: impl FnOnce(&mut server::ServerConfig)) -> TestApp {
    logs::install();
    spawn_app_with(backend, |config| {
        config.engine_interval = Duration::from_millis(50);
        configure(config);
    })
    .await
}

/// A bot started by TradingView signals (Example A at 30,000), and its webhook secret.
async fn signal_bot(app: &TestApp, cookie: &str, account: &str, changes: Value) -> (String, String) {
    let mut body = bot_body(account, json!({"strategy_list": [{"strategy": "trading_view"}]}));
    for (key, value) in changes.as_object().unwrap() {
        body[key] = value.clone();
    }
    let created = app.post("/api/v1/bots", body, Some(cookie)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    (created.json["id"].as_str().unwrap().to_owned(), created.json["webhook_secret"].as_str().unwrap().to_owned())
}

/// What a TradingView alert sends when its message is valid JSON.
async fn post_json(app: &TestApp, path: &str, body: &Value) -> Reply {
    app.post_raw(path, body.to_string(), &[("content-type", "application/json")]).await
}

/// The 3Commas DCA-bot message, exactly as its docs show it, plus `action` when given.
fn dca_message(bot: &str, secret: &str, action: Option<&str>) -> Value {
    let mut message =
        json!({"message_type": "bot", "bot_id": bot, "email_token": secret, "delay_seconds": 0, "pair": "USDT_BTC"});
    if let Some(action) = action {
        message["action"] = json!(action);
    }
    message
}

async fn deals_of(app: &TestApp, cookie: &str, bot: &str) -> Vec<Value> {
    let reply = app.get(&format!("/api/v1/deals?bot_id={bot}&reveal=true"), Some(cookie)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json.as_array().unwrap().clone()
}

/// Waits (at most 20 s) until the bot has a deal, and returns its id.
async fn first_deal(app: &TestApp, cookie: &str, bot: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(deal) = deals_of(app, cookie, bot).await.first() {
            return deal["id"].as_str().unwrap().to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "waited 20 s for a deal of bot {bot}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn signal_log(app: &TestApp, cookie: &str, bot: &str) -> Vec<Value> {
    let reply = app.get(&format!("/api/v1/bots/{bot}/signals?reveal=true"), Some(cookie)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json.as_array().unwrap().clone()
}

/// Waits (at most 20 s) until the signal has left `pending`, and returns its log entry.
async fn settled_signal(app: &TestApp, cookie: &str, bot: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = signal_log(app, cookie, bot).await;
        let entry = log.iter().find(|s| s["id"] == id).unwrap_or_else(|| panic!("signal {id} is in the log"));
        if entry["state"] != "pending" {
            return entry.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "waited 20 s for signal {id}: {entry:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn accepted(reply: &Reply) -> String {
    if reply.status != 202 {
        let errors: Vec<String> = logs::captured().lines().filter(|l| l.contains("ERROR")).map(str::to_owned).collect();
        panic!("expected 202, got {}: {}\nerrors logged: {errors:#?}", reply.status, reply.text);
    }
    assert_eq!(reply.json["status"], "accepted");
    reply.json["signal_id"].as_str().expect("a signal id").to_owned()
}

/// WH-2 and the first "done when": start, add funds (as text/plain, which TradingView sends
/// when it thinks the message is not JSON) and close, each answered 202 and acted on by the runner.
pub async fn dca_alerts_start_add_funds_and_close_a_deal(backend: Backend) {
    let app = app_with(backend, |_| {}).await;
    let cookie = app.signed_in("alerts@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let (bot, secret) = signal_bot(&app, &cookie, &account, json!({})).await;

    let start = accepted(&post_json(&app, DCA_PATH, &dca_message(&bot, &secret, None)).await);
    let deal = first_deal(&app, &cookie, &bot).await;
    let bought = wait_deal(&app, &cookie, &deal, "the base order and the take profit", |d| {
        d["status"] == "bought" && count(d, "take_profit", "open") == 1
    })
    .await;
    assert_eq!(dec(&orders(&bought, "base")[0]["executed_quote"]).round(), 100.into());
    let logged = settled_signal(&app, &cookie, &bot, &start).await;
    assert_eq!(logged["state"], "done", "{logged:#}");
    assert!(logged["outcome"].as_str().unwrap().contains(&deal), "{logged:#}");

    let mut add = dca_message(&bot, &secret, Some("add_funds_in_quote"));
    add["volume"] = json!(50);
    let added = app.post_raw(DCA_PATH, add.to_string(), &[("content-type", "text/plain; charset=utf-8")]).await;
    let added = accepted(&added);
    let with_funds = wait_deal(&app, &cookie, &deal, "the added funds", |d| count(d, "add_funds", "filled") == 1).await;
    assert_eq!(dec(&orders(&with_funds, "add_funds")[0]["executed_quote"]).round(), 50.into());
    assert_eq!(settled_signal(&app, &cookie, &bot, &added).await["state"], "done");

    let close = accepted(&post_json(&app, DCA_PATH, &dca_message(&bot, &secret, Some("close_at_market_price"))).await);
    let closed = wait_deal(&app, &cookie, &deal, "the close at market", |d| d["status"] == "panic_sold").await;
    assert_eq!(closed["close_reason"], "closed_at_market");
    assert_eq!(settled_signal(&app, &cookie, &bot, &close).await["state"], "done");
    assert_sent_once(&app, &closed, true);
    assert_eq!(deals_of(&app, &cookie, &bot).await.len(), 1, "one deal from one start signal");

    // Nothing left to close: the signal is answered 202 (TradingView cannot act on more) and the
    // log says why nothing happened.
    let nothing =
        accepted(&post_json(&app, DCA_PATH, &dca_message(&bot, &secret, Some("close_at_market_price_all"))).await);
    let refused = settled_signal(&app, &cookie, &bot, &nothing).await;
    assert_eq!(refused["state"], "refused", "{refused:#}");
    assert!(refused["outcome"].as_str().unwrap().contains("no open deal"), "{refused:#}");

    let audit = app.get("/api/v1/audit-log", Some(&cookie)).await;
    let accepted_hits = audit.json.as_array().unwrap().iter().filter(|e| e["kind"] == "webhook.accepted").count();
    assert_eq!(accepted_hits, 4, "every hit is audited");
    assert!(!audit.text.contains(&secret), "the secret is never in the audit log");
}

/// WH-1: a wrong secret, another bot's secret, an unknown bot and a malformed bot id get the same
/// 401 `invalid_token` with the same body; nothing is recorded; the bot's owner sees the attempts.
pub async fn wrong_and_foreign_secrets_get_the_same_401(backend: Backend) {
    let app = app_with(backend, |_| {}).await;
    let cookie = app.signed_in("secrets@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let (bot_a, secret_a) = signal_bot(&app, &cookie, &account, json!({})).await;
    let (bot_b, secret_b) = signal_bot(&app, &cookie, &account, json!({"name": "B"})).await;
    let unknown = "0b7d4a9e-35a1-4c55-9b1e-1a2b3c4d5e6f";
    let wrong = "f".repeat(64);
    let cases = [
        (bot_a.as_str(), wrong.as_str(), "a wrong secret"),
        (bot_a.as_str(), secret_b.as_str(), "another bot's secret"),
        (unknown, secret_a.as_str(), "an unknown bot"),
        ("12345678", secret_a.as_str(), "a 3Commas bot id"),
    ];
    let mut bodies = Vec::new();
    for (bot, secret, what) in cases {
        let reply = post_json(&app, DCA_PATH, &dca_message(bot, secret, None)).await;
        assert_eq!((reply.status, reply.code()), (401, "invalid_token"), "{what}: {}", reply.text);
        bodies.push(reply.text);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "one answer for every case: {bodies:?}");
    let signal = json!({"secret": secret_b, "bot_uuid": bot_a, "action": "enter_long", "tv_instrument": "BTCUSDT"});
    let reply = post_json(&app, SIGNAL_PATH, &signal).await;
    assert_eq!((reply.status, reply.code()), (401, "invalid_token"), "{}", reply.text);

    assert!(signal_log(&app, &cookie, &bot_a).await.is_empty(), "nothing recorded");
    assert!(deals_of(&app, &cookie, &bot_a).await.is_empty());
    let audit = app.get("/api/v1/audit-log", Some(&cookie)).await;
    let rejected: Vec<&Value> =
        audit.json.as_array().unwrap().iter().filter(|e| e["kind"] == "webhook.rejected").collect();
    assert_eq!(rejected.len(), 3, "the owner sees the attempts on their bot: {rejected:#?}");
    assert!(!audit.text.contains(&secret_b) && !audit.text.contains(&wrong), "no presented secret is logged");

    // The kill switch revokes every secret: the right one is refused too.
    let _ = bot_b;
    app.clock.advance(Duration::from_secs(6 * 60));
    let reauth = app.post("/api/v1/auth/reauth", json!({"password": PASSWORD}), Some(&cookie)).await;
    let cookie = reauth.session_cookie().unwrap();
    let killed = app.post("/api/v1/kill-switch", json!({}), Some(&cookie)).await;
    assert_eq!(killed.status, 200, "{}", killed.text);
    let reply = post_json(&app, DCA_PATH, &dca_message(&bot_a, &secret_a, None)).await;
    assert_eq!((reply.status, reply.code()), (401, "invalid_token"), "{}", reply.text);
}

/// WH-2: the same body twice inside the dedupe window is one action (409 for the replay); after
/// the window the same body is a new signal. Stale and future-dated signals get 422; a body over
/// 16 KiB gets 413; malformed JSON 400; a wrong field 422 naming it.
pub async fn replays_stale_oversized_and_malformed_signals_are_refused(backend: Backend) {
    let app = app_with(backend, |_| {}).await;
    let cookie = app.signed_in("replay@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let (bot, secret) =
        signal_bot(&app, &cookie, &account, json!({"max_active_deals": 3, "allowed_deals_on_same_pair": 3})).await;

    let message = dca_message(&bot, &secret, None);
    accepted(&post_json(&app, DCA_PATH, &message).await);
    let replay = post_json(&app, DCA_PATH, &message).await;
    assert_eq!((replay.status, replay.code()), (409, "duplicate_signal"), "{}", replay.text);
    let deal = first_deal(&app, &cookie, &bot).await;
    wait_deal(&app, &cookie, &deal, "the deal to buy", |d| d["status"] == "bought").await;
    assert_eq!(deals_of(&app, &cookie, &bot).await.len(), 1, "the replay started nothing");
    assert_eq!(signal_log(&app, &cookie, &bot).await.len(), 1, "the replay is not recorded as a signal");

    let now = app.clock.now().as_unix_millis() / 1000;
    let iso = |secs: i64| {
        time::OffsetDateTime::from_unix_timestamp(secs)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let signal = |timestamp: String, action: &str| {
        json!({
            "secret": secret, "max_lag": "300", "timestamp": timestamp, "trigger_price": "30000",
            "tv_exchange": "BINANCE", "tv_instrument": "BTCUSDT", "action": action, "bot_uuid": bot,
        })
    };
    let stale = post_json(&app, SIGNAL_PATH, &signal(iso(now - 301), "exit_long")).await;
    assert_eq!((stale.status, stale.code()), (422, "stale_signal"), "{}", stale.text);
    let ahead = post_json(&app, SIGNAL_PATH, &signal(iso(now + 120), "exit_long")).await;
    assert_eq!((ahead.status, ahead.code()), (422, "stale_signal"), "{}", ahead.text);
    let wrong_side = post_json(&app, SIGNAL_PATH, &signal(iso(now), "enter_short")).await;
    assert_eq!((wrong_side.status, wrong_side.code()), (422, "invalid_signal"), "{}", wrong_side.text);
    assert!(wrong_side.text.contains("long"), "{}", wrong_side.text);

    let mut big = dca_message(&bot, &secret, None);
    big["padding"] = json!("x".repeat(16 * 1024));
    let oversized = post_json(&app, DCA_PATH, &big).await;
    assert_eq!((oversized.status, oversized.code()), (413, "body_too_large"), "{}", oversized.text);
    let malformed = app.post_raw(DCA_PATH, "{\"message_type\": \"bot\",", &[("content-type", "text/plain")]).await;
    assert_eq!((malformed.status, malformed.code()), (400, "invalid_json"), "{}", malformed.text);
    let mut bad = dca_message(&bot, &secret, Some("add_funds_in_quote"));
    bad["volume"] = json!("{{strategy.order.contracts}}");
    let placeholder = post_json(&app, DCA_PATH, &bad).await;
    assert_eq!((placeholder.status, placeholder.code()), (422, "invalid_signal"), "{}", placeholder.text);
    assert!(placeholder.text.contains("volume"), "the field is named: {}", placeholder.text);
    assert!(!placeholder.text.contains(&secret), "an error never echoes the body");

    // Past the window, the same body is a new signal (a second deal: max_active_deals is 3).
    app.clock.advance(Duration::from_secs(61));
    accepted(&post_json(&app, DCA_PATH, &message).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while deals_of(&app, &cookie, &bot).await.len() < 2 {
        if tokio::time::Instant::now() >= deadline {
            let log = signal_log(&app, &cookie, &bot).await;
            panic!("the same alert after the window starts a second deal; signals: {log:#?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(signal_log(&app, &cookie, &bot).await.len(), 2);
}

/// NET-1 / WH-1: the per-bot limit answers 429 with `Retry-After` and records nothing more; guessing
/// secrets from one address is cut off after a few failures, even with a right one afterwards.
pub async fn floods_and_guessing_are_rate_limited(backend: Backend) {
    use server::config::Rate;
    let app = app_with(backend, |config| {
        config.webhooks.per_bot = Rate { per_minute: 60, burst: 3 };
        config.webhooks.failures_per_ip = Rate { per_minute: 6, burst: 4 };
    })
    .await;
    let cookie = app.signed_in("flood@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let (bot, secret) = signal_bot(&app, &cookie, &account, json!({"enabled": false})).await;
    for n in 0..3 {
        let mut message = dca_message(&bot, &secret, None);
        message["delay_seconds"] = json!(n);
        accepted(&post_json(&app, DCA_PATH, &message).await);
    }
    let mut fourth = dca_message(&bot, &secret, None);
    fourth["delay_seconds"] = json!(9);
    let limited = post_json(&app, DCA_PATH, &fourth).await;
    assert_eq!((limited.status, limited.code()), (429, "rate_limited"), "{}", limited.text);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(signal_log(&app, &cookie, &bot).await.len(), 3);
    app.clock.advance(Duration::from_secs(1));
    accepted(&post_json(&app, DCA_PATH, &fourth).await);

    // The disabled bot's start signals were recorded and refused at once.
    let log = signal_log(&app, &cookie, &bot).await;
    assert!(
        log.iter().all(|s| s["state"] == "refused" && s["outcome"].as_str().unwrap().contains("disabled")),
        "{log:#?}"
    );

    let wrong = "0".repeat(64);
    for _ in 0..4 {
        let reply = post_json(&app, DCA_PATH, &dca_message(&bot, &wrong, Some("start_trailing"))).await;
        assert_eq!(reply.status, 401, "{}", reply.text);
    }
    let cut_off = post_json(&app, DCA_PATH, &dca_message(&bot, &secret, Some("start_trailing"))).await;
    assert_eq!((cut_off.status, cut_off.code()), (429, "rate_limited"), "{}", cut_off.text);
    assert!(cut_off.header("retry-after").is_some());
    app.clock.advance(Duration::from_secs(10));
    let back = post_json(&app, DCA_PATH, &dca_message(&bot, &secret, Some("start_trailing"))).await;
    assert_eq!(back.status, 202, "a failure a 10 s later is allowed again: {}", back.text);
}

/// WH-3: with an allowlist, other source addresses get 403 and nothing is recorded.
pub async fn an_ip_allowlist_refuses_other_sources(backend: Backend) {
    let app = app_with(backend, |_| {}).await;
    let cookie = app.signed_in("allowlist@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let changes = json!({"webhook_ip_allowlist": ["tradingview"]});
    let (bot, secret) = signal_bot(&app, &cookie, &account, changes).await;
    // A forged X-Forwarded-For is not believed: the app trusts no proxy.
    let reply = app
        .post_raw(
            DCA_PATH,
            dca_message(&bot, &secret, None).to_string(),
            &[("content-type", "application/json"), ("x-forwarded-for", "52.89.214.238")],
        )
        .await;
    assert_eq!((reply.status, reply.code()), (403, "source_not_allowed"), "{}", reply.text);
    assert!(signal_log(&app, &cookie, &bot).await.is_empty());

    let patched = app
        .send(
            "PATCH",
            &format!("/api/v1/bots/{bot}"),
            Some(json!({"webhook_ip_allowlist": ["tradingview", "127.0.0.0/8"]})),
            Some(&cookie),
            &[],
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    accepted(&post_json(&app, DCA_PATH, &dca_message(&bot, &secret, None)).await);

    let bad = app
        .send(
            "PATCH",
            &format!("/api/v1/bots/{bot}"),
            Some(json!({"webhook_ip_allowlist": ["not an address"]})),
            Some(&cookie),
            &[],
        )
        .await;
    assert_eq!((bad.status, bad.code()), (422, "invalid_input"), "{}", bad.text);
}

/// The Signal-bot format acts on a DCA bot too: `enter_long` on the instrument's pair starts a deal
/// and `exit_long` closes it; `delay_seconds` holds a DCA signal back until it is due.
pub async fn signal_format_and_delays(backend: Backend) {
    let app = app_with(backend, |_| {}).await;
    let cookie = app.signed_in("signal-format@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let (bot, secret) = signal_bot(&app, &cookie, &account, json!({})).await;
    let now = app.clock.now().as_unix_millis() / 1000;
    let timestamp = time::OffsetDateTime::from_unix_timestamp(now)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let message = |action: &str| {
        json!({
            "secret": secret, "max_lag": "300", "timestamp": timestamp, "trigger_price": "30000",
            "tv_exchange": "BINANCE", "tv_instrument": "BTCUSDT", "action": action, "bot_uuid": bot,
            "strategy_info": {"market_position": "long", "market_position_size": "0.01",
                              "prev_market_position": "flat", "prev_market_position_size": "0"},
            "order": {"amount": "0.01", "currency_type": "base"},
        })
    };
    accepted(&post_json(&app, SIGNAL_PATH, &message("enter_long")).await);
    let deal = first_deal(&app, &cookie, &bot).await;
    wait_deal(&app, &cookie, &deal, "the deal to buy", |d| d["status"] == "bought").await;
    accepted(&post_json(&app, SIGNAL_PATH, &message("exit_long")).await);
    wait_deal(&app, &cookie, &deal, "the exit", |d| d["status"] == "panic_sold").await;

    let mut delayed = dca_message(&bot, &secret, None);
    delayed["delay_seconds"] = json!(30);
    let id = accepted(&post_json(&app, DCA_PATH, &delayed).await);
    // Several runner cycles pass (each 50 ms) without the signal being due.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while tokio::time::Instant::now() < deadline {
        assert_eq!(deals_of(&app, &cookie, &bot).await.len(), 1, "not due yet");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = signal_log(&app, &cookie, &bot).await;
    assert_eq!(log.iter().find(|s| s["id"] == id.as_str()).unwrap()["state"], "pending");
    app.clock.advance(Duration::from_secs(30));
    assert_eq!(settled_signal(&app, &cookie, &bot, &id).await["state"], "done");
    assert_eq!(deals_of(&app, &cookie, &bot).await.len(), 2);
}

/// A signal bot (`"type": "signal"`): one entry order of its size per signal, no safety orders, no
/// take profit unless given — it holds until the exit signal; only the Signal-bot message.
pub async fn a_signal_bot_enters_and_exits_on_signals(backend: Backend) {
    let app = app_with(backend, |_| {}).await;
    let cookie = app.signed_in("signal-bot@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let body = |changes: Value| {
        let mut body = json!({
            "type": "signal", "name": "Signals", "exchange_account_id": account, "pairs": ["USDT_BTC"],
            "enabled": true, "base_order_volume": "100",
        });
        for (key, value) in changes.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let refused = app.post("/api/v1/bots", body(json!({"max_safety_orders": 2})), Some(&cookie)).await;
    assert_eq!((refused.status, refused.json["field"].as_str()), (422, Some("max_safety_orders")), "{}", refused.text);
    let refused =
        app.post("/api/v1/bots", body(json!({"strategy_list": [{"strategy": "nonstop"}]})), Some(&cookie)).await;
    assert_eq!((refused.status, refused.json["field"].as_str()), (422, Some("strategy_list")), "{}", refused.text);
    let mut dca = bot_body(&account, json!({}));
    dca.as_object_mut().unwrap().remove("safety_order_volume");
    let refused = app.post("/api/v1/bots", dca, Some(&cookie)).await;
    assert_eq!(
        (refused.status, refused.json["field"].as_str()),
        (422, Some("safety_order_volume")),
        "{}",
        refused.text
    );

    let created = app.post("/api/v1/bots", body(json!({})), Some(&cookie)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["type"], "signal");
    let bot = created.json["id"].as_str().unwrap().to_owned();
    let secret = created.json["webhook_secret"].as_str().unwrap().to_owned();
    let changed =
        app.send("PATCH", &format!("/api/v1/bots/{bot}"), Some(json!({"type": "dca"})), Some(&cookie), &[]).await;
    assert_eq!((changed.status, changed.code()), (422, "invalid_input"), "{}", changed.text);

    let dca_format = post_json(&app, DCA_PATH, &dca_message(&bot, &secret, None)).await;
    assert_eq!((dca_format.status, dca_format.code()), (422, "invalid_signal"), "{}", dca_format.text);
    let message =
        |action: &str| json!({"secret": secret, "bot_uuid": bot, "action": action, "tv_instrument": "BTCUSDT"});
    accepted(&post_json(&app, SIGNAL_PATH, &message("buy")).await);
    let deal = first_deal(&app, &cookie, &bot).await;
    let bought = wait_deal(&app, &cookie, &deal, "the entry", |d| d["status"] == "bought").await;
    assert_eq!(dec(&orders(&bought, "base")[0]["executed_quote"]).round(), 100.into());
    assert!(orders(&bought, "take_profit").is_empty() && orders(&bought, "safety").is_empty(), "{bought:#}");
    assert!(bought["take_profit_price"].is_null(), "{bought:#}");

    // 10 % up: no take profit to fill; the deal holds until the exit signal.
    price(&app, 33_000);
    let id = accepted(&post_json(&app, SIGNAL_PATH, &message("sell")).await);
    let closed = wait_deal(&app, &cookie, &deal, "the exit", |d| d["status"] == "panic_sold").await;
    assert_eq!(closed["close_reason"], "closed_at_market");
    assert!(orders(&closed, "take_profit").is_empty(), "{closed:#}");
    assert!(dec(&closed["profit_quote"]) > Decimal::from(9), "sold near 33,000: {closed:#}");
    assert_eq!(settled_signal(&app, &cookie, &bot, &id).await["state"], "done");

    // With a take profit, the entry gets one.
    let created = app.post("/api/v1/bots", body(json!({"name": "With TP", "take_profit": "2"})), Some(&cookie)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let (bot, secret) =
        (created.json["id"].as_str().unwrap().to_owned(), created.json["webhook_secret"].as_str().unwrap().to_owned());
    let enter = json!({"secret": secret, "bot_uuid": bot, "action": "enter_long", "tv_instrument": "BINANCE:BTCUSDT"});
    accepted(&post_json(&app, SIGNAL_PATH, &enter).await);
    let deal = first_deal(&app, &cookie, &bot).await;
    let bought = wait_deal(&app, &cookie, &deal, "the take profit", |d| count(d, "take_profit", "open") == 1).await;
    let tp = dec(&bought["take_profit_price"]);
    assert!(tp > Decimal::from(33_600) && tp < Decimal::from(33_800), "2 % above the entry at 33,000: {tp}");
}

/// A `Bulwark-Signature` header for `body` signed at `t` (Unix seconds) with each of `keys`.
fn signature(keys: &[&str], t: i64, body: &str) -> String {
    let parts: Vec<String> = keys
        .iter()
        .map(|key| webhook::signature::header_value(key.as_bytes(), t, body.as_bytes()))
        .map(|value| value.split_once(",v1=").expect("t=..,v1=..").1.to_owned())
        .collect();
    format!("t={t},v1={}", parts.join(",v1="))
}

/// The same header computed by Python's `hmac` module: a verifier that shares no code with ours.
fn python_signature(key: &str, t: i64, body: &str) -> String {
    let script = "import hmac, hashlib, sys\n\
                  key, t, body = sys.argv[1].encode(), sys.argv[2], sys.argv[3].encode()\n\
                  print('t=' + t + ',v1=' + hmac.new(key, t.encode() + b'.' + body, hashlib.sha256).hexdigest())";
    let out = std::process::Command::new("python3")
        .args(["-c", script, key, &t.to_string(), body])
        .output()
        .expect("python3 runs (the test script installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn post_signed(app: &TestApp, path: &str, body: &str, header: &str) -> Reply {
    app.post_raw(path, body.to_owned(), &[("content-type", "application/json"), ("bulwark-signature", header)]).await
}

/// A fresh session of the signed-mode test's user (its first one lapsed with the clock moved a day).
async fn cookie_after(app: &TestApp) -> String {
    app.login("signed@example.com", PASSWORD).await
}

fn unix_now(app: &TestApp) -> i64 {
    app.clock.now().as_unix_millis() / 1000
}

/// WH-4: signed mode. A request bearing `Bulwark-Signature` is taken without the secret in its
/// body when its HMAC matches under the bot's secret (a Python-made header included); a tampered
/// body, another key, an unknown bot or a malformed header get 401 `invalid_signature`, a `t` more
/// than 300 s off 422 `stale_signal`. `webhook_require_signature` refuses unsigned requests; during
/// a rotation both secrets sign until the grace period ends; the kill switch ends signing too.
/// Each accepted signed signal is acted on once.
pub async fn signed_requests_are_checked_and_can_be_required(backend: Backend) {
    let app = app_with(backend, |_| {}).await;
    let cookie = app.signed_in("signed@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let (bot, secret) = signal_bot(&app, &cookie, &account, json!({})).await;
    let message = |action: Option<&str>| {
        let mut m = dca_message(&bot, "", action);
        m.as_object_mut().unwrap().remove("email_token");
        m.to_string()
    };

    let start = message(None);
    let t = unix_now(&app);
    let id = accepted(&post_signed(&app, DCA_PATH, &start, &python_signature(&secret, t, &start)).await);
    let deal = first_deal(&app, &cookie, &bot).await;
    assert_eq!(settled_signal(&app, &cookie, &bot, &id).await["state"], "done");
    assert_eq!(signature(&[&secret], t, &start), python_signature(&secret, t, &start), "one scheme");

    let close = message(Some("close_at_market_price"));
    let other_bot = "0b7d4a9e-35a1-4c55-9b1e-1a2b3c4d5e6f";
    let for_other = close.replace(&bot, other_bot);
    let with_wrong_body_secret = {
        let mut m: Value = serde_json::from_str(&close).unwrap();
        m["email_token"] = json!("f".repeat(64));
        m.to_string()
    };
    let cases = [
        (close.clone(), signature(&[&secret], t, &start), 401, "invalid_signature", "a signature of another body"),
        (close.clone(), signature(&["f".repeat(64).as_str()], t, &close), 401, "invalid_signature", "another key"),
        (for_other.clone(), signature(&[&secret], t, &for_other), 401, "invalid_signature", "an unknown bot"),
        (close.clone(), format!("t={t}"), 401, "invalid_signature", "no v1"),
        (close.clone(), format!("t={t},v1=zz"), 401, "invalid_signature", "not hex"),
        (close.clone(), signature(&[&secret], t - 301, &close), 422, "stale_signal", "t too old"),
        (close.clone(), signature(&[&secret], t + 301, &close), 422, "stale_signal", "t ahead"),
        (
            with_wrong_body_secret.clone(),
            signature(&[&secret], t, &with_wrong_body_secret),
            401,
            "invalid_token",
            "a wrong secret in the body, whatever the signature",
        ),
    ];
    let mut mismatch_bodies = Vec::new();
    for (body, header, status, code, what) in cases {
        let reply = post_signed(&app, DCA_PATH, &body, &header).await;
        assert_eq!((reply.status, reply.code()), (status, code), "{what}: {}", reply.text);
        if what == "another key" || what == "an unknown bot" {
            mismatch_bodies.push(reply.text);
        }
    }
    assert_eq!(mismatch_bodies[0], mismatch_bodies[1], "an unknown bot looks like a wrong key");
    assert_eq!(deals_of(&app, &cookie, &bot).await[0]["status"], "bought", "nothing refused was acted on");
    let t = unix_now(&app);

    // Signed mode required: the unsigned message with the right secret is refused, a signed one taken.
    let patch = |changes: Value, cookie: String| {
        let path = format!("/api/v1/bots/{bot}");
        let app = &app;
        async move { app.send("PATCH", &path, Some(changes), Some(&cookie), &[]).await }
    };
    let patched = patch(json!({"webhook_require_signature": true}), cookie.clone()).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let unsigned = post_json(&app, DCA_PATH, &dca_message(&bot, &secret, Some("close_at_market_price"))).await;
    assert_eq!((unsigned.status, unsigned.code()), (401, "invalid_signature"), "{}", unsigned.text);
    let bad = patch(json!({"webhook_require_signature": "yes"}), cookie.clone()).await;
    assert_eq!((bad.status, bad.code()), (422, "invalid_input"), "{}", bad.text);

    // Rotation: the old secret still signs inside the grace period, alone or beside the new one.
    let rotated = app.post(&format!("/api/v1/bots/{bot}/rotate_webhook_secret"), json!({}), Some(&cookie)).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_secret = rotated.json["webhook_secret"].as_str().unwrap().to_owned();
    let add = |volume: u32| {
        let mut m: Value = serde_json::from_str(&message(Some("add_funds_in_quote"))).unwrap();
        m["volume"] = json!(volume);
        m.to_string()
    };
    let (first, second, third) = (add(10), add(11), add(12));
    accepted(&post_signed(&app, DCA_PATH, &first, &signature(&[&secret], t, &first)).await);
    accepted(
        &post_signed(&app, DCA_PATH, &second, &signature(&["f".repeat(64).as_str(), &new_secret], t, &second)).await,
    );
    app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let t = unix_now(&app);
    let old = post_signed(&app, DCA_PATH, &third, &signature(&[&secret], t, &third)).await;
    assert_eq!((old.status, old.code()), (401, "invalid_signature"), "the grace period is over: {}", old.text);
    accepted(&post_signed(&app, DCA_PATH, &third, &signature(&[&new_secret, &secret], t, &third)).await);
    let filled = wait_deal(&app, &cookie_after(&app).await, &deal, "three added funds", |d| {
        count(d, "add_funds", "filled") == 3
    })
    .await;
    assert_eq!(orders(&filled, "add_funds").len(), 3, "each signed signal acted on once");

    // The kill switch revokes the secrets, sealed copies included: nothing signs any more, and signed
    // mode cannot be turned on again until a rotation makes a new secret.
    let cookie = cookie_after(&app).await;
    let killed = app.post("/api/v1/kill-switch", json!({}), Some(&cookie)).await;
    assert_eq!(killed.status, 200, "{}", killed.text);
    let last = add(13);
    let after = post_signed(&app, DCA_PATH, &last, &signature(&[&new_secret, &secret], t, &last)).await;
    assert_eq!((after.status, after.code()), (401, "invalid_signature"), "{}", after.text);
    let off = patch(json!({"webhook_require_signature": false, "name": "edited"}), cookie.clone()).await;
    assert_eq!(off.status, 200, "a revoked bot can still be edited: {}", off.text);
    let on = patch(json!({"webhook_require_signature": true}), cookie.clone()).await;
    assert_eq!((on.status, on.code()), (422, "invalid_input"), "{}", on.text);

    let audit = app.get("/api/v1/audit-log?limit=200", Some(&cookie)).await;
    assert!(!audit.text.contains(&secret) && !audit.text.contains(&new_secret), "no secret in the audit log");
    let rejected = audit.json.as_array().unwrap().iter().filter(|e| e["kind"] == "webhook.rejected").count();
    assert!(rejected >= 8, "the refusals on the bot are audited: {rejected}");
}

/// A bot's signals are acted on in the order they were accepted, also when they arrive back to back
/// (the signal task works on several bots side by side, but on one bot in turn, and the cycle
/// leaves a bot alone while the task is on it): five add-funds signals of rising volume, posted
/// without waiting, become the deal's add-funds orders in that order; another bot's signals in
/// between do not disturb them.
pub async fn a_bots_signals_are_acted_on_in_order(backend: Backend) {
    let app = app_with(backend, |_| {}).await;
    let cookie = app.signed_in("ordered@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let (bot, secret) = signal_bot(&app, &cookie, &account, json!({})).await;
    let (other, other_secret) = signal_bot(&app, &cookie, &account, json!({"name": "Other"})).await;
    accepted(&post_json(&app, DCA_PATH, &dca_message(&bot, &secret, None)).await);
    let deal = first_deal(&app, &cookie, &bot).await;
    wait_deal(&app, &cookie, &deal, "the base order", |d| d["status"] == "bought").await;

    let volumes = [10, 11, 12, 13, 14];
    let mut ids = Vec::new();
    for (i, volume) in volumes.iter().enumerate() {
        let mut add = dca_message(&bot, &secret, Some("add_funds_in_quote"));
        add["volume"] = json!(volume);
        ids.push(accepted(&post_json(&app, DCA_PATH, &add).await));
        if i == 1 {
            accepted(&post_json(&app, DCA_PATH, &dca_message(&other, &other_secret, None)).await);
        }
    }
    let filled = wait_deal(&app, &cookie, &deal, "five added funds", |d| count(d, "add_funds", "filled") == 5).await;
    let mut added: Vec<(u64, Decimal)> = orders(&filled, "add_funds")
        .iter()
        .map(|o| {
            let id = o["client_order_id"].as_str().unwrap();
            let seq = id.rsplit('-').next().unwrap().parse::<u64>().unwrap();
            (seq, dec(&o["executed_quote"]).round())
        })
        .collect();
    added.sort_by_key(|(seq, _)| *seq);
    let in_order: Vec<Decimal> = added.into_iter().map(|(_, quote)| quote).collect();
    assert_eq!(in_order, volumes.map(Decimal::from), "the deal's add-funds orders follow the signals' order");
    for id in &ids {
        assert_eq!(settled_signal(&app, &cookie, &bot, id).await["state"], "done");
    }
    first_deal(&app, &cookie, &other).await;
}

crate::on_both!(
    a_bots_signals_are_acted_on_in_order,
    signed_requests_are_checked_and_can_be_required,
    dca_alerts_start_add_funds_and_close_a_deal,
    wrong_and_foreign_secrets_get_the_same_401,
    replays_stale_oversized_and_malformed_signals_are_refused,
    floods_and_guessing_are_rate_limited,
    an_ip_allowlist_refuses_other_sources,
    signal_format_and_delays,
    a_signal_bot_enters_and_exits_on_signals,
);
