//! `BULWARK_LOG_FORMAT`: `serve` writes one JSON object per log line when asked (timestamp, level,
//! message and fields, the request span's fields), and refuses a format it does not know, naming
//! the variable. `BULWARK_METRICS_TOKEN` is checked at start without being repeated.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{Running, http, serve_refuses, spawn_reading_stdout};

/// Checks one log line: a JSON object with a timestamp, a level and something said (a message or
/// fields of its own).
fn json_line(line: &str) -> Value {
    let value: Value = serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
    let object = value.as_object().unwrap_or_else(|| panic!("not an object: {line}"));
    assert!(object.get("timestamp").and_then(Value::as_str).is_some_and(|t| !t.is_empty()), "no timestamp: {line}");
    let level = object.get("level").and_then(Value::as_str).unwrap_or_else(|| panic!("no level: {line}"));
    assert!(["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level), "{line}");
    let said = object.keys().any(|k| !["timestamp", "level", "span", "spans"].contains(&k.as_str()));
    assert!(said, "neither a message nor fields: {line}");
    value
}

#[test]
fn serve_writes_one_json_object_per_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulwark"));
    command
        .arg("serve")
        .env_clear()
        .env("BULWARK_DATA_DIR", dir.path().join("data"))
        .env("BULWARK_BIND", "127.0.0.1:0")
        .env("BULWARK_LOG", "info")
        .env("BULWARK_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (child, lines) = spawn_reading_stdout(&mut command);
    let mut child = Some(child);
    let mut seen = Vec::new();
    let address = loop {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) else {
            let mut child = child.take().unwrap();
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "serve did not say where it listens; stdout {seen:?}; stderr {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let value = json_line(&line);
        seen.push(line);
        if let Some(address) = value.get("address").and_then(Value::as_str) {
            assert!(value["message"].as_str().is_some_and(|m| m.contains("listening")), "{value}");
            break address.to_owned();
        }
    };
    let mut app = Running { child: child.take().unwrap(), base: format!("http://{address}"), lines };

    assert_eq!(app.get("/healthz", None).0, 200);
    let metrics = http::run_text(http::client().get(format!("{}/metrics", app.base)));
    assert!(metrics.contains("bulwark_build_info{version="), "{metrics}");
    // The request's own line carries its span's fields (method and path, never the query).
    loop {
        let line = app.lines.recv_timeout(Duration::from_secs(30)).expect("a log line for the request");
        let value = json_line(&line);
        seen.push(line);
        if value["span"]["path"] == "/healthz" && value.get("status").is_some() {
            assert_eq!(value["span"]["method"], "GET", "{value}");
            assert_eq!(value["status"], 200, "fields are flattened into the object: {value}");
            assert!(value["spans"].as_array().is_some_and(|s| !s.is_empty()), "{value}");
            break;
        }
    }

    let _ = app.child.kill();
    let _ = app.child.wait();
    // Whatever it wrote before it stopped: the reader ends at EOF.
    while let Ok(line) = app.lines.recv_timeout(Duration::from_secs(10)) {
        json_line(&line);
        seen.push(line);
    }
    let mut stderr = String::new();
    if let Some(mut err) = app.child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        json_line(line);
    }
    assert!(seen.len() >= 5, "{seen:?}");
}

#[test]
fn an_unknown_log_format_is_refused_naming_the_variable() {
    let stderr = serve_refuses(&[("BULWARK_LOG_FORMAT", "xml")]);
    assert!(stderr.contains("BULWARK_LOG_FORMAT"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(["exchange-sim", "--bind", "127.0.0.1:0"])
        .env_clear()
        .env("BULWARK_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert!(!out.status.success(), "exchange-sim takes the variable too");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("BULWARK_LOG_FORMAT"), "{stderr}");
}

#[test]
fn a_weak_metrics_token_is_refused_without_repeating_it() {
    let token = "short-guessable";
    let stderr = serve_refuses(&[("BULWARK_METRICS_TOKEN", token)]);
    assert!(stderr.contains("BULWARK_METRICS_TOKEN"), "{stderr}");
    assert!(!stderr.contains(token), "the refusal repeats the token: {stderr}");
}
