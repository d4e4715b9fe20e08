//! Two-factor sign-in (AU-6, AU-7), step-up re-authentication (AU-8), security notices (AU-9),
//! preferences. Codes come from `oathtool`, an implementation independent of ours, at the app's
//! fake clock.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{Backend, PASSWORD, TestApp, app, token_of};

crate::on_both!(
    setup_confirm_and_sign_in_with_a_code,
    a_code_is_accepted_once_even_by_concurrent_sign_ins,
    malformed_codes_are_422_and_count_for_nothing,
    wrong_codes_are_throttled_like_passwords,
    backup_codes_work_once_and_regenerating_replaces_them,
    step_up_expires_after_five_minutes_and_needs_the_code,
    disabling_needs_password_and_code_and_ends_other_sessions,
    a_password_reset_does_not_bypass_the_second_factor,
    an_unconfirmed_setup_expires_and_can_be_restarted,
    preferences_persist_and_the_anti_phishing_code_marks_every_mail,
);

const EMAIL: &str = "tess@example.com";

async fn login_with(app: &TestApp, fields: Value) -> crate::Reply {
    app.try_login_with(EMAIL, PASSWORD, fields).await
}

fn audit_kinds(reply: &crate::Reply) -> Vec<String> {
    reply.json.as_array().expect("audit rows").iter().map(|r| r["kind"].as_str().unwrap_or("").to_owned()).collect()
}

pub async fn setup_confirm_and_sign_in_with_a_code(backend: Backend) {
    let app = app(backend).await;
    let session = app.signed_in(EMAIL, PASSWORD).await;
    let other = app.login(EMAIL, PASSWORD).await;

    let setup = app.post("/api/v1/2fa/totp/setup", json!({}), Some(&session)).await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    assert_eq!(setup.header("cache-control"), Some("no-store"));
    let secret = setup.json["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32, "160-bit seed as unpadded base32");
    assert!(secret.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)), "{secret}");
    let uri = setup.json["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Bulwark:tess@example.com?"), "{uri}");
    for part in [format!("secret={secret}"), "issuer=Bulwark".to_owned(), "digits=6".into(), "period=30".into()] {
        assert!(uri.contains(&part), "{part} in {uri}");
    }
    let svg = setup.json["qr_svg"].as_str().unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "an inline SVG document");

    // Not on until confirmed.
    assert_eq!(app.get("/api/v1/me", Some(&session)).await.json["totp_enabled"], false);
    let wrong = app.post("/api/v1/2fa/totp/confirm", json!({"code": "000000"}), Some(&session)).await;
    let code = app.totp_now(&secret);
    if code != "000000" {
        assert_eq!((wrong.status, wrong.code()), (401, "invalid_second_factor"));
    }
    let confirmed = app.post("/api/v1/2fa/totp/confirm", json!({ "code": code }), Some(&session)).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let codes: Vec<String> =
        confirmed.json["backup_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);
    assert!(codes.iter().all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'), "{codes:?}");
    let me = app.get("/api/v1/me", Some(&session)).await;
    assert_eq!(me.json["totp_enabled"], true);
    assert_eq!(app.get("/api/v1/me", Some(&other)).await.status, 401, "other sessions end (SE-1)");
    let again = app.post("/api/v1/2fa/totp/setup", json!({}), Some(&session)).await;
    assert_eq!((again.status, again.code()), (409, "already_enabled"));
    let mails = app.smtp.wait_for(EMAIL, 2).await;
    assert!(mails.iter().any(|m| m.subject().contains("Two-factor sign-in is now on")), "AU-9 notice");

    // The password alone is not enough any more, and answers without a session.
    let password_only = login_with(&app, json!({})).await;
    assert_eq!((password_only.status, password_only.code()), (401, "second_factor_required"));
    assert!(password_only.session_cookie().is_none());
    // The confirming code was spent: it cannot sign in.
    let reused = login_with(&app, json!({ "totp_code": code })).await;
    assert_eq!((reused.status, reused.code()), (401, "invalid_second_factor"));

    app.next_totp_step();
    let code = app.totp_now(&secret);
    let signed_in = login_with(&app, json!({ "totp_code": code })).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    assert!(signed_in.session_cookie().is_some());
    let replay = login_with(&app, json!({ "totp_code": code })).await;
    assert_eq!((replay.status, replay.code()), (401, "invalid_second_factor"), "replay in the same step");

    // ±1 step of drift: a code of the step just past still works once; two steps back does not.
    app.next_totp_step();
    let before = app.totp_now(&secret);
    app.next_totp_step();
    let late = login_with(&app, json!({ "totp_code": before })).await;
    assert_eq!(late.status, 200, "one step late: {}", late.text);
    app.next_totp_step();
    app.next_totp_step();
    let old = crate::oathtool_at(&secret, app.unix_secs() - 60);
    let now = app.totp_now(&secret);
    if old != now && old != crate::oathtool_at(&secret, app.unix_secs() - 30) {
        let stale = login_with(&app, json!({ "totp_code": old })).await;
        assert_eq!((stale.status, stale.code()), (401, "invalid_second_factor"), "two steps back");
    }

    let fresh = app.login_with_code(EMAIL, PASSWORD, &now).await;
    let kinds = audit_kinds(&app.get("/api/v1/audit-log?limit=100", Some(&fresh)).await);
    for kind in ["2fa.setup_started", "2fa.enabled", "auth.second_factor_failed", "auth.login_succeeded"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

pub async fn a_code_is_accepted_once_even_by_concurrent_sign_ins(backend: Backend) {
    let app = app(backend).await;
    let session = app.signed_in(EMAIL, PASSWORD).await;
    let (secret, _) = app.enable_totp(&session).await;
    let code = app.totp_now(&secret);
    let body = json!({ "totp_code": code });
    let replies = futures_join(&app, &body).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 1, "exactly one of four simultaneous sign-ins with one code: {:?}", statuses(&replies));
    assert!(replies.iter().filter(|r| r.status != 200).all(|r| r.code() == "invalid_second_factor"));
}

async fn futures_join(app: &TestApp, body: &Value) -> Vec<crate::Reply> {
    let (a, b, c, d) = tokio::join!(
        login_with(app, body.clone()),
        login_with(app, body.clone()),
        login_with(app, body.clone()),
        login_with(app, body.clone()),
    );
    vec![a, b, c, d]
}

fn statuses(replies: &[crate::Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.status).collect()
}

pub async fn malformed_codes_are_422_and_count_for_nothing(backend: Backend) {
    let app = app(backend).await;
    let session = app.signed_in(EMAIL, PASSWORD).await;
    let (secret, _) = app.enable_totp(&session).await;
    for bad in ["12345", "1234567", "12a456", "abcdef", "١٢٣٤٥٦"] {
        let reply = login_with(&app, json!({ "totp_code": bad })).await;
        assert_eq!((reply.status, reply.code()), (422, "invalid_input"), "{bad}");
        assert_eq!(reply.json["field"], "totp_code");
    }
    let reply = login_with(&app, json!({ "backup_code": "abc-12" })).await;
    assert_eq!((reply.status, reply.json["field"].as_str()), (422, Some("backup_code")));
    let reply = app.post("/api/v1/2fa/totp/confirm", json!({"code": "12 34"}), Some(&session)).await;
    assert_eq!(reply.status, 422);
    // None of those counted as a failure: ten more malformed ones still leave sign-in open.
    for _ in 0..10 {
        assert_eq!(login_with(&app, json!({ "totp_code": "x" })).await.status, 422);
    }
    let code = app.totp_now(&secret);
    assert_eq!(login_with(&app, json!({ "totp_code": code })).await.status, 200);
}

pub async fn wrong_codes_are_throttled_like_passwords(backend: Backend) {
    let app = app(backend).await;
    let session = app.signed_in(EMAIL, PASSWORD).await;
    let (secret, _) = app.enable_totp(&session).await;
    let right = app.totp_now(&secret);
    let wrong = if right == "123456" { "654321" } else { "123456" };
    let limit = app.config.throttles.login_account.limit;
    for _ in 0..limit {
        let reply = login_with(&app, json!({ "totp_code": wrong })).await;
        assert_eq!((reply.status, reply.code()), (401, "invalid_second_factor"));
    }
    let blocked = login_with(&app, json!({ "totp_code": right })).await;
    assert_eq!((blocked.status, blocked.code()), (429, "rate_limited"), "even the right code waits");
    assert!(blocked.header("retry-after").is_some());
    app.clock.advance(Duration::from_secs(16 * 60));
    let code = app.totp_now(&secret);
    assert_eq!(login_with(&app, json!({ "totp_code": code })).await.status, 200, "open again after the block");
}

pub async fn backup_codes_work_once_and_regenerating_replaces_them(backend: Backend) {
    let app = app(backend).await;
    let session = app.signed_in(EMAIL, PASSWORD).await;
    let (_, codes) = app.enable_totp(&session).await;
    // Typed in upper case with spaces: still the code.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let first = login_with(&app, json!({ "backup_code": typed })).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = login_with(&app, json!({ "backup_code": codes[0] })).await;
    assert_eq!((again.status, again.code()), (401, "invalid_second_factor"), "single use");
    let mails = app.smtp.wait_for(EMAIL, 3).await;
    let notice = mails.iter().find(|m| m.subject().contains("backup code was used")).expect("AU-9 notice");
    assert!(notice.body().contains("9 unused codes are left"), "{}", notice.body());

    let fresh_session = first.session_cookie().unwrap();
    let status = app.get("/api/v1/2fa/status", Some(&fresh_session)).await;
    assert_eq!(status.json["backup_codes_left"], 9);
    let regenerated = app.post("/api/v1/2fa/backup-codes/regenerate", json!({}), Some(&fresh_session)).await;
    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    let new_codes: Vec<String> =
        regenerated.json["backup_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|c| !codes.contains(c)));
    let old = login_with(&app, json!({ "backup_code": codes[1] })).await;
    assert_eq!((old.status, old.code()), (401, "invalid_second_factor"), "old codes die");
    assert_eq!(login_with(&app, json!({ "backup_code": new_codes[9] })).await.status, 200);
    let kinds = audit_kinds(&app.get("/api/v1/audit-log?limit=100", Some(&fresh_session)).await);
    assert!(kinds.iter().any(|k| k == "2fa.backup_codes_regenerated"), "{kinds:?}");
}

pub async fn step_up_expires_after_five_minutes_and_needs_the_code(backend: Backend) {
    let app = app(backend).await;
    // Without 2FA: the password alone re-authenticates.
    let plain = app.signed_in("pat@example.com", PASSWORD).await;
    app.clock.advance(Duration::from_secs(5 * 60 + 1));
    let late = app.post("/api/v1/2fa/totp/setup", json!({}), Some(&plain)).await;
    assert_eq!((late.status, late.code()), (403, "reauth_required"));
    let reauth = app.post("/api/v1/auth/reauth", json!({ "password": PASSWORD }), Some(&plain)).await;
    assert_eq!(reauth.status, 204);
    let plain = reauth.session_cookie().expect("a new token on re-authentication");
    assert_eq!(app.post("/api/v1/2fa/totp/setup", json!({}), Some(&plain)).await.status, 200);

    // With 2FA: every step-up route refuses an old session, and re-auth needs the code.
    let session = app.signed_in(EMAIL, PASSWORD).await;
    let (secret, _) = app.enable_totp(&session).await;
    app.clock.advance(Duration::from_secs(5 * 60));
    for (path, body) in [
        ("/api/v1/2fa/totp/setup", json!({})),
        ("/api/v1/2fa/backup-codes/regenerate", json!({})),
        ("/api/v1/2fa/totp/disable", json!({"password": PASSWORD, "code": app.totp_now(&secret)})),
    ] {
        let reply = app.post(path, body, Some(&session)).await;
        assert_eq!((reply.status, reply.code()), (403, "reauth_required"), "{path}");
    }
    assert_eq!(app.get("/api/v1/me", Some(&session)).await.json["totp_enabled"], true, "nothing changed");
    let password_only = app.post("/api/v1/auth/reauth", json!({ "password": PASSWORD }), Some(&session)).await;
    assert_eq!((password_only.status, password_only.code()), (401, "second_factor_required"));
    let code = app.totp_now(&secret);
    let reauth =
        app.post("/api/v1/auth/reauth", json!({ "password": PASSWORD, "totp_code": code }), Some(&session)).await;
    assert_eq!(reauth.status, 204, "{}", reauth.text);
    let session = reauth.session_cookie().unwrap();
    let replay =
        app.post("/api/v1/auth/reauth", json!({ "password": PASSWORD, "totp_code": code }), Some(&session)).await;
    assert_eq!((replay.status, replay.code()), (401, "invalid_second_factor"), "the code was spent");
    assert_eq!(app.post("/api/v1/2fa/backup-codes/regenerate", json!({}), Some(&session)).await.status, 200);
    app.clock.advance(Duration::from_secs(5 * 60 + 1));
    let expired = app.post("/api/v1/2fa/backup-codes/regenerate", json!({}), Some(&session)).await;
    assert_eq!((expired.status, expired.code()), (403, "reauth_required"), "the window is five minutes");
}

pub async fn disabling_needs_password_and_code_and_ends_other_sessions(backend: Backend) {
    let app = app(backend).await;
    let session = app.signed_in(EMAIL, PASSWORD).await;
    let (secret, codes) = app.enable_totp(&session).await;
    let code = app.totp_now(&secret);
    let other = app.login_with_code(EMAIL, PASSWORD, &code).await;
    app.next_totp_step();
    let session = {
        let code = app.totp_now(&secret);
        app.login_with_code(EMAIL, PASSWORD, &code).await
    };
    app.next_totp_step();
    let code = app.totp_now(&secret);
    let bad_password =
        app.post("/api/v1/2fa/totp/disable", json!({"password": "not it at all", "code": code}), Some(&session)).await;
    assert_eq!((bad_password.status, bad_password.code()), (401, "invalid_credentials"));
    let wrong = if code == "111111" { "222222" } else { "111111" };
    let bad_code =
        app.post("/api/v1/2fa/totp/disable", json!({"password": PASSWORD, "code": wrong}), Some(&session)).await;
    assert_eq!((bad_code.status, bad_code.code()), (401, "invalid_second_factor"));
    let malformed =
        app.post("/api/v1/2fa/totp/disable", json!({"password": PASSWORD, "code": "12"}), Some(&session)).await;
    assert_eq!((malformed.status, malformed.code()), (422, "invalid_input"));
    assert_eq!(app.get("/api/v1/me", Some(&session)).await.json["totp_enabled"], true);

    let off = app.post("/api/v1/2fa/totp/disable", json!({"password": PASSWORD, "code": code}), Some(&session)).await;
    assert_eq!(off.status, 204, "{}", off.text);
    assert_eq!(app.get("/api/v1/me", Some(&session)).await.json["totp_enabled"], false);
    assert_eq!(app.get("/api/v1/me", Some(&other)).await.status, 401, "other sessions end");
    let mails = app.smtp.wait_for(EMAIL, 3).await;
    assert!(mails.iter().any(|m| m.subject().contains("turned off")), "AU-9 notice");
    // Password alone signs in again; the old backup codes are gone with the seed.
    assert_eq!(login_with(&app, json!({})).await.status, 200);
    let again =
        app.post("/api/v1/2fa/totp/disable", json!({"password": PASSWORD, "code": codes[0]}), Some(&session)).await;
    assert_eq!((again.status, again.code()), (409, "not_enabled"));
    let kinds = audit_kinds(&app.get("/api/v1/audit-log?limit=100", Some(&session)).await);
    assert!(kinds.iter().any(|k| k == "2fa.disabled"), "{kinds:?}");
}

pub async fn a_password_reset_does_not_bypass_the_second_factor(backend: Backend) {
    let app = app(backend).await;
    let session = app.signed_in(EMAIL, PASSWORD).await;
    let (secret, _) = app.enable_totp(&session).await;
    app.post("/api/v1/auth/password/reset-request", json!({ "email": EMAIL }), None).await;
    let mails = app.smtp.wait_for(EMAIL, 3).await;
    let link = mails.iter().rev().find_map(|m| m.link(&format!("{}/reset-password?token=", app.base))).unwrap();
    let token = token_of(&link);
    let new_password = "marble lantern orbit 77";
    let no_code =
        app.post("/api/v1/auth/password/reset", json!({"token": token, "new_password": new_password}), None).await;
    assert_eq!((no_code.status, no_code.code()), (401, "second_factor_required"));
    let code = app.totp_now(&secret);
    let wrong = if code == "111111" { "222222" } else { "111111" };
    let bad = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token, "new_password": new_password, "totp_code": wrong}),
            None,
        )
        .await;
    assert_eq!((bad.status, bad.code()), (401, "invalid_second_factor"));
    assert_eq!(app.get("/api/v1/me", Some(&session)).await.status, 200, "nothing changed yet");
    let ok = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token, "new_password": new_password, "totp_code": code}),
            None,
        )
        .await;
    assert_eq!(ok.status, 204, "the link survived the failed attempts: {}", ok.text);
    assert_eq!(app.get("/api/v1/me", Some(&session)).await.status, 401, "all sessions end");
    app.next_totp_step();
    let code = app.totp_now(&secret);
    let reply = app
        .post("/api/v1/auth/login", json!({"email": EMAIL, "password": new_password, "totp_code": code}), None)
        .await;
    assert_eq!(reply.status, 200, "2FA stays on after a reset");
}

pub async fn an_unconfirmed_setup_expires_and_can_be_restarted(backend: Backend) {
    let app = app(backend).await;
    let session = app.signed_in(EMAIL, PASSWORD).await;
    let first = app.post("/api/v1/2fa/totp/setup", json!({}), Some(&session)).await;
    let first_secret = first.json["secret"].as_str().unwrap().to_owned();
    let second = app.post("/api/v1/2fa/totp/setup", json!({}), Some(&session)).await;
    let second_secret = second.json["secret"].as_str().unwrap().to_owned();
    assert_ne!(first_secret, second_secret, "a new seed each time");
    let old = app.totp_now(&first_secret);
    if old != app.totp_now(&second_secret) {
        let reply = app.post("/api/v1/2fa/totp/confirm", json!({ "code": old }), Some(&session)).await;
        assert_eq!((reply.status, reply.code()), (401, "invalid_second_factor"), "the replaced seed is dead");
    }
    app.clock.advance(Duration::from_secs(16 * 60));
    let _ = app.get("/api/v1/me", Some(&session)).await;
    let code = app.totp_now(&second_secret);
    let late = app.post("/api/v1/2fa/totp/confirm", json!({ "code": code }), Some(&session)).await;
    assert_eq!((late.status, late.code()), (409, "setup_required"), "{}", late.text);
    assert_eq!(app.get("/api/v1/me", Some(&session)).await.json["totp_enabled"], false);
}

pub async fn preferences_persist_and_the_anti_phishing_code_marks_every_mail(backend: Backend) {
    let app = app(backend).await;
    let session = app.signed_in(EMAIL, PASSWORD).await;
    let patch = |body: Value| app.send("PATCH", "/api/v1/me/preferences", Some(body), Some(&session), &[]);
    let reply = patch(json!({ "hide_balances": true })).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["hide_balances"], true);
    assert_eq!(reply.json["anti_phishing_code"], Value::Null);
    let later = app.login(EMAIL, PASSWORD).await;
    assert_eq!(app.get("/api/v1/me", Some(&later)).await.json["hide_balances"], true, "kept across sessions");

    let too_long = patch(json!({ "anti_phishing_code": "x".repeat(33) })).await;
    assert_eq!((too_long.status, too_long.json["field"].as_str()), (422, Some("anti_phishing_code")));
    let two_lines = patch(json!({ "anti_phishing_code": "a\nb", "hide_balances": false })).await;
    assert_eq!(two_lines.status, 422);
    assert_eq!(
        app.get("/api/v1/me", Some(&session)).await.json["hide_balances"],
        true,
        "a refused patch changes nothing"
    );
    let unknown = patch(json!({ "hide_balance": false })).await;
    assert_eq!((unknown.status, unknown.code()), (422, "invalid_input"), "a typo is not silently ignored");

    let set = patch(json!({ "anti_phishing_code": "  blue heron  " })).await;
    assert_eq!(set.json["anti_phishing_code"], "blue heron");
    assert_eq!(set.json["hide_balances"], true, "untouched field kept");
    let before = app.smtp.to(EMAIL).len();
    app.post("/api/v1/auth/password/reset-request", json!({ "email": EMAIL }), None).await;
    let mails = app.smtp.wait_for(EMAIL, before + 1).await;
    assert!(mails[before].body().starts_with("Your anti-phishing code: blue heron"), "{}", mails[before].body());

    let cleared = patch(json!({ "anti_phishing_code": null })).await;
    assert_eq!(cleared.json["anti_phishing_code"], Value::Null);
    let kinds = audit_kinds(&app.get("/api/v1/audit-log?limit=100", Some(&session)).await);
    assert_eq!(kinds.iter().filter(|k| *k == "account.preferences_changed").count(), 3, "{kinds:?}");
}
