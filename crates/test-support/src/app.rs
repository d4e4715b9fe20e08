//! `spawn_app()`: the whole application on a random loopback port, with a fake clock, a real SMTP
//! sink and its own database.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use server::{AppDeps, AppState, ServerConfig};
use store::Store;

use crate::{FakeClock, SmtpSink, TestPg, TestSqlite, pg_store, sqlite_store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug)]
enum DbGuard {
    Sqlite(TestSqlite),
    Postgres(Box<TestPg>),
}

#[derive(Debug)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub clock: Arc<FakeClock>,
    pub smtp: SmtpSink,
    pub store: Arc<dyn Store>,
    /// The app's vault (unsealed; KEK 1 stored in its database, wrapped by `root_key`), so a test
    /// can open what the app sealed.
    pub vault: Arc<vault::Vault>,
    /// The same vault as the app holds it: reloads, rotations, the rewrap job.
    pub keys: Arc<server::LiveVault>,
    /// The app's root key, for a test that acts as a second node or as `bulwark vault rotate`.
    pub root_key: String,
    pub config: ServerConfig,
    pub client: reqwest::Client,
    /// The exchange the app's `binance` venue points at (an in-process `exchange-sim`).
    pub venue: crate::TestVenue,
    db: DbGuard,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }
}

/// The app on SQLite with the default configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Backend::Sqlite, |_| {}).await
}

/// The app on `backend`, with `configure` applied to the configuration first.
///
/// # Panics
/// When the database, the port or the SMTP sink cannot be set up.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let base = format!("http://{addr}");
    let mut config = ServerConfig::new(url::Url::parse(&base).expect("base url"));
    config.mail_from = "Bulwark <no-reply@bulwark.localhost>".to_owned();
    configure(&mut config);
    let smtp = SmtpSink::start().await;
    let (store, db): (Arc<dyn Store>, DbGuard) = match backend {
        Backend::Sqlite => {
            let db = sqlite_store().await;
            (Arc::new(db.store.clone()), DbGuard::Sqlite(db))
        }
        Backend::Postgres => {
            let db = pg_store().await;
            (Arc::new(db.store.clone()), DbGuard::Postgres(Box::new(db)))
        }
    };
    let clock = Arc::new(FakeClock::new());
    let root = vault::RootKey::generate().expect("root key");
    let root_key = root.to_file_text().to_string();
    let first = vault::envelope::Kek::generate(1).expect("kek");
    let now = domain::Clock::now(&*clock);
    assert!(store.insert_first_kek(&first.wrap(&root).expect("wrap"), now).await.expect("first KEK"));
    let keys = Arc::new(
        server::LiveVault::load(store.clone(), clock.clone(), root, config.vault_refresh).await.expect("vault"),
    );
    let vault = keys.vault().clone();
    let mailer = mail::SmtpMailer::new(&smtp.url(), &config.mail_from).expect("smtp mailer");
    let venue = crate::TestVenue::start().await;
    let deps = AppDeps {
        store: store.clone(),
        mailer: Arc::new(mailer),
        clock: clock.clone(),
        random: Arc::new(auth::OsRandom),
        vault: keys.clone(),
        venues: venue.venues(),
        paper: Some(venue.paper_market()),
    };
    let state = AppState::new(config.clone(), deps).expect("app state");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = server::serve(listener, state, async move {
            let _ = stopped.await;
        })
        .await;
    });
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    TestApp { addr, base, clock, smtp, store, vault, keys, root_key, config, client, venue, db, shutdown: Some(stop) }
}

/// A key ring with one fresh KEK (version 1), for a test app's vault.
///
/// # Panics
/// When the OS random source fails.
pub fn test_ring() -> vault::envelope::KekRing {
    vault::envelope::KekRing::new(1, vec![vault::envelope::Kek::generate(1).expect("kek")]).expect("ring")
}

/// What a test got back: status, headers and the body as JSON (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// Reads a response whole.
    ///
    /// # Panics
    /// When the body cannot be read.
    pub async fn of(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, text, json }
    }

    /// The session cookie's value from `Set-Cookie`, if one was set (and not cleared).
    pub fn session_cookie(&self) -> Option<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
            let value = v.strip_prefix("__Host-bulwark_session=")?.split(';').next()?;
            (!value.is_empty()).then(|| value.to_owned())
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn code(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            DbGuard::Sqlite(_) => Backend::Sqlite,
            DbGuard::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite file, for tests that read the raw database.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match &self.db {
            DbGuard::Sqlite(db) => Some(&db.path),
            DbGuard::Postgres(_) => None,
        }
    }

    /// The PostgreSQL schema of this app's database, for tests that dump it.
    pub fn pg_schema(&self) -> Option<&str> {
        match &self.db {
            DbGuard::Sqlite(_) => None,
            DbGuard::Postgres(db) => Some(&db.schema),
        }
    }

    /// Sends a request. `cookie` is the session token; `headers` are added as given.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("__Host-bulwark_session={cookie}"));
        }
        for (name, value) in headers {
            request = request.header(*name, HeaderValue::from_str(value).expect("header value"));
        }
        Reply::of(request.send().await.expect("send request")).await
    }

    /// Posts `body` as it is, with these headers (no cookie): how a webhook sender posts.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.client.post(self.url(path)).body(body);
        for (name, value) in headers {
            request = request.header(*name, HeaderValue::from_str(value).expect("header value"));
        }
        Reply::of(request.send().await.expect("send request")).await
    }

    pub async fn post(&self, path: &str, body: Value, cookie: Option<&str>) -> Reply {
        self.send("POST", path, Some(body), cookie, &[]).await
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.send("GET", path, None, cookie, &[]).await
    }

    /// Registers `email` and returns the verification link that arrived by mail.
    pub async fn register(&self, email: &str, password: &str) -> String {
        let reply =
            self.post("/api/v1/auth/register", serde_json::json!({ "email": email, "password": password }), None).await;
        assert_eq!(reply.status, 201, "register: {}", reply.text);
        let mails = self.smtp.wait_for(email, self.smtp.to(email).len() + 1).await;
        let mail = mails.last().expect("a mail");
        mail.link(&format!("{}/verify-email?token=", self.base)).expect("verification link")
    }

    /// Registers, verifies and signs in; returns the session token.
    pub async fn signed_in(&self, email: &str, password: &str) -> String {
        let link = self.register(email, password).await;
        let token = link.split("token=").nth(1).expect("token").to_owned();
        let verified = self.post("/api/v1/auth/verify-email", serde_json::json!({ "token": token }), None).await;
        assert_eq!(verified.status, 200, "verify: {}", verified.text);
        self.login(email, password).await
    }

    /// Attempts a sign-in with extra request headers (a user agent, an origin) and returns the
    /// reply as it came.
    pub async fn try_login(&self, email: &str, password: &str, headers: &[(&str, &str)]) -> Reply {
        let body = serde_json::json!({ "email": email, "password": password });
        self.send("POST", "/api/v1/auth/login", Some(body), None, headers).await
    }

    /// Signs in and returns the session token; panics unless the sign-in succeeds.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let reply = self.try_login(email, password, &[]).await;
        assert_eq!(reply.status, 200, "login: {}", reply.text);
        reply.session_cookie().expect("session cookie")
    }

    /// Attempts a sign-in with extra body fields (`totp_code`, `backup_code`) and returns the reply.
    pub async fn try_login_with(&self, email: &str, password: &str, extra: Value) -> Reply {
        let mut body = serde_json::json!({ "email": email, "password": password });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        self.post("/api/v1/auth/login", body, None).await
    }

    /// Signs in with a TOTP code; panics unless it succeeds. Returns the session token.
    pub async fn login_with_code(&self, email: &str, password: &str, code: &str) -> String {
        let reply = self.try_login_with(email, password, serde_json::json!({ "totp_code": code })).await;
        assert_eq!(reply.status, 200, "login with code: {}", reply.text);
        reply.session_cookie().expect("session cookie")
    }

    /// The app clock's time in Unix seconds.
    pub fn unix_secs(&self) -> i64 {
        domain::Clock::now(&*self.clock).as_unix_millis() / 1000
    }

    /// The current TOTP code for `secret`, by `oathtool` at the app clock's time.
    pub fn totp_now(&self, secret: &str) -> String {
        crate::oathtool_totp(secret, self.unix_secs())
    }

    /// Moves the clock to the next 30-second TOTP step, so a new code can be used.
    pub fn next_totp_step(&self) {
        self.clock.advance(std::time::Duration::from_secs(30));
    }

    /// Turns two-factor sign-in on for the signed-in `cookie` (which must be fresh: signed in or
    /// re-authenticated within 5 minutes). Returns the base32 secret and the ten backup codes.
    pub async fn enable_totp(&self, cookie: &str) -> (String, Vec<String>) {
        let setup = self.post("/api/v1/2fa/totp/setup", serde_json::json!({}), Some(cookie)).await;
        assert_eq!(setup.status, 200, "setup: {}", setup.text);
        let secret = setup.json["secret"].as_str().expect("secret").to_owned();
        let code = self.totp_now(&secret);
        let confirm = self.post("/api/v1/2fa/totp/confirm", serde_json::json!({ "code": code }), Some(cookie)).await;
        assert_eq!(confirm.status, 200, "confirm: {}", confirm.text);
        let codes = confirm.json["backup_codes"]
            .as_array()
            .expect("backup codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_owned())
            .collect();
        self.next_totp_step();
        (secret, codes)
    }
}
