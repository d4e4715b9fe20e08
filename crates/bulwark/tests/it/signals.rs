//! A webhook signal is durable once answered 202 (`spec/webhooks.md`, WH-2): `bulwark serve` is
//! killed with SIGKILL right after the answer and restarted on the same data dir; the signal is
//! then acted on exactly once. The venue is a `bulwark exchange-sim` of its own (the shared paper
//! market), which outlives every `serve`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Running, exchange_sim, serve};

fn deals(node: &Running, cookie: &str, bot: &str) -> Vec<Value> {
    let (status, deals, _) = node.get(&format!("/api/v1/deals?bot_id={bot}"), Some(cookie));
    assert_eq!(status, 200, "{deals}");
    deals.as_array().unwrap().clone()
}

/// Waits (at most 30 s) until the signal is no longer pending; returns its log entry.
fn settled(node: &Running, cookie: &str, bot: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, log, _) = node.get(&format!("/api/v1/bots/{bot}/signals"), Some(cookie));
        assert_eq!(status, 200, "{log}");
        let entry = log.as_array().unwrap().iter().find(|s| s["id"] == id).cloned();
        let entry = entry.unwrap_or_else(|| panic!("signal {id} survived the crash: {log:#}"));
        if entry["state"] != "pending" {
            return entry;
        }
        assert!(Instant::now() < deadline, "signal {id} still pending after 30 s: {entry:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn restart(node: Running, data: &Path, env: &[(&str, &str)]) -> Running {
    let mut node = node;
    // SIGKILL: no graceful shutdown, no lease released.
    node.child.kill().expect("SIGKILL");
    node.child.wait().expect("reaped");
    drop(node);
    serve(data, env)
}

#[test]
fn a_signal_answered_202_is_acted_on_once_after_a_crash() {
    let (_sim, sim_url) = exchange_sim(&["--volatility", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("BULWARK_PAPER_MARKET", sim_url.as_str())];
    let mut node = serve(&data, &env);
    let cookie = node.sign_up(&data, "crash-signal@example.com");
    let body = json!({"exchange": "paper", "name": "Paper", "balances": {"USDT": "10000"}});
    let (status, account, _) = node.post("/api/v1/exchange-accounts", body, Some(&cookie));
    assert_eq!(status, 201, "{account}");
    let bot_body = json!({
        "type": "dca", "name": "Signals", "exchange_account_id": account["id"], "pairs": ["USDT_BTC"],
        "enabled": true, "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 1,
        "safety_order_step_percentage": "5", "take_profit": "5", "strategy": "long",
        "max_active_deals": 5, "allowed_deals_on_same_pair": 5,
        "strategy_list": [{"strategy": "trading_view"}],
    });
    let (status, bot, _) = node.post("/api/v1/bots", bot_body, Some(&cookie));
    assert_eq!(status, 201, "{bot}");
    let secret = bot["webhook_secret"].as_str().unwrap().to_owned();
    let bot = bot["id"].as_str().unwrap().to_owned();

    // Round 1 is delayed 2 s: certainly not acted on before the kill. Round 2 is due at once: the
    // kill races the runner, and either way the restarted node must not act on it a second time.
    for (round, delay) in [(1_usize, 2), (2, 0)] {
        let message = json!({
            "message_type": "bot", "bot_id": bot, "email_token": secret, "delay_seconds": delay,
            "pair": "USDT_BTC",
        });
        let (status, answer, _) = node.post("/trade_signal/trading_view", message, None);
        assert_eq!(status, 202, "{answer}");
        let id = answer["signal_id"].as_str().unwrap().to_owned();
        node = restart(node, &data, &env);
        let entry = settled(&node, &cookie, &bot, &id);
        assert_eq!(entry["state"], "done", "round {round}: {entry:#}");
        let now = deals(&node, &cookie, &bot);
        assert_eq!(now.len(), round, "round {round}: one deal per signal: {now:#?}");
        assert!(entry["outcome"].as_str().unwrap().contains(now[0]["id"].as_str().unwrap()), "{entry:#}");
    }
}
