//! `bulwark doctor` against real files: the README's setup passes, each broken piece is named with
//! its fix, and nothing is created or changed.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use super::serve;

/// Runs `bulwark doctor` with only `env` (the Binance URL points at a closed loopback port so no
/// test reaches the internet); returns the exit code and stdout.
fn doctor(env: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulwark"));
    command.arg("doctor").env_clear().env("BULWARK_BINANCE_URL", format!("http://127.0.0.1:{}", closed_port()));
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn fail_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|line| line.starts_with("FAIL")).collect()
}

/// A data dir after one `serve` start made its files (database, root key, node id).
fn served_data_dir(dir: &Path) {
    let running = serve(dir, &[("BULWARK_PAPER_MARKET", "off")]);
    drop(running);
    assert!(dir.join("root.key").exists());
}

#[test]
fn doctor_passes_the_readme_setup() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    served_data_dir(&data);
    let (code, out) = doctor(&[("BULWARK_DATA_DIR", data.to_str().unwrap())]);
    assert_eq!(code, 0, "{out}");
    assert!(fail_lines(&out).is_empty(), "{out}");
    for check in ["configuration:", "bind:", "data dir:", "root key:", "database:", "smtp:", "clock:"] {
        assert!(out.contains(check), "{check} missing: {out}");
    }
    assert!(out.contains("warn smtp: BULWARK_SMTP_URL is unset"), "{out}");
    // serve makes the database files 0600 (store-sqlite), so the database line is clean.
    assert!(out.lines().any(|l| l.starts_with("ok ") && l.contains("database: SQLite")), "{out}");
}

#[test]
fn doctor_names_each_broken_piece_with_its_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    served_data_dir(&data);
    let key = data.join("root.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    // As an older version left it (serve now makes it 0600).
    std::fs::set_permissions(data.join("bulwark.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    let dir = data.to_str().unwrap();
    let smtp = format!("smtp://127.0.0.1:{}", closed_port());
    let (code, out) = doctor(&[("BULWARK_DATA_DIR", dir), ("BULWARK_SMTP_URL", &smtp)]);
    assert_eq!(code, 1, "{out}");
    let fails = fail_lines(&out);
    assert!(
        fails.iter().any(|l| l.contains("root key") && l.contains(&format!("chmod 600 {}", key.display()))),
        "{out}"
    );
    assert!(fails.iter().any(|l| l.contains("data dir") && l.contains("chmod 700")), "{out}");
    assert!(fails.iter().any(|l| l.contains("smtp") && l.contains("BULWARK_SMTP_URL")), "{out}");
    // With the data dir open to everyone, a 0644 database file is readable by others too.
    assert!(fails.iter().any(|l| l.contains("database") && l.contains("chmod 600")), "{out}");

    let (code, out) = doctor(&[("BULWARK_DATA_DIR", dir), ("BULWARK_BIND", "0.0.0.0:8080")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        fail_lines(&out)
            .iter()
            .any(|l| l.contains("bind") && l.contains("BULWARK_TLS_CERT") && l.contains("BULWARK_TRUSTED_PROXIES")),
        "{out}"
    );

    let missing = tmp.path().join("no-such-cert.pem");
    let (code, out) = doctor(&[
        ("BULWARK_DATA_DIR", dir),
        ("BULWARK_TLS_CERT", missing.to_str().unwrap()),
        ("BULWARK_TLS_KEY", key.to_str().unwrap()),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(fail_lines(&out).iter().any(|l| l.contains("tls") && l.contains(missing.to_str().unwrap())), "{out}");

    let (code, out) = doctor(&[("BULWARK_DATA_DIR", dir), ("BULWARK_SESSION_IDLE_MINUTES", "soon")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAIL configuration: BULWARK_SESSION_IDLE_MINUTES"), "{out}");
}

#[test]
fn doctor_reads_the_self_signed_certificate_and_its_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let running = serve(&data, &[("BULWARK_PAPER_MARKET", "off"), ("BULWARK_TLS", "auto")]);
    drop(running);
    let (code, out) = doctor(&[("BULWARK_DATA_DIR", data.to_str().unwrap()), ("BULWARK_TLS", "auto")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("valid until 2035-01-01"), "{out}");
}

#[test]
fn doctor_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("absent");
    let (code, out) = doctor(&[("BULWARK_DATA_DIR", data.to_str().unwrap()), ("BULWARK_TLS", "auto")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("does not exist"), "{out}");
    assert!(!data.exists(), "doctor created {}", data.display());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "nothing else either");
}

#[test]
fn doctor_reads_the_smtp_greeting_and_sends_nothing() {
    use std::io::{Read as _, Write as _};
    let tmp = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(b"220 mail.test ESMTP\r\n").unwrap();
        let mut received = Vec::new();
        let _ = stream.read_to_end(&mut received);
        received
    });
    let (code, out) =
        doctor(&[("BULWARK_DATA_DIR", tmp.path().join("d").to_str().unwrap()), ("BULWARK_SMTP_URL", &url)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok   smtp:") && out.contains("220 mail.test ESMTP"), "{out}");
    assert!(server.join().unwrap().is_empty(), "doctor sent nothing to the mail server");
}

/// The network checks' good paths on real servers: the PostgreSQL this machine runs answers with
/// its version (read-only: no migration runs, so the test schema stays as it is), and the clock is
/// compared with a running exchange-sim's.
#[test]
fn doctor_reaches_postgres_and_the_venues_clock() {
    let (_sim, sim_url) = super::exchange_sim(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pg = test_support::pg_url();
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulwark"));
    command
        .arg("doctor")
        .env_clear()
        .env("BULWARK_DATA_DIR", &data)
        .env("BULWARK_DATABASE_URL", &pg)
        .env("BULWARK_BINANCE_URL", &sim_url);
    let out = command.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ok = |what: &str| text.lines().any(|l| l.starts_with("ok ") && l.contains(what));
    assert!(ok("database: PostgreSQL "), "{text}");
    assert!(ok("clock: within "), "{text}");
    assert!(!data.exists(), "doctor created nothing");
}
