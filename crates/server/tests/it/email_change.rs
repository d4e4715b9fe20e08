//! Changing the sign-in email (AU-8 step-up, AU-9 notices): confirmed by a link to the new address,
//! announced to the old one, and never revealing whether the new address has an account.

use std::time::Duration;

use serde_json::json;

use crate::{Backend, PASSWORD, app, token_of};

crate::on_both!(the_email_changes_only_through_the_new_address, a_taken_address_gets_a_notice_and_no_link);

pub async fn the_email_changes_only_through_the_new_address(backend: Backend) {
    let app = app(backend).await;
    let first = app.signed_in("old@example.com", PASSWORD).await;
    let second = app.login("old@example.com", PASSWORD).await;

    let bad = app.post("/api/v1/me/email", json!({ "new_email": "not an address" }), Some(&first)).await;
    assert_eq!((bad.status, bad.json["field"].as_str()), (422, Some("new_email")));
    let same = app.post("/api/v1/me/email", json!({ "new_email": "OLD@example.com" }), Some(&first)).await;
    assert_eq!((same.status, same.json["field"].as_str()), (422, Some("new_email")));

    // Step-up: an old session must confirm the password first.
    app.clock.advance(Duration::from_secs(5 * 60 + 1));
    let _ = app.get("/api/v1/me", Some(&second)).await;
    let late = app.post("/api/v1/me/email", json!({ "new_email": "new@example.com" }), Some(&first)).await;
    assert_eq!((late.status, late.code()), (403, "reauth_required"));
    let reauth = app.post("/api/v1/auth/reauth", json!({ "password": PASSWORD }), Some(&first)).await;
    let first = reauth.session_cookie().expect("rotated");
    let asked = app.post("/api/v1/me/email", json!({ "new_email": "New@Example.com" }), Some(&first)).await;
    assert_eq!((asked.status, asked.json["status"].as_str()), (202, Some("confirmation_sent")));

    let link = app.smtp.wait_for("New@Example.com", 1).await[0]
        .link(&format!("{}/confirm-email-change?token=", app.base))
        .expect("a confirmation link to the new address");
    let old_mails = app.smtp.wait_for("old@example.com", 2).await;
    let notice = old_mails.iter().find(|m| m.subject().contains("change of your Bulwark email")).expect("notice");
    assert!(notice.body().contains("New@example.com"), "the notice names the new address");
    // Nothing changed yet.
    assert_eq!(app.get("/api/v1/me", Some(&first)).await.json["email"], "old@example.com");

    let token = token_of(&link);
    let confirmed = app.post("/api/v1/me/email/confirm", json!({ "token": token }), Some(&first)).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert_eq!(confirmed.json["email"], "New@example.com");
    let me = app.get("/api/v1/me", Some(&first)).await;
    assert_eq!((me.json["email"].as_str(), me.json["email_verified"].as_bool()), (Some("New@example.com"), Some(true)));
    assert_eq!(app.get("/api/v1/me", Some(&second)).await.status, 401, "other sessions end");
    let again = app.get(&format!("/confirm-email-change?token={token}"), None).await;
    assert_eq!(again.status, 400, "single use");

    let old = app.try_login("old@example.com", PASSWORD, &[]).await;
    assert_eq!((old.status, old.code()), (401, "invalid_credentials"));
    assert_eq!(app.try_login("new@example.com", PASSWORD, &[]).await.status, 200);
    let mails = app.smtp.wait_for("old@example.com", 3).await;
    assert!(mails.iter().any(|m| m.subject() == "Your Bulwark email was changed"), "the old address is told");
    let log = app.get("/api/v1/audit-log", Some(&first)).await;
    let kinds: Vec<&str> = log.json.as_array().unwrap().iter().filter_map(|r| r["kind"].as_str()).collect();
    for kind in ["account.email_change_requested", "account.email_changed"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}

pub async fn a_taken_address_gets_a_notice_and_no_link(backend: Backend) {
    let app = app(backend).await;
    app.signed_in("owner@example.com", PASSWORD).await;
    let mover = app.signed_in("mover@example.com", PASSWORD).await;
    let before = app.smtp.to("owner@example.com").len();
    let asked = app.post("/api/v1/me/email", json!({ "new_email": "owner@example.com" }), Some(&mover)).await;
    assert_eq!((asked.status, asked.json["status"].as_str()), (202, Some("confirmation_sent")), "same answer");
    let mails = app.smtp.wait_for("owner@example.com", before + 1).await;
    let mail = &mails[before];
    assert!(mail.subject().contains("tried to move a Bulwark account"), "{}", mail.subject());
    assert!(mail.link(&format!("{}/confirm-email-change?token=", app.base)).is_none(), "no link");
    assert_eq!(app.get("/api/v1/me", Some(&mover)).await.json["email"], "mover@example.com");
}
