//! The built `bulwark` binary, as a user runs it: a fresh data dir, the embedded defaults, real
//! HTTP, mail in the outbox folder; restarts; refusals of unsafe configuration.

// The state-file test stops the simulator with SIGTERM (rustix, a Linux dependency).
#[cfg(target_os = "linux")]
mod exchange_sim;
// Unix file modes.
#[cfg(unix)]
mod doctor;
mod layers;
mod log_format;
// Kills `serve` with SIGKILL and stops the simulator with SIGTERM (rustix, a Linux dependency).
#[cfg(target_os = "linux")]
mod restart;
mod signals;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const PASSWORD: &str = "violet kettle thunder 42";

struct Running {
    child: Child,
    base: String,
    lines: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` and hands its stdout over line by line.
fn spawn_reading_stdout(command: &mut Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = command.spawn().expect("start bulwark");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines)
}

/// `bulwark serve` with `env` (on a fresh data dir) must refuse to start; returns its stderr.
fn serve_refuses(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulwark"));
    command.arg("serve").env_clear().env("BULWARK_DATA_DIR", dir.path());
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    assert!(!out.status.success(), "{env:?} must be refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts `bulwark serve` on a free loopback port and waits until it says where it listens.
fn serve(data_dir: &Path, extra: &[(&str, &str)]) -> Running {
    serve_seen(data_dir, extra).0
}

/// `serve`, and the lines it printed up to and including the one naming its address.
fn serve_seen(data_dir: &Path, extra: &[(&str, &str)]) -> (Running, Vec<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulwark"));
    command
        .arg("serve")
        .env_clear()
        .env("BULWARK_DATA_DIR", data_dir)
        .env("BULWARK_BIND", "127.0.0.1:0")
        .env("BULWARK_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        command.env(k, v);
    }
    let (mut child, lines) = spawn_reading_stdout(&mut command);
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                if let Some(addr) = line.split("address=").nth(1) {
                    let addr = addr.split_whitespace().next().unwrap().to_owned();
                    seen.push(line);
                    let mut running = Running { child, base: format!("http://{addr}"), lines };
                    running.drain_into(&mut seen);
                    return (running, seen);
                }
                seen.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
                }
                let _ = child.wait();
                panic!("bulwark did not start; stdout: {seen:?}; stderr: {err}");
            }
        }
    }
}

impl Running {
    /// Registers the data dir's first account, confirms it through the first mail in the outbox
    /// and signs in; returns the session cookie.
    fn sign_up(&self, data_dir: &Path, email: &str) -> String {
        let (status, _, _) = self.post("/api/v1/auth/register", json!({"email": email, "password": PASSWORD}), None);
        assert_eq!(status, 201);
        assert_eq!(self.get(&outbox_link(data_dir, 1), None).0, 200, "the mailed link confirms the address");
        self.login(email)
    }

    /// Signs in with `PASSWORD`; returns the session cookie.
    fn login(&self, email: &str) -> String {
        let (status, body, cookie) =
            self.post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD}), None);
        assert_eq!(status, 200, "{body}");
        cookie.expect("a session cookie")
    }

    fn drain_into(&mut self, into: &mut Vec<String>) {
        while let Ok(line) = self.lines.try_recv() {
            into.push(line);
        }
    }

    fn post(&self, path: &str, body: Value, cookie: Option<&str>) -> (u16, Value, Option<String>) {
        let client = http::client();
        let mut request = client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("__Host-bulwark_session={cookie}"));
        }
        http::run(request)
    }

    fn get(&self, path: &str, cookie: Option<&str>) -> (u16, Value, Option<String>) {
        let client = http::client();
        let mut request = client.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("__Host-bulwark_session={cookie}"));
        }
        http::run(request)
    }
}

/// reqwest is async; these tests drive it from plain threads with a small runtime.
mod http {
    pub use ::reqwest::*;

    pub fn client() -> Client {
        Client::builder().redirect(redirect::Policy::none()).build().unwrap()
    }

    /// The body of a successful request as text.
    pub fn run_text(request: RequestBuilder) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let response = request.send().await.expect("request");
            assert!(response.status().is_success(), "{}", response.status());
            response.text().await.expect("body")
        })
    }

    pub fn run(request: RequestBuilder) -> (u16, serde_json::Value, Option<String>) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let cookie = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|v| {
                    v.strip_prefix("__Host-bulwark_session=").and_then(|r| r.split(';').next()).map(str::to_owned)
                })
                .filter(|v| !v.is_empty());
            let text = response.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null), cookie)
        })
    }
}

fn outbox_link(data_dir: &Path, wanted: usize) -> String {
    let outbox = data_dir.join("outbox");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut files: Vec<_> = std::fs::read_dir(&outbox)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        if files.len() >= wanted {
            let text = std::fs::read_to_string(&files[wanted - 1]).unwrap().replace("=\r\n", "").replace("=3D", "=");
            let start = text.find("http://127.0.0.1:").expect("an absolute link to where bulwark listens");
            let start = start + text[start..].find("/verify-email?token=").expect("verification link");
            assert!(!text[..start].ends_with(":0"), "the link names the bound port, not port 0");
            let end = text[start..].find(char::is_whitespace).map_or(text.len(), |e| start + e);
            return text[start..end].to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no mail in {}", outbox.display());
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

#[test]
fn a_newcomer_registers_verifies_and_signs_in_on_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut app = serve(&data, &[]);
    assert_eq!(app.get("/healthz", None), (200, json!({"status": "ok"}), None));
    let (status, _, _) =
        app.post("/api/v1/auth/register", json!({"email": "new@example.com", "password": PASSWORD}), None);
    assert_eq!(status, 201);
    let link = outbox_link(&data, 1);
    let (status, _, _) = app.get(&link, None);
    assert_eq!(status, 200, "the mailed link confirms the address");
    let (status, body, cookie) =
        app.post("/api/v1/auth/login", json!({"email": "new@example.com", "password": PASSWORD}), None);
    assert_eq!(status, 200);
    assert_eq!(body["user"]["email_verified"], true);
    let cookie = cookie.expect("session cookie");
    let (status, sessions, _) = app.get("/api/v1/sessions", Some(&cookie));
    assert_eq!((status, sessions.as_array().unwrap().len()), (200, 1));
    assert_eq!(app.post("/api/v1/auth/logout", json!({}), Some(&cookie)).0, 204);
    assert_eq!(app.get("/api/v1/me", Some(&cookie)).0, 401);

    assert!(data.join("bulwark.db").exists(), "SQLite in the data dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "a new data dir is private to its owner");
    }
    assert!(data.join("bulwark.db-wal").exists(), "WAL journal");
    #[cfg(target_os = "linux")]
    {
        // SEC-6: no core file can hold the process memory.
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", app.child.id())).unwrap();
        let core = limits.lines().find(|l| l.starts_with("Max core file size")).expect("core limit line");
        let values: Vec<&str> = core.split_whitespace().skip(4).take(2).collect();
        assert_eq!(values, ["0", "0"], "{core}");
    }
    let mut lines = Vec::new();
    app.drain_into(&mut lines);
    let _ = app.child.kill();
    let _ = app.child.wait();
    app.drain_into(&mut lines);
    let log = lines.join("\n");
    assert!(log.contains("outbox"), "the log says where mail goes: {log}");
    assert!(!log.contains(PASSWORD) && !log.contains(&cookie) && !log.contains(link.split("token=").nth(1).unwrap()));
}

#[test]
fn throttles_hold_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let app = serve(&data, &[]);
        for _ in 0..10 {
            let (status, _, _) = app.post(
                "/api/v1/auth/login",
                json!({"email": "target@example.com", "password": "guess guess guess 1"}),
                None,
            );
            assert_eq!(status, 401);
        }
        assert_eq!(
            app.post(
                "/api/v1/auth/login",
                json!({"email": "target@example.com", "password": "guess guess guess 1"}),
                None
            )
            .0,
            429
        );
    }
    let app = serve(&data, &[]);
    let (status, body, _) =
        app.post("/api/v1/auth/login", json!({"email": "target@example.com", "password": "guess guess guess 1"}), None);
    assert_eq!((status, body["error"].as_str()), (429, Some("rate_limited")), "a restart does not reset the count");
}

#[test]
fn runs_on_postgresql() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let pg = runtime.block_on(test_support::pg_store());
    let url = format!("{}?options=-csearch_path%3D{}", test_support::pg_url(), pg.schema);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let app = serve(&data, &[("BULWARK_DATABASE_URL", &url)]);
    assert_eq!(app.get("/healthz", None).0, 200);
    let cookie = app.sign_up(&data, "pg@example.com");
    assert!(!data.join("bulwark.db").exists(), "no SQLite file when PostgreSQL is chosen");
    // Several nodes cannot share one process's paper market: off on PostgreSQL unless asked for.
    let (status, body, _) =
        app.post("/api/v1/exchange-accounts", json!({"exchange": "paper", "name": "P"}), Some(&cookie));
    assert_eq!((status, body["field"].as_str()), (422, Some("exchange")), "{body}");
    drop(app);
    drop(pg);
}

/// SEC-3: the root key file is created 0600 on the first start and kept; without it, or with
/// another one, the node runs sealed: everything works except checking authenticator codes, and
/// `/healthz` says so. A backup code still signs in.
#[test]
fn without_its_root_key_the_node_runs_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_file = data.join("root.key");
    let app = serve(&data, &[]);
    let first = std::fs::read_to_string(&key_file).expect("root.key created on first start");
    assert_eq!(first.trim().len(), 44, "32 bytes as base64");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the root key is private to its owner");
    }
    // An account with two-factor sign-in, set up with codes from oathtool at the real time.
    let email = "sealed@example.com";
    let cookie = app.sign_up(&data, email);
    let (status, setup, _) = app.post("/api/v1/2fa/totp/setup", json!({}), Some(&cookie));
    assert_eq!(status, 200);
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let now = || {
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap()
    };
    let code = test_support::oathtool_totp(&secret, now());
    let (status, confirmed, _) = app.post("/api/v1/2fa/totp/confirm", json!({ "code": code }), Some(&cookie));
    assert_eq!(status, 200, "{confirmed}");
    let backup = confirmed["backup_codes"][0].as_str().unwrap().to_owned();
    let more_backups: Vec<String> = (1..3).map(|i| confirmed["backup_codes"][i].as_str().unwrap().to_owned()).collect();
    drop(app);
    let status = vault_status(&data, &[]);
    assert!(status.starts_with("vault: unsealed"), "{status}");
    let row = kek_row(&status, 1);
    assert_eq!((row[1], row[3], row[4]), ("active", "-", "1"), "KEK 1 is active and seals the one seed: {status}");

    let app = serve(&data, &[]);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), first, "a restart keeps the key");
    assert_eq!(app.get("/healthz", None).1, json!({"status": "ok"}));
    drop(app);

    let other = dir.path().join("other.key");
    std::fs::write(&other, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    for (round, (name, extra)) in
        [("another key file", vec![("BULWARK_ROOT_KEY_FILE", other.to_str().unwrap())]), ("no key file", vec![])]
            .into_iter()
            .enumerate()
    {
        if extra.is_empty() {
            std::fs::rename(&key_file, dir.path().join("kept.key")).unwrap();
        }
        let mut env = extra.clone();
        env.push(("BULWARK_BINANCE_URL", "http://127.0.0.1:9"));
        let app = serve(&data, &env);
        assert_eq!(app.get("/healthz", None).1, json!({"status": "ok", "vault": "sealed"}), "{name}");
        let status = vault_status(&data, &extra);
        assert!(status.starts_with("vault: sealed"), "{name}: {status}");
        let (status, body, _) = app.post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD, "totp_code": test_support::oathtool_totp(&secret, now())}),
            None,
        );
        assert_eq!((status, body["error"].as_str()), (503, Some("vault_sealed")), "{name}");
        // No exchange key can be connected: refused before any venue is asked (none answers here).
        let login = json!({"email": email, "password": PASSWORD, "backup_code": more_backups[round]});
        let (status, _, session) = app.post("/api/v1/auth/login", login, None);
        assert_eq!(status, 200, "{name}");
        let key = json!({"exchange": "binance", "name": "Sealed", "api_key": "K1234", "api_secret": "S"});
        let (status, body, _) = app.post("/api/v1/exchange-accounts", key, session.as_deref());
        assert_eq!((status, body["error"].as_str()), (503, Some("vault_sealed")), "{name}: {body}");
        assert_eq!(
            app.post("/api/v1/auth/register", json!({"email": "other@example.com", "password": PASSWORD}), None).0,
            201
        );
        drop(app);
        assert!(
            !key_file.exists() || extra.len() == 1,
            "a missing key file is never replaced once the database has a ring"
        );
    }
    let app = serve(&data, &[]);
    let (status, _, _) =
        app.post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD, "backup_code": backup}), None);
    assert_eq!(status, 200, "a backup code needs no vault");
    drop(app);
    std::fs::rename(dir.path().join("kept.key"), &key_file).unwrap();
    let app = serve(&data, &[]);
    assert_eq!(app.get("/healthz", None).1, json!({"status": "ok"}), "unsealed again with the right key");
}

/// `bulwark vault <args>` on `data_dir`: exit success, stdout, stderr.
fn vault(data_dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulwark"));
    command.arg("vault").args(args).env_clear().env("BULWARK_DATA_DIR", data_dir);
    for (k, v) in extra {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

/// `bulwark vault status` on `data_dir`, its stdout.
fn vault_status(data_dir: &Path, extra: &[(&str, &str)]) -> String {
    let (ok, out, err) = vault(data_dir, &["status"], extra);
    assert!(ok, "vault status: {err}");
    out
}

/// The `vault status` row of KEK `version`, split on whitespace: version, state, created,
/// demoted (`-` if never), sealed secrets.
fn kek_row(status: &str, version: u32) -> Vec<&str> {
    let row = status.lines().find(|l| l.split_whitespace().next() == Some(&version.to_string()));
    row.unwrap_or_else(|| panic!("KEK {version} in {status}")).split_whitespace().collect()
}

/// SEC-4 from the command line: `vault rotate` refuses without the right root key, rotates with
/// it, `--wait` rewraps at once, `serve` destroys the old key after the grace period (three refresh
/// intervals) and still signs in with the rewrapped seed; `vault status` follows every step.
#[test]
fn vault_rotate_moves_secrets_onto_a_new_key_and_serve_destroys_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fast = [("BULWARK_VAULT_REFRESH_SECONDS", "1")];
    let app = serve(&data, &fast);
    let email = "rotate@example.com";
    let cookie = app.sign_up(&data, email);
    let (status, setup, _) = app.post("/api/v1/2fa/totp/setup", json!({}), Some(&cookie));
    assert_eq!(status, 200);
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let now = || {
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap()
    };
    let code = test_support::oathtool_totp(&secret, now());
    assert_eq!(app.post("/api/v1/2fa/totp/confirm", json!({ "code": code }), Some(&cookie)).0, 200);
    drop(app);

    // Refused without the root key, or with another one; nothing changes.
    let missing = dir.path().join("missing.key");
    let other = dir.path().join("other.key");
    std::fs::write(&other, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    for (file, says) in [(&missing, "no root key file"), (&other, "does not open")] {
        let (ok, out, err) = vault(&data, &["rotate", "--wait"], &[("BULWARK_ROOT_KEY_FILE", file.to_str().unwrap())]);
        assert!(!ok && out.is_empty(), "refused: {out}");
        assert!(err.contains(says), "{err}");
    }
    let status = vault_status(&data, &[]);
    assert!(!status.contains("\n2 "), "no second key: {status}");

    let (ok, out, err) = vault(&data, &["rotate", "--wait"], &fast);
    assert!(ok, "{err}");
    assert!(out.starts_with("vault: key-encryption key 2 is active; 1 is decrypt-only\n"), "{out}");
    assert!(out.contains("rewrapped 1 sealed secrets onto key 2"), "{out}");
    assert!(out.contains("`bulwark serve` destroys it after"), "the grace period is not over yet: {out}");
    assert!(!out.contains("INFO") && !out.contains("WARN"), "no log line on stdout: {out}");
    let status = vault_status(&data, &[]);
    let (old, new) = (kek_row(&status, 1), kek_row(&status, 2));
    assert_eq!((old[1], old[4]), ("decrypt_only", "0"), "{status}");
    assert_ne!(old[3], "-", "the demotion time is shown: {status}");
    assert_eq!((new[1], new[3], new[4]), ("active", "-", "1"), "{status}");
    assert!(status.contains("a rotation is unfinished"), "{status}");

    // `serve` finishes: key 1 is destroyed once its grace period (3 s here) is over.
    let app = serve(&data, &fast);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = vault_status(&data, &[]);
        if kek_row(&status, 1)[1] == "destroyed" {
            assert!(!status.contains("a rotation is unfinished"), "{status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "key 1 was not destroyed: {status}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // The seed, now under key 2, still checks a code (the next step's: the confirming one is spent).
    let (status, body, _) = app.post(
        "/api/v1/auth/login",
        json!({"email": email, "password": PASSWORD, "totp_code": test_support::oathtool_totp(&secret, now() + 30)}),
        None,
    );
    assert_eq!(status, 200, "{body}");
    drop(app);

    // Without --wait the command only starts the rotation and says who finishes it.
    let (ok, out, err) = vault(&data, &["rotate"], &[]);
    assert!(ok, "{err}");
    assert!(out.starts_with("vault: key-encryption key 3 is active; 2 is decrypt-only\n"), "{out}");
    assert!(out.contains("`bulwark serve` rewraps"), "{out}");
    let status = vault_status(&data, &[]);
    assert_eq!(kek_row(&status, 2)[4], "1", "not rewrapped yet: {status}");
}

#[test]
fn refuses_to_serve_plain_http_beyond_loopback() {
    let err = serve_refuses(&[("BULWARK_BIND", "0.0.0.0:0")]);
    for fix in ["BULWARK_TLS_CERT", "BULWARK_TLS=auto", "BULWARK_TRUSTED_PROXIES"] {
        assert!(err.contains(fix), "the refusal names {fix}: {err}");
    }
}

/// The fingerprint `BULWARK_TLS=auto` printed, and the one an HTTPS request to `app` sees.
fn auto_fingerprints(app: &Running, printed: &[String]) -> (String, String) {
    let printed = printed
        .iter()
        .find_map(|line| line.split("fingerprint=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no fingerprint printed: {printed:?}"))
        .to_owned();
    (printed, https_fingerprint(app))
}

fn https_fingerprint(app: &Running) -> String {
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let reply =
        runtime.block_on(test_support::tls::https_get(addr, "/healthz", &[&test_support::tls::TLS13])).expect("HTTPS");
    assert_eq!(reply.status(), 200, "{}", reply.head);
    assert!(reply.header("strict-transport-security").is_some(), "HSTS over TLS");
    reply.fingerprint
}

#[test]
fn tls_auto_makes_a_self_signed_certificate_once_and_prints_its_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app, printed) = serve_seen(&data, &[("BULWARK_TLS", "auto")]);
    let (printed, served) = auto_fingerprints(&app, &printed);
    assert_eq!(printed, served, "the printed fingerprint is the served certificate's");
    assert_eq!(printed.len(), 32 * 3 - 1, "SHA-256 as colon-separated hex: {printed}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("tls-key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is the owner's only");
    }
    let cert = std::fs::read(data.join("tls-cert.pem")).unwrap();
    drop(app);

    let (app, again) = serve_seen(&data, &[("BULWARK_TLS", "auto")]);
    assert_eq!(auto_fingerprints(&app, &again), (printed.clone(), printed), "reused on the next start");
    assert_eq!(std::fs::read(data.join("tls-cert.pem")).unwrap(), cert);
}

/// SIGHUP reloads the certificate (and does not stop the server, as it would without a handler).
#[cfg(target_os = "linux")]
#[test]
fn sighup_reloads_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (data, served, renewed) = (dir.path().join("data"), dir.path().join("served"), dir.path().join("renewed"));
    std::fs::create_dir_all(&served).unwrap();
    std::fs::create_dir_all(&renewed).unwrap();
    let (files, _) = server::edge::self_signed(&served, vec!["localhost".to_owned()]).unwrap();
    let (new, _) = server::edge::self_signed(&renewed, vec!["localhost".to_owned()]).unwrap();
    let env = [("BULWARK_TLS_CERT", files.cert.to_str().unwrap()), ("BULWARK_TLS_KEY", files.key.to_str().unwrap())];
    let app = serve(&data, &env);
    let before = https_fingerprint(&app);
    std::fs::copy(&new.key, &files.key).unwrap();
    std::fs::copy(&new.cert, &files.cert).unwrap();
    let pid = rustix::process::Pid::from_child(&app.child);
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("SIGHUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let seen = https_fingerprint(&app);
        if seen != before {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still the old certificate");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn help_names_every_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_bulwark")).args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "BULWARK_DATA_DIR",
        "BULWARK_DATABASE_URL",
        "BULWARK_BIND",
        "BULWARK_PUBLIC_URL",
        "BULWARK_SMTP_URL",
        "BULWARK_TRUSTED_PROXIES",
        "BULWARK_TLS_CERT",
        "BULWARK_TLS_KEY",
        "BULWARK_TLS",
        "BULWARK_ROOT_KEY_FILE",
        "BULWARK_REAUTH_WINDOW_SECONDS",
        "BULWARK_VAULT_REFRESH_SECONDS",
        "BULWARK_BINANCE_URL",
        "BULWARK_LOG",
        "BULWARK_LOG_FORMAT",
        "BULWARK_METRICS_TOKEN",
    ] {
        assert!(help.contains(var), "{var} in --help");
    }
    assert!(help.contains("./bulwark-data") && help.contains("127.0.0.1:8080"), "defaults shown");
}

/// Starts `bulwark exchange-sim` with `args` on a free port and returns it with its base URL.
fn exchange_sim(args: &[&str]) -> (Running, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulwark"));
    command
        .args(["exchange-sim", "--bind", "127.0.0.1:0"])
        .args(args)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (child, lines) = spawn_reading_stdout(&mut command);
    let line = lines.recv_timeout(Duration::from_secs(60)).expect("exchange-sim prints where it listens");
    let url = line.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")).expect("a base URL").to_owned();
    (Running { child, base: url.clone(), lines }, url)
}

#[test]
fn a_key_from_exchange_sim_is_connected_and_a_withdrawing_one_refused() {
    let key = "BinTestKey000000000000000000000000000000000000000000000000000001";
    let secret = "BinTestSecret00000000000000000000000000000000000000000000000001";
    let (refusing, refusing_url) = exchange_sim(&["--api-key", key, "--api-secret", secret, "--withdrawals"]);
    let (good, good_url) = exchange_sim(&["--api-key", key, "--api-secret", secret, "--balances", "USDT=250"]);
    let (status, ping, _) = good.get("/api/v3/ping", None);
    assert_eq!((status, ping), (200, json!({})));

    let connect = |url: &str| {
        let dir = tempfile::tempdir().unwrap();
        let app = serve(dir.path(), &[("BULWARK_BINANCE_URL", url)]);
        let cookie = app.sign_up(dir.path(), "sim@example.com");
        let body = json!({"exchange": "binance", "name": "Sim", "api_key": key, "api_secret": secret});
        let (status, reply, _) = app.post("/api/v1/exchange-accounts", body, Some(&cookie));
        let balances = (status == 201).then(|| {
            let id = reply["id"].as_str().unwrap();
            app.get(&format!("/api/v1/exchange-accounts/{id}/balances"), Some(&cookie)).1
        });
        (status, reply, balances)
    };
    let (status, reply, _) = connect(&refusing_url);
    assert_eq!((status, reply["error"].as_str()), (422, Some("withdrawal_permission_enabled")), "{reply}");
    let (status, reply, balances) = connect(&good_url);
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["api_key_hint"], "…0001");
    assert_eq!(balances, Some(json!([{"asset": "USDT", "free": "250", "locked": "0"}])));
    drop(refusing);
}

#[test]
fn refuses_a_plain_http_venue_beyond_loopback() {
    for url in ["http://api.binance.com", "ftp://127.0.0.1/"] {
        let err = serve_refuses(&[("BULWARK_BIND", "127.0.0.1:0"), ("BULWARK_BINANCE_URL", url)]);
        assert!(err.contains("BULWARK_BINANCE_URL"), "{url}: {err}");
    }
}

/// The README's first command is enough to trade on paper, and the paper market keeps its accounts
/// across a restart (stopped with SIGTERM, as a service manager stops it).
#[test]
fn paper_trading_works_on_the_defaults_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let app = serve(&data, &[]);
    let cookie = app.sign_up(&data, "paper@example.com");
    let (status, account, _) =
        app.post("/api/v1/exchange-accounts", json!({"exchange": "paper", "name": "Practice"}), Some(&cookie));
    assert_eq!(status, 201, "{account}");
    let id = account["id"].as_str().unwrap().to_owned();
    assert!(data.join("paper-market.json").exists(), "a new paper account is saved at once");
    // A new market comes with its last hour, so the first chart is not empty.
    let chart = http::run_text(
        http::client()
            .get(format!("{}/api/v1/exchange-accounts/{id}/chart.svg?pair=USDT_BTC", app.base))
            .header("cookie", format!("__Host-bulwark_session={cookie}")),
    );
    assert!(chart.matches("<rect x=").count() >= 55, "about 60 candles drawn: {}", &chart[..chart.len().min(300)]);
    let buy = json!({"pair": "USDT_BTC", "side": "buy", "type": "market", "quote_quantity": "100"});
    let (status, order, _) = app.post(&format!("/api/v1/exchange-accounts/{id}/orders"), buy, Some(&cookie));
    assert_eq!((status, order["status"].as_str()), (201, Some("filled")), "{order}");
    let balances =
        |app: &Running, cookie: &str| app.get(&format!("/api/v1/exchange-accounts/{id}/balances"), Some(cookie)).1;
    let before = balances(&app, &cookie);
    stop_gracefully(app);
    assert!(data.join("paper-market.json").exists(), "the paper market is saved on shutdown");

    let app = serve(&data, &[]);
    let cookie = app.login("paper@example.com");
    assert_eq!(balances(&app, &cookie), before, "the paper account survived the restart");
    let usdt =
        before.as_array().unwrap().iter().find(|b| b["asset"] == "USDT").unwrap()["free"].as_str().unwrap().to_owned();
    let usdt: rust_decimal::Decimal = usdt.parse().unwrap();
    // 100 USDT bought BTC rounded down to the market's step at the walk's price.
    assert!(usdt >= rust_decimal::Decimal::new(9900, 0) && usdt < rust_decimal::Decimal::new(10_000, 0), "{usdt}");
}

/// SIGTERM, then wait for the process to end.
fn stop_gracefully(mut running: Running) {
    let pid = running.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while running.child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "bulwark did not stop on SIGTERM");
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

/// Two nodes on one PostgreSQL database share one paper market (`bulwark exchange-sim`): an
/// account opened through one node trades and starts over through the other.
#[test]
fn two_nodes_share_a_paper_market_through_exchange_sim() {
    let (_sim, sim_url) = exchange_sim(&["--volatility", "0"]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let pg = runtime.block_on(test_support::pg_store());
    let url = format!("{}?options=-csearch_path%3D{}", test_support::pg_url(), pg.schema);
    let dir = tempfile::tempdir().unwrap();
    let env = [("BULWARK_DATABASE_URL", url.as_str()), ("BULWARK_PAPER_MARKET", sim_url.as_str())];
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let a = serve(&data_a, &env);
    // The second node shares the database, so it must share the root key too.
    std::fs::create_dir_all(&data_b).unwrap();
    std::fs::copy(data_a.join("root.key"), data_b.join("root.key")).unwrap();
    let b = serve(&data_b, &env);

    let on_a = a.sign_up(&data_a, "shared@example.com");
    let on_b = b.login("shared@example.com");
    let body = json!({"exchange": "paper", "name": "Shared", "balances": {"USDT": "1000"}});
    let (status, account, _) = a.post("/api/v1/exchange-accounts", body, Some(&on_a));
    assert_eq!(status, 201, "{account}");
    let id = account["id"].as_str().unwrap().to_owned();
    let buy = json!({"pair": "USDT_BTC", "side": "buy", "type": "limit", "quantity": "0.001", "price": "20000"});
    let (status, order, _) = b.post(&format!("/api/v1/exchange-accounts/{id}/orders"), buy, Some(&on_b));
    assert_eq!((status, order["status"].as_str()), (201, Some("new")), "{order}");
    let (_, open, _) = a.get(&format!("/api/v1/exchange-accounts/{id}/orders?pair=USDT_BTC"), Some(&on_a));
    assert_eq!(open.as_array().unwrap().len(), 1, "the order placed through node B is seen through node A");
    let (status, _, _) =
        b.post(&format!("/api/v1/exchange-accounts/{id}/reset"), json!({"balances": {"USDT": 50}}), Some(&on_b));
    assert_eq!(status, 200);
    let (_, balances, _) = a.get(&format!("/api/v1/exchange-accounts/{id}/balances"), Some(&on_a));
    assert_eq!(balances, json!([{"asset": "USDT", "free": "50", "locked": "0"}]));
    drop((a, b));
    drop(pg);
}
