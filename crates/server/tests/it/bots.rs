//! `POST /api/v1/bots/preview`: the DCA plan of `spec/dca.md`, raw and rounded to a paper market.

use domain::Decimal;
use serde_json::{Value, json};

use crate::{Backend, PASSWORD, TestApp, app};

const PREVIEW: &str = "/api/v1/bots/preview";

/// `spec/dca.md` Example A, with values as strings and as numbers.
fn example_a() -> Value {
    json!({
        "base_order_volume": "10",
        "safety_order_volume": 10,
        "max_safety_orders": 3,
        "active_safety_orders_count": 1,
        "safety_order_step_percentage": "1",
        "martingale_step_coefficient": 1,
        "martingale_volume_coefficient": "1",
        "take_profit": "1",
        "take_profit_type": "total",
        "strategy": "long",
        "start_price": "100",
    })
}

fn with(mut body: Value, changes: Value) -> Value {
    for (key, value) in changes.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

fn places(raw: &Value, dp: u32) -> String {
    // No value here ends on an exact midpoint, so banker's rounding gives the table's figures.
    let value: Decimal = raw.as_str().expect("a decimal string").parse().unwrap();
    format!("{:.*}", dp as usize, value.round_dp(dp))
}

async fn paper_account(app: &TestApp, cookie: &str) -> String {
    let created = app.post("/api/v1/exchange-accounts", json!({"exchange": "paper", "name": "P"}), Some(cookie)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn example_a_through_the_api() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("preview@example.com", PASSWORD).await;
    let reply = app.post(PREVIEW, example_a(), Some(&cookie)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let orders = reply.json["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 4);
    let exact = [
        ("base", 0, "0", "100", "10", "10"),
        ("safety", 1, "1", "99", "10", "20"),
        ("safety", 2, "2", "98", "10", "30"),
        ("safety", 3, "3", "97", "10", "40"),
    ];
    let four_places =
        [("100.0000", "101.0000"), ("99.4975", "100.4925"), ("98.9933", "99.9832"), ("98.4873", "99.4722")];
    for ((order, row), (average, take_profit)) in orders.iter().zip(exact).zip(four_places) {
        assert_eq!(order["kind"], row.0);
        assert_eq!(order["index"], row.1);
        assert_eq!(order["deviation_percent"], row.2);
        assert_eq!(order["price"], row.3);
        assert_eq!(order["size_quote"], row.4);
        assert_eq!(order["total_quote"], row.5);
        assert_eq!(places(&order["average_price"], 4), average);
        assert_eq!(places(&order["take_profit_price"], 4), take_profit);
    }
    assert_eq!(orders[0]["size_base"], "0.1");
    assert_eq!(orders[0]["average_price"], "100");
    assert_eq!(orders[0]["take_profit_price"], "101");
    assert_eq!(reply.json["max_funds_per_deal"], "40");
    assert_eq!(reply.json["max_deviation_percent"], "3");
}

#[tokio::test]
async fn a_short_plan_sells_upwards() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("short@example.com", PASSWORD).await;
    let reply = app.post(PREVIEW, with(example_a(), json!({"strategy": "short"})), Some(&cookie)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let orders = reply.json["orders"].as_array().unwrap();
    let prices: Vec<&str> = orders.iter().map(|o| o["price"].as_str().unwrap()).collect();
    assert_eq!(prices, ["100", "101", "102", "103"]);
    assert!(orders.iter().all(|o| o["side"] == "sell"));
    // Take profit buys back 1 % below the average sell price.
    assert_eq!(orders[0]["take_profit_price"], "99");
    let decimal = |raw: &Value| raw.as_str().unwrap().parse::<Decimal>().unwrap();
    let (last_average, last_take_profit) =
        (decimal(&orders[3]["average_price"]), decimal(&orders[3]["take_profit_price"]));
    assert!(last_take_profit < last_average && last_average > Decimal::ONE_HUNDRED);
}

#[tokio::test]
async fn invalid_settings_name_the_field() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("invalid@example.com", PASSWORD).await;
    let cases = [
        (json!({"base_order_volume": "0"}), "base_order_volume"),
        (json!({"max_safety_orders": 201}), "max_safety_orders"),
        (json!({"max_safety_orders": -1}), "max_safety_orders"),
        (json!({"martingale_volume_coefficient": "11"}), "martingale_volume_coefficient"),
        (json!({"martingale_step_coefficient": "abc"}), "martingale_step_coefficient"),
        (json!({"take_profit_type": "half"}), "take_profit_type"),
        (json!({"strategy": "sideways"}), "strategy"),
        (json!({"safety_order_volume_type": "percent"}), "safety_order_volume_type"),
        (json!({"start_price": "0"}), "start_price"),
        // 100 safety orders 1 % apart reach a price of zero.
        (json!({"max_safety_orders": 100, "active_safety_orders_count": 1}), "safety_order_step_percentage"),
        // 10^199 does not fit.
        (
            json!({"max_safety_orders": 200, "martingale_volume_coefficient": 10, "strategy": "short"}),
            "martingale_volume_coefficient",
        ),
        (json!({"pair": "USDT_BTC"}), "exchange_account_id"),
        (json!({"color": "red"}), "body"),
        (json!({"base_order_volume_type": "xbt"}), "base_order_volume_type"),
        (
            json!({"take_profit_steps": [{"amount_percentage": "60", "profit_percentage": "1"},
                                         {"amount_percentage": "30", "profit_percentage": "2"}]}),
            "take_profit_steps",
        ),
        (json!({"take_profit_steps": [{"amount_percentage": "100"}]}), "take_profit_steps"),
        (
            json!({"take_profit_steps": [{"amount_percentage": "50", "profit_percentage": "1"},
                                         {"amount_percentage": "50", "profit_percentage": "2"}]}),
            "take_profit",
        ),
        (json!({"trailing_enabled": true}), "trailing_deviation"),
        (json!({"trailing_enabled": true, "trailing_deviation": "1"}), "trailing_deviation"),
        (json!({"tsl_enabled": true}), "tsl_enabled"),
        (json!({"stop_loss_percentage": "3", "sl_to_breakeven_enabled": true}), "sl_to_breakeven_enabled"),
        (json!({"stop_loss_type": "stop_everything"}), "stop_loss_type"),
        (json!({"stop_loss_percentage": "100"}), "stop_loss_percentage"),
    ];
    for (changes, field) in cases {
        let reply = app.post(PREVIEW, with(example_a(), changes.clone()), Some(&cookie)).await;
        assert_eq!(
            (reply.status, reply.json["error"].as_str()),
            (422, Some("invalid_input")),
            "{changes}: {}",
            reply.text
        );
        assert_eq!(reply.json["field"], field, "{changes}: {}", reply.text);
    }
}

/// Two take-profit steps (no `take_profit`: the last step's profit stands for it), and volumes in
/// the base currency.
#[tokio::test]
async fn take_profit_steps_and_base_volumes_in_the_preview() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("steps@example.com", PASSWORD).await;
    let mut body = with(
        example_a(),
        json!({"take_profit_steps": [{"amount_percentage": "50", "profit_percentage": "1"},
                                     {"amount_percentage": "50", "profit_percentage": "2"}],
               "trailing_enabled": true, "trailing_deviation": "0.5",
               "stop_loss_percentage": "5", "sl_to_breakeven_enabled": true, "tsl_enabled": true}),
    );
    body.as_object_mut().unwrap().remove("take_profit");
    let reply = app.post(PREVIEW, body, Some(&cookie)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let orders = reply.json["orders"].as_array().unwrap();
    let targets: Vec<Vec<String>> = orders
        .iter()
        .map(|o| o["take_profit_targets"].as_array().unwrap().iter().map(|p| places(p, 4)).collect())
        .collect();
    assert_eq!(
        targets,
        [["101.0000", "102.0000"], ["100.4925", "101.4874"], ["99.9832", "100.9731"], ["99.4722", "100.4571"],]
    );
    let base = with(example_a(), json!({"base_order_volume": "0.1", "base_order_volume_type": "base_currency"}));
    let reply = app.post(PREVIEW, base, Some(&cookie)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let orders = reply.json["orders"].as_array().unwrap();
    assert_eq!((&orders[0]["size_base"], &orders[0]["size_quote"]), (&json!("0.1"), &json!("10")));
    assert_eq!(reply.json["max_funds_per_deal"], "40");
}

#[tokio::test]
async fn a_preview_needs_a_session() {
    let app = app(Backend::Sqlite).await;
    let reply = app.post(PREVIEW, example_a(), None).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
}

#[tokio::test]
async fn a_plan_is_rounded_to_a_paper_market_and_tiny_orders_are_reported() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("rounding@example.com", PASSWORD).await;
    let id = paper_account(&app, &cookie).await;
    let body = json!({
        "base_order_volume": "20",
        "safety_order_volume": "10",
        "max_safety_orders": 2,
        "safety_order_step_percentage": "1.33",
        "take_profit": "1.5",
        "start_price": "30000.005",
        "exchange_account_id": id,
        "pair": "USDT_BTC",
    });
    let reply = app.post(PREVIEW, body.clone(), Some(&cookie)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["placeable"], true, "{}", reply.text);
    let orders = reply.json["orders"].as_array().unwrap();
    // A buy price rounds down to the tick, the quantity down to the step.
    assert_eq!(orders[0]["price"], "30000");
    assert_eq!(orders[0]["planned_price"], "30000.005");
    assert_eq!(orders[0]["size_base"], "0.00066");
    assert_eq!(orders[0]["size_quote"], "19.8");
    // 30000.005 · (1 − 1.33 %) = 29601.0049335 → 29601.00
    assert_eq!(orders[1]["price"], "29601");
    for order in orders {
        assert_eq!(order["placeable"], true);
        assert_eq!(order["problems"], json!([]));
        let take_profit = order["take_profit_price"].as_str().unwrap();
        assert!(take_profit.split('.').nth(1).is_none_or(|d| d.len() <= 2), "on the tick: {take_profit}");
    }

    // Safety orders of 1 USDT are under the 5 USDT minimum order value.
    let tiny = with(body.clone(), json!({"safety_order_volume": "1"}));
    let reply = app.post(PREVIEW, tiny, Some(&cookie)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["placeable"], false);
    let orders = reply.json["orders"].as_array().unwrap();
    assert_eq!(orders[0]["placeable"], true);
    assert_eq!(orders[1]["placeable"], false);
    assert_eq!(orders[1]["problems"], json!(["Filter failure: NOTIONAL"]));

    // Someone else's account is not found; an unlisted pair names the pair.
    let other = app.signed_in("other@example.com", PASSWORD).await;
    assert_eq!(app.post(PREVIEW, body.clone(), Some(&other)).await.status, 404);
    let unknown = app.post(PREVIEW, with(body, json!({"pair": "USDT_NOPE"})), Some(&cookie)).await;
    assert_eq!((unknown.status, unknown.json["field"].as_str()), (422, Some("pair")), "{}", unknown.text);
}

/// The new-bot form previews a signal bot with `bot_type: signal`: one entry order, no take profit
/// needed, and the ladder refused as on creation.
#[tokio::test]
async fn a_signal_bot_preview_is_its_one_entry() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("signal-preview@example.com", PASSWORD).await;
    let body = json!({"bot_type": "signal", "base_order_volume": "25", "strategy": "long", "start_price": "100"});
    let reply = app.post(PREVIEW, body.clone(), Some(&cookie)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let orders = reply.json["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{}", reply.text);
    assert_eq!((orders[0]["kind"].as_str(), places(&orders[0]["size_quote"], 2).as_str()), (Some("base"), "25.00"));
    let laddered = app.post(PREVIEW, with(body, json!({"max_safety_orders": 3})), Some(&cookie)).await;
    assert_eq!((laddered.status, laddered.code()), (422, "invalid_input"), "{}", laddered.text);
    assert_eq!(laddered.json["field"], "max_safety_orders", "{}", laddered.text);
}
