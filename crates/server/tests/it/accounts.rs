//! Registration, email verification, sign-in, passwords (AU-1..5, AU-9).

use std::time::Duration;

use serde_json::json;

use crate::{Backend, PASSWORD, app, token_of};

crate::on_both!(
    register_verify_sign_in_and_out,
    a_taken_email_answers_the_same_and_mails_the_owner,
    verification_links_work_once_and_expire,
    password_change_ends_other_sessions,
    password_reset_by_mail,
    reset_links_expire_after_an_hour,
    a_sign_in_from_a_new_device_is_announced_by_mail,
);

pub async fn register_verify_sign_in_and_out(backend: Backend) {
    let app = app(backend).await;
    let reply =
        app.post("/api/v1/auth/register", json!({"email": "Alice@Example.com", "password": PASSWORD}), None).await;
    assert_eq!((reply.status, reply.json.clone()), (201, json!({"status": "verification_sent"})));

    let mail = app.smtp.wait_for("Alice@example.com", 1).await.remove(0);
    assert_eq!(mail.subject(), "Confirm your email for Bulwark");
    let link = mail.link(&format!("{}/verify-email?token=", app.base)).expect("link to BULWARK_PUBLIC_URL");

    // Signing in before confirming works; the account says it is unconfirmed.
    let reply = app.post("/api/v1/auth/login", json!({"email": "alice@example.com", "password": PASSWORD}), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["user"]["email"], "Alice@example.com");
    assert_eq!(reply.json["user"]["email_verified"], false);
    let cookie = reply.session_cookie().expect("cookie");

    let page = app.get(&link.replacen(&app.base, "", 1), None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Email confirmed"));

    let me = app.get("/api/v1/me", Some(&cookie)).await;
    assert_eq!(me.status, 200);
    for field in ["id", "email", "email_verified", "totp_enabled", "hide_balances"] {
        assert!(me.json.get(field).is_some(), "{field} in {}", me.text);
    }
    assert_eq!(me.json["email_verified"], true);
    assert_eq!(me.json["totp_enabled"], false);

    let out = app.post("/api/v1/auth/logout", json!({}), Some(&cookie)).await;
    assert_eq!(out.status, 204);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let me = app.get("/api/v1/me", Some(&cookie)).await;
    assert_eq!((me.status, me.code()), (401, "unauthenticated"), "the cookie is dead server-side");
    // Logging out again is harmless.
    assert_eq!(app.post("/api/v1/auth/logout", json!({}), Some(&cookie)).await.status, 204);
}

pub async fn a_taken_email_answers_the_same_and_mails_the_owner(backend: Backend) {
    let app = app(backend).await;
    app.register("bob@example.com", PASSWORD).await;
    let again = app
        .post("/api/v1/auth/register", json!({"email": "BOB@example.com", "password": "another passphrase 77"}), None)
        .await;
    assert_eq!((again.status, again.json.clone()), (201, json!({"status": "verification_sent"})), "no enumeration");
    let mails = app.smtp.wait_for("bob@example.com", 2).await;
    assert_eq!(mails[1].subject(), "Someone tried to create a Bulwark account with your email");
    assert!(mails[1].link(&format!("{}/verify-email", app.base)).is_none(), "no verification link for the intruder");
    // The account and its password are unchanged.
    app.login("bob@example.com", PASSWORD).await;
    let wrong = app
        .post("/api/v1/auth/login", json!({"email": "bob@example.com", "password": "another passphrase 77"}), None)
        .await;
    assert_eq!(wrong.status, 401);
}

pub async fn verification_links_work_once_and_expire(backend: Backend) {
    let app = app(backend).await;
    let link = app.register("carol@example.com", PASSWORD).await;
    let token = token_of(&link);
    let first = app.post("/api/v1/auth/verify-email", json!({"token": token}), None).await;
    assert_eq!((first.status, first.json["status"].as_str()), (200, Some("verified")));
    let again = app.post("/api/v1/auth/verify-email", json!({"token": token}), None).await;
    assert_eq!((again.status, again.code()), (400, "invalid_token"));
    let page = app.get(&format!("/verify-email?token={token}"), None).await;
    assert_eq!(page.status, 400, "the page refuses a used link too");

    let link = app.register("dan@example.com", PASSWORD).await;
    app.clock.advance(Duration::from_secs(24 * 3600));
    let late = app.post("/api/v1/auth/verify-email", json!({"token": token_of(&link)}), None).await;
    assert_eq!((late.status, late.code()), (400, "invalid_token"), "expired after 24 h");

    for junk in ["", "short", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "' OR 1=1 --"] {
        let reply = app.post("/api/v1/auth/verify-email", json!({"token": junk}), None).await;
        assert_eq!((reply.status, reply.code()), (400, "invalid_token"), "{junk:?}");
    }
}

pub async fn password_change_ends_other_sessions(backend: Backend) {
    let app = app(backend).await;
    let a = app.signed_in("erin@example.com", PASSWORD).await;
    let b = app.login("erin@example.com", PASSWORD).await;
    let new = "a brand new passphrase 2026";

    let wrong = app
        .post(
            "/api/v1/auth/password/change",
            json!({"current_password": "not it at all 123", "new_password": new}),
            Some(&a),
        )
        .await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    let weak = app
        .post(
            "/api/v1/auth/password/change",
            json!({"current_password": PASSWORD, "new_password": "password"}),
            Some(&a),
        )
        .await;
    assert_eq!((weak.status, weak.code(), weak.json["field"].as_str()), (422, "weak_password", Some("new_password")));
    assert_eq!(app.get("/api/v1/me", Some(&b)).await.status, 200, "failed attempts change nothing");

    let ok = app
        .post("/api/v1/auth/password/change", json!({"current_password": PASSWORD, "new_password": new}), Some(&a))
        .await;
    assert_eq!(ok.status, 204, "{}", ok.text);
    assert_eq!(app.get("/api/v1/me", Some(&a)).await.status, 200, "this session stays");
    assert_eq!(app.get("/api/v1/me", Some(&b)).await.status, 401, "the other session ended");
    assert_eq!(
        app.post("/api/v1/auth/login", json!({"email": "erin@example.com", "password": PASSWORD}), None).await.status,
        401
    );
    app.login("erin@example.com", new).await;
    let mails = app.smtp.wait_for("erin@example.com", 2).await;
    assert!(mails.iter().any(|m| m.subject() == "Your Bulwark password was changed"), "AU-9 notice");

    let anon = app
        .post("/api/v1/auth/password/change", json!({"current_password": new, "new_password": PASSWORD}), None)
        .await;
    assert_eq!((anon.status, anon.code()), (401, "unauthenticated"));
}

pub async fn password_reset_by_mail(backend: Backend) {
    let app = app(backend).await;
    let session = app.signed_in("frank@example.com", PASSWORD).await;
    let unknown = app.post("/api/v1/auth/password/reset-request", json!({"email": "nobody@example.com"}), None).await;
    assert_eq!(unknown.status, 202, "the same answer for an unknown address");
    let known = app.post("/api/v1/auth/password/reset-request", json!({"email": "FRANK@example.com"}), None).await;
    assert_eq!((known.status, known.json.clone()), (202, unknown.json.clone()));
    let mails = app.smtp.wait_for("frank@example.com", 2).await;
    let reset = mails.iter().find(|m| m.subject() == "Reset your Bulwark password").expect("reset mail");
    let token = token_of(&reset.link(&format!("{}/reset-password?token=", app.base)).expect("reset link"));
    assert!(app.smtp.to("nobody@example.com").is_empty(), "no mail for an unknown address");

    // A refused password leaves the link usable.
    let weak =
        app.post("/api/v1/auth/password/reset", json!({"token": token, "new_password": "qwerty123"}), None).await;
    assert_eq!((weak.status, weak.code()), (422, "weak_password"));
    let page = app.get(&format!("/reset-password?token={token}"), None).await;
    assert_eq!(page.status, 200);
    let new = "reset to a calm new phrase";
    let ok = app.post("/api/v1/auth/password/reset", json!({"token": token, "new_password": new}), None).await;
    assert_eq!(ok.status, 204, "{}", ok.text);
    assert_eq!(app.get("/api/v1/me", Some(&session)).await.status, 401, "every session ended");
    let again = app
        .post("/api/v1/auth/password/reset", json!({"token": token, "new_password": "and yet another one 9"}), None)
        .await;
    assert_eq!((again.status, again.code()), (400, "invalid_token"), "single use");
    app.login("frank@example.com", new).await;
    assert_eq!(
        app.post("/api/v1/auth/login", json!({"email": "frank@example.com", "password": PASSWORD}), None).await.status,
        401
    );
}

pub async fn reset_links_expire_after_an_hour(backend: Backend) {
    let app = app(backend).await;
    app.register("gina@example.com", PASSWORD).await;
    app.post("/api/v1/auth/password/reset-request", json!({"email": "gina@example.com"}), None).await;
    let mails = app.smtp.wait_for("gina@example.com", 2).await;
    let token = token_of(&mails[1].link(&format!("{}/reset-password?token=", app.base)).expect("reset link"));
    app.clock.advance(Duration::from_secs(3600));
    let late = app
        .post("/api/v1/auth/password/reset", json!({"token": token, "new_password": "too late for this one"}), None)
        .await;
    assert_eq!((late.status, late.code()), (400, "invalid_token"));
}

#[tokio::test]
async fn weak_and_strong_passwords() {
    let app = app(Backend::Sqlite).await;
    let cases: [(&str, bool); 8] = [
        ("password", false),
        ("123456", false),
        ("qwerty123", false),
        ("fourteen chars", false),       // 14 characters, no second factor yet
        ("passwordpassword", false),     // long but common
        ("henrietta.lacks.1951", false), // contains the local part of the email
        ("violet kettle thunder 42", true),
        ("ключ от сейфа 7 и ещё немного", true),
    ];
    for (i, (password, ok)) in cases.iter().enumerate() {
        let email = if i == 5 { "henrietta.lacks@example.com".to_owned() } else { format!("user{i}@example.com") };
        let reply = app.post("/api/v1/auth/register", json!({"email": email, "password": password}), None).await;
        if *ok {
            assert_eq!(reply.status, 201, "{password:?}: {}", reply.text);
        } else {
            assert_eq!((reply.status, reply.code()), (422, "weak_password"), "{password:?}: {}", reply.text);
            assert_eq!(reply.json["field"], "password");
            assert!(reply.json["message"].as_str().unwrap().len() > 10, "a human reason");
            assert!(app.store.user_by_email(&email).await.unwrap().is_none(), "nothing written");
        }
    }
    let long64: String = "tangerine orbit quietly ".repeat(3).chars().take(64).collect();
    let reply = app.post("/api/v1/auth/register", json!({"email": "long@example.com", "password": long64}), None).await;
    assert_eq!(reply.status, 201, "64 characters are accepted");
}

#[tokio::test]
async fn invalid_emails_are_refused() {
    let app = app(Backend::Sqlite).await;
    for email in ["", "plain", "a@b", "two@@example.com", "sp ace@example.com"] {
        let reply = app.post("/api/v1/auth/register", json!({"email": email, "password": PASSWORD}), None).await;
        assert_eq!((reply.status, reply.code()), (422, "invalid_email"), "{email:?}");
        assert_eq!(reply.json["field"], "email");
    }
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = app(Backend::Sqlite).await;
    app.register("hank@example.com", PASSWORD).await;
    let wrong = app
        .post("/api/v1/auth/login", json!({"email": "hank@example.com", "password": "wrong wrong wrong 1"}), None)
        .await;
    let unknown = app
        .post("/api/v1/auth/login", json!({"email": "ghost@example.com", "password": "wrong wrong wrong 1"}), None)
        .await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    assert_eq!((unknown.status, unknown.json.clone()), (wrong.status, wrong.json.clone()));
    assert!(wrong.session_cookie().is_none());
}

#[tokio::test]
async fn an_old_hash_is_upgraded_at_sign_in() {
    use auth::{HashParams, OsRandom, Password, PasswordHasher};
    use domain::{AuditId, Email, Timestamp, UserId};
    let app = app(Backend::Sqlite).await;
    let weak = PasswordHasher::new(HashParams { memory_kib: 4096, iterations: 1, parallelism: 1 }).unwrap();
    let old = weak.hash(&Password::new(PASSWORD), &OsRandom).unwrap();
    let id = UserId::from_random_bytes([7; 16]);
    let user = store::NewUser {
        id,
        email: Email::parse("ida@example.com").unwrap(),
        password_phc: old.as_phc().to_owned(),
        created_at: Timestamp::from_unix_millis(0),
    };
    let token = store::NewEmailToken {
        hash: [1; 32],
        user_id: id,
        purpose: store::TokenPurpose::VerifyEmail,
        created_at: user.created_at,
        expires_at: user.created_at,
    };
    let audit = store::AuditRecord {
        id: AuditId::from_random_bytes([8; 16]),
        user_id: Some(id),
        at: user.created_at,
        kind: "auth.registered".into(),
        ip: "".into(),
        user_agent: "".into(),
        detail: "{}".into(),
    };
    app.store.create_user(&user, &token, &audit).await.unwrap();
    app.login("ida@example.com", PASSWORD).await;
    let stored = app.store.user_by_id(id).await.unwrap().unwrap().password_phc;
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
    app.login("ida@example.com", PASSWORD).await;
}

pub async fn a_sign_in_from_a_new_device_is_announced_by_mail(backend: Backend) {
    let app = app(backend).await;
    app.register("uma@example.com", PASSWORD).await;
    let login = |ua: &'static str| {
        let app = &app;
        async move {
            let reply = app.try_login("uma@example.com", PASSWORD, &[("user-agent", ua)]).await;
            assert_eq!(reply.status, 200);
        }
    };
    login("Desktop browser").await; // the first sign-in of an account is expected: no notice
    login("Desktop browser").await; // a known device: no notice
    login("Unknown phone").await; // new: a notice
    let mails = app.smtp.wait_for("uma@example.com", 2).await;
    let notice = &mails[1];
    assert_eq!(notice.subject(), "New sign-in to your Bulwark account");
    assert!(notice.data.contains("Unknown phone") && notice.data.contains("127.0.0.1"));
    // A later mail proves no other notice was queued before it.
    app.post("/api/v1/auth/password/reset-request", json!({"email": "uma@example.com"}), None).await;
    let mails = app.smtp.wait_for("uma@example.com", 3).await;
    let notices = mails.iter().filter(|m| m.subject().starts_with("New sign-in")).count();
    assert_eq!(notices, 1, "{:?}", mails.iter().map(|m| m.subject()).collect::<Vec<_>>());
}
