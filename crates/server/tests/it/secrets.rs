//! No password or token in plain text in the database or in the logs (SEC-1 and SEC-5 in spirit for
//! account secrets; AU-5 "stored hashed").

use base64::Engine;
use serde_json::json;

use crate::{Backend, app, logs, token_of};

crate::on_both!(
    no_secret_is_stored_or_logged,
    no_second_factor_secret_is_stored_or_logged,
    no_exchange_secret_is_stored_logged_or_returned
);

/// Text forms a leaked secret could take in a dump.
fn forms(secret: &str) -> Vec<String> {
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let mut all = vec![secret.to_owned(), hex, b64];
    if let Ok(raw) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(secret) {
        all.push(raw.iter().map(|b| format!("{b:02x}")).collect());
        all.push(base64::engine::general_purpose::STANDARD.encode(&raw));
    }
    all
}

async fn dump(app: &crate::TestApp) -> String {
    match app.backend() {
        Backend::Sqlite => {
            let path = app.sqlite_path().unwrap();
            let mut text = String::new();
            for suffix in ["", "-wal"] {
                let file = format!("{}{suffix}", path.display());
                if let Ok(bytes) = std::fs::read(&file) {
                    text.push_str(&String::from_utf8_lossy(&bytes));
                    // Hash columns are raw bytes: also show every byte as hex to catch a raw token.
                    text.push_str(&bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
                }
            }
            text
        }
        Backend::Postgres => {
            let schema = app.pg_schema().unwrap();
            let url =
                std::env::var("BULWARK_TEST_DATABASE_URL").unwrap_or_else(|_| test_support::DEFAULT_PG_URL.to_owned());
            let out = std::process::Command::new("pg_dump")
                .args(["--data-only", "--schema", schema, &url])
                .output()
                .expect("pg_dump is installed with PostgreSQL");
            assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    }
}

pub async fn no_secret_is_stored_or_logged(backend: Backend) {
    let app = app(backend).await;
    let password = format!("canary-{} tulip", uuid_like());
    let new_password = format!("canary-{} orchid", uuid_like());
    let email = format!("canary{}@example.com", &uuid_like()[..8]);
    let verify = token_of(&app.register(&email, &password).await);
    // Through the mailed link: the token travels in the query string, which must not be logged.
    assert_eq!(app.get(&format!("/verify-email?token={verify}"), None).await.status, 200);
    let session = app.login(&email, &password).await;
    app.post("/api/v1/auth/password/reset-request", json!({"email": email}), None).await;
    let mails = app.smtp.wait_for(&email, 2).await;
    let reset = token_of(&mails[1].link(&format!("{}/reset-password?token=", app.base)).unwrap());
    let changed =
        app.post("/api/v1/auth/password/reset", json!({"token": reset, "new_password": new_password}), None).await;
    assert_eq!(changed.status, 204);
    let session2 = app.login(&email, &new_password).await;
    let failed =
        app.post("/api/v1/auth/login", json!({"email": email, "password": format!("{password}x")}), None).await;
    assert_eq!(failed.status, 401);

    let dumped = dump(&app).await;
    assert!(dumped.contains(&email), "the dump is readable (sanity check of the canary search)");
    let logged = logs::captured();
    for secret in [&password, &new_password, &verify, &reset, &session, &session2] {
        for form in forms(secret) {
            assert!(!dumped.contains(&form), "a secret is in the database dump as {form:?}");
            assert!(!logged.contains(&form), "a secret is in the logs as {form:?}");
        }
    }
}

/// AU-6/AU-7: the TOTP seed is stored only sealed under the root key (and bound to its user),
/// backup codes only as Argon2id hashes; neither appears in a dump or a log.
pub async fn no_second_factor_secret_is_stored_or_logged(backend: Backend) {
    let app = app(backend).await;
    let email = format!("seed{}@example.com", &uuid_like()[..8]);
    let session = app.signed_in(&email, crate::PASSWORD).await;
    let (secret, codes) = app.enable_totp(&session).await;
    let code = app.totp_now(&secret);
    app.login_with_code(&email, crate::PASSWORD, &code).await;
    let used_backup = app
        .post("/api/v1/auth/login", json!({"email": email, "password": crate::PASSWORD, "backup_code": codes[0]}), None)
        .await;
    assert_eq!(used_backup.status, 200);

    let seed = auth::totp::base32_decode(&secret).expect("base32 seed");
    assert_eq!(seed.len(), 20, "160 bits (AU-6)");
    let dumped = dump(&app).await;
    let logged = logs::captured();
    let mut canaries: Vec<String> = forms(&secret);
    canaries.push(secret.to_lowercase());
    canaries.push(seed.iter().map(|b| format!("{b:02x}")).collect());
    canaries.push(base64::engine::general_purpose::STANDARD.encode(&seed));
    for backup in &codes {
        canaries.extend(forms(backup));
        canaries.push(backup.replace('-', ""));
    }
    for form in &canaries {
        assert!(!dumped.contains(form.as_str()), "a second-factor secret is in the database dump as {form:?}");
        assert!(!logged.contains(form.as_str()), "a second-factor secret is in the logs as {form:?}");
    }
    assert!(dumped.matches("$argon2id$").count() >= 11, "password + 10 backup codes as Argon2id hashes");

    // What is stored is the seed, sealed: it opens with the app's vault for this user only.
    let user = app.store.user_by_email(&email).await.unwrap().unwrap();
    let sealed = user.totp_seed_sealed.expect("a sealed seed");
    let binding = vault::envelope::Binding::totp_seed(&user.id.to_string());
    assert_eq!(app.vault.open(&binding, &sealed).unwrap().as_slice(), seed.as_slice());
    let other_user = vault::envelope::Binding::totp_seed("another-user");
    assert!(app.vault.open(&other_user, &sealed).is_err(), "bound to its user");
    let other_ring = vault::Vault::unsealed(test_support::test_ring());
    assert!(other_ring.open(&binding, &sealed).is_err(), "useless without this node's keys");
}

/// The canary (SEC-1, SEC-5): a random exchange secret and an Ed25519 private key are
/// connected and used; neither appears, in plain, hex or base64, in the database (the SQLite file
/// and its WAL, or `pg_dump`), in anything logged by this test binary, or in any HTTP response. A
/// bot's webhook secret (WH-1) is held to the same rule, except in the one answer that shows it.
pub async fn no_exchange_secret_is_stored_logged_or_returned(backend: Backend) {
    let app = app(backend).await;
    let email = format!("vault{}@example.com", &uuid_like()[..8]);
    let session = app.signed_in(&email, crate::PASSWORD).await;
    let mut responses = Vec::new();
    let hmac = json!({"exchange": "binance", "name": "Canary", "api_key": app.venue.hmac_api_key, "api_secret": app.venue.hmac_secret});
    let created = app.post("/api/v1/exchange-accounts", hmac, Some(&session)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let ed = json!({"exchange": "binance", "name": "Ed canary", "api_key": test_support::ED25519_API_KEY, "private_key": app.venue.ed25519_pem});
    let created_ed = app.post("/api/v1/exchange-accounts", ed, Some(&session)).await;
    assert_eq!(created_ed.status, 201, "{}", created_ed.text);
    // A refused attempt and a failed one carry the secret in the request, too.
    let mut wrong =
        json!({"exchange": "binance", "name": "Wrong", "api_key": "NoSuchKey1", "api_secret": app.venue.hmac_secret});
    responses.push(app.post("/api/v1/exchange-accounts", wrong.take(), Some(&session)).await.text);
    for id in [created.json["id"].as_str().unwrap(), created_ed.json["id"].as_str().unwrap()] {
        for path in
            [format!("/api/v1/exchange-accounts/{id}"), format!("/api/v1/exchange-accounts/{id}/balances?reveal=true")]
        {
            let reply = app.get(&path, Some(&session)).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.text);
            responses.push(reply.text);
        }
        responses
            .push(app.post(&format!("/api/v1/exchange-accounts/{id}/recheck"), json!({}), Some(&session)).await.text);
    }
    let bot = json!({
        "type": "dca", "name": "Canary bot", "exchange_account_id": created.json["id"], "pairs": ["USDT_BTC"],
        "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 1,
        "safety_order_step_percentage": "1", "take_profit": "1", "strategy_list": [{"strategy": "manual"}],
    });
    let bot = app.post("/api/v1/bots", bot, Some(&session)).await;
    assert_eq!(bot.status, 201, "{}", bot.text);
    let webhook_secret = bot.json["webhook_secret"].as_str().unwrap().to_owned();
    let bot_id = bot.json["id"].as_str().unwrap();
    for path in
        [format!("/api/v1/bots/{bot_id}"), format!("/bots/{bot_id}"), "/api/v1/bots".to_owned(), "/bots".to_owned()]
    {
        let reply = app.get(&path, Some(&session)).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        responses.push(reply.text);
    }
    for path in ["/api/v1/exchange-accounts", "/api/v1/audit-log", "/api/v1/me", "/dashboard", "/exchange-accounts"] {
        responses.push(app.get(path, Some(&session)).await.text);
    }
    responses.push(created.text.clone());
    responses.push(created_ed.text.clone());

    let dumped = dump(&app).await;
    assert!(dumped.contains(&app.venue.hmac_api_key), "the dump is readable (sanity check of the canary search)");
    let logged = logs::captured();
    let pem_body: String = app.venue.ed25519_pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(&pem_body).unwrap();
    let seed = &der[der.len() - 32..];
    let mut canaries = forms(&app.venue.hmac_secret);
    canaries.push(pem_body.clone());
    canaries.push(seed.iter().map(|b| format!("{b:02x}")).collect());
    canaries.push(base64::engine::general_purpose::STANDARD.encode(seed));
    canaries.extend(forms(&webhook_secret));
    for form in &canaries {
        assert!(!dumped.contains(form.as_str()), "an exchange secret is in the database dump as {form:?}");
        assert!(!logged.contains(form.as_str()), "an exchange secret is in the logs as {form:?}");
        for (n, body) in responses.iter().enumerate() {
            assert!(!body.contains(form.as_str()), "an exchange secret is in HTTP response {n} as {form:?}");
        }
    }
}

fn uuid_like() -> String {
    let mut bytes = [0u8; 16];
    auth::Random::fill(&auth::OsRandom, &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
