//! `bulwark exchange-sim` as a user runs it: the state file across a stop (SIGTERM) and a restart,
//! a replayed candle file served as klines, accounts from a file, and refused options.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use serde_json::{Value, json};

use crate::{Running, exchange_sim, http};

const KEY: &str = "SimApiKey0000000000000000000000000000000000000000000000000000001";
const SECRET: &str = "SimApiSecret000000000000000000000000000000000000000000000000001";

/// A SIGNED request to the simulator with its default account, all parameters in the query.
fn signed(base: &str, method: http::Method, path: &str, params: &str) -> (u16, Value) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis();
    let payload = if params.is_empty() { format!("timestamp={now}") } else { format!("{params}&timestamp={now}") };
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let signature: String = hmac::sign(&key, payload.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let request = http::client()
        .request(method, format!("{base}{path}?{payload}&signature={signature}"))
        .header("X-MBX-APIKEY", KEY);
    let (status, json, _) = http::run(request);
    (status, json)
}

/// Sends SIGTERM and waits for the process to exit; returns whether it exited successfully.
fn terminate(running: &mut Running) -> bool {
    let pid = rustix::process::Pid::from_child(&running.child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = running.child.try_wait().expect("wait") {
            return status.success();
        }
        assert!(Instant::now() < deadline, "exchange-sim did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_stopped_and_restarted_simulator_keeps_its_orders_and_balances_in_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim-state.json");
    let state_arg = state.to_str().unwrap();
    let args = ["--state", state_arg, "--volatility", "0"];
    let (mut first, url) = exchange_sim(&args);
    let (status, placed) = signed(
        &url,
        http::Method::POST,
        "/api/v3/order",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.10000&price=25000.00&newClientOrderId=keep-me",
    );
    assert_eq!((status, placed["status"].clone()), (200, json!("NEW")), "{placed}");
    let order_id = placed["orderId"].as_u64().unwrap();
    assert!(terminate(&mut first), "a clean exit on SIGTERM");
    assert!(state.exists(), "the state file is written on shutdown");
    drop(first);

    let (_second, url) = exchange_sim(&args);
    let (status, order) = signed(&url, http::Method::GET, "/api/v3/order", "symbol=BTCUSDT&origClientOrderId=keep-me");
    assert_eq!(status, 200, "{order}");
    assert_eq!((order["orderId"].clone(), order["status"].clone()), (json!(order_id), json!("NEW")));
    let (_, account) = signed(&url, http::Method::GET, "/api/v3/account", "omitZeroBalances=true");
    let usdt = account["balances"].as_array().unwrap().iter().find(|b| b["asset"] == "USDT").cloned().unwrap();
    assert_eq!(usdt, json!({"asset": "USDT", "free": "7500.00000000", "locked": "2500.00000000"}));
    let (_, next) = signed(
        &url,
        http::Method::POST,
        "/api/v3/order",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00100&price=20000.00",
    );
    assert_eq!(next["orderId"], order_id + 1, "ids go on: {next}");
}

#[test]
fn a_replayed_candle_file_moves_the_price_and_is_served_as_klines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("btcusdt-1m.csv");
    std::fs::write(
        &file,
        "1624559520000,34970.90,35047.03,34800.01,35047.03,1.5,1624559579999,52000.1,37,0.7,24000.5,0\n\
         1624559580000,35047.03,35100.00,34990.00,35010.50,2.25,1624559639999,78800,41,1.1,38500,0\n\
         1624559640000,35010.50,35020.00,34500.00,34600.00,0.5,1624559699999,17300,3,0.2,6920,0\n",
    )
    .unwrap();
    let replay = format!("BTCUSDT={}", file.display());
    let (sim, _) = exchange_sim(&["--replay", &replay, "--speed", "50", "--volatility", "0"]);
    // Waits until the three candles have been played (an event), with a deadline.
    let deadline = Instant::now() + Duration::from_secs(30);
    let klines = loop {
        let (status, klines, _) = sim.get("/api/v3/klines?symbol=BTCUSDT&interval=1m", None);
        assert_eq!(status, 200, "{klines}");
        if klines.as_array().is_some_and(|rows| rows.len() == 3) {
            break klines;
        }
        assert!(Instant::now() < deadline, "the replay did not play: {klines}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        klines[1],
        json!([
            1_624_559_580_000_i64,
            "35047.03000000",
            "35100.00000000",
            "34990.00000000",
            "35010.50000000",
            "2.25000000",
            1_624_559_639_999_i64,
            "78800.00000000",
            41,
            "1.10000000",
            "38500.00000000",
            "0"
        ])
    );
    let (_, ticker, _) = sim.get("/api/v3/ticker/price?symbol=BTCUSDT", None);
    assert_eq!(ticker["price"], "34600.00000000", "the price ends at the last close");
    let (_, still, _) = sim.get("/api/v3/ticker/price?symbol=ETHUSDT", None);
    assert_eq!(still["price"], "2000.00000000", "--volatility 0 keeps the other symbol still");
}

#[test]
fn accounts_come_from_a_toml_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.toml");
    std::fs::write(
        &file,
        format!(
            "[[account]]\napi_key = \"{KEY}\"\nsecret = \"{SECRET}\"\nbalances = {{ USDT = \"42.5\" }}\n\
             permissions = {{ withdrawals = true }}\n"
        ),
    )
    .unwrap();
    let (sim, url) = exchange_sim(&["--accounts", file.to_str().unwrap()]);
    let (status, restrictions) = signed(&url, http::Method::GET, "/sapi/v1/account/apiRestrictions", "");
    assert_eq!((status, restrictions["enableWithdrawals"].clone()), (200, json!(true)), "{restrictions}");
    let (_, account) = signed(&url, http::Method::GET, "/api/v3/account", "omitZeroBalances=true");
    assert_eq!(account["balances"], json!([{"asset": "USDT", "free": "42.50000000", "locked": "0.00000000"}]));
    drop(sim);
}

#[test]
fn bad_exchange_sim_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("candles.csv");
    std::fs::write(&file, "1000,1,2,0.5,1.5,10\n").unwrap();
    let refused = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .args(["exchange-sim", "--bind", "127.0.0.1:0"])
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} must be refused");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let replay = format!("XRPUSDT={}", file.display());
    assert!(refused(&["--replay", &replay]).contains("XRPUSDT"));
    assert!(refused(&["--replay", "BTCUSDT=/nonexistent/candles.csv"]).contains("candle file"));
    assert!(refused(&["--faults", "5xx=2"]).contains("faults"));
    assert!(refused(&["--faults", "teapot=0.1"]).contains("teapot"));
    assert!(refused(&["--volatility", "0.5"]).contains("volatility"));
    assert!(refused(&["--speed", "0"]).contains("--speed"));
    let toml = dir.path().join("a.toml");
    std::fs::write(&toml, "[[account]]\napi_key = \"A1\"\nsecret = \"s\"\n").unwrap();
    assert!(refused(&["--accounts", toml.to_str().unwrap(), "--api-key", "Other1"]).contains("--api-key"));
}
