//! The install's operator (issue 8, "safe defaults"): no default account; the first account is
//! the operator, who alone reads and changes the install's settings (registration open or closed).

use std::time::Duration;

use serde_json::json;

use crate::{Backend, PASSWORD, Reply, TestApp, app};

crate::on_both!(
    the_first_account_is_the_operator,
    only_the_operator_reads_and_changes_the_settings,
    closed_registration_creates_no_account_and_sends_no_mail,
    the_security_page_shows_the_operator_section_to_the_operator_only,
);

const SETTINGS: &str = "/api/v1/operator/settings";

async fn put(app: &TestApp, body: serde_json::Value, cookie: &str) -> Reply {
    app.send("PUT", SETTINGS, Some(body), Some(cookie), &[]).await
}

pub async fn the_first_account_is_the_operator(backend: Backend) {
    let app = app(backend).await;
    let first = app.signed_in("first@example.com", PASSWORD).await;
    let second = app.signed_in("second@example.com", PASSWORD).await;
    let third = app.signed_in("third@example.com", PASSWORD).await;
    let me = app.get("/api/v1/me", Some(&first)).await;
    assert_eq!((me.status, me.json["operator"].as_bool()), (200, Some(true)), "{}", me.text);
    for cookie in [&second, &third] {
        let me = app.get("/api/v1/me", Some(cookie)).await;
        assert_eq!((me.status, me.json["operator"].as_bool()), (200, Some(false)), "{}", me.text);
    }
    // The sign-in answer carries the same user object.
    let login = app.try_login("first@example.com", PASSWORD, &[]).await;
    assert_eq!(login.json["user"]["operator"], true, "{}", login.text);
}

pub async fn only_the_operator_reads_and_changes_the_settings(backend: Backend) {
    let app = app(backend).await;
    let operator = app.signed_in("op@example.com", PASSWORD).await;
    let member = app.signed_in("member@example.com", PASSWORD).await;

    let anon = app.get(SETTINGS, None).await;
    assert_eq!((anon.status, anon.code()), (401, "unauthenticated"));
    let anon = app.send("PUT", SETTINGS, Some(json!({"registration": "closed"})), None, &[]).await;
    assert_eq!((anon.status, anon.code()), (401, "unauthenticated"));
    // Another account is refused on both routes, though its session is fresh (no step-up asked).
    let read = app.get(SETTINGS, Some(&member)).await;
    assert_eq!((read.status, read.code()), (403, "forbidden"), "{}", read.text);
    let write = put(&app, json!({"registration": "closed"}), &member).await;
    assert_eq!((write.status, write.code()), (403, "forbidden"), "{}", write.text);

    let read = app.get(SETTINGS, Some(&operator)).await;
    assert_eq!((read.status, read.json.clone()), (200, json!({"registration": "open"})), "open by default");

    // Bad input: a clear error naming the field, and nothing changes.
    for bad in [json!({"registration": "maybe"}), json!({"registration": true}), json!({"registration": null})] {
        let reply = put(&app, bad.clone(), &operator).await;
        assert_eq!(
            (reply.status, reply.code(), reply.json["field"].as_str()),
            (422, "invalid_input", Some("registration")),
            "{bad} {}",
            reply.text
        );
    }
    let unknown = put(&app, json!({"registration": "closed", "admin": true}), &operator).await;
    assert_eq!((unknown.status, unknown.code()), (422, "invalid_input"), "{}", unknown.text);
    assert_eq!(app.get(SETTINGS, Some(&operator)).await.json, json!({"registration": "open"}));

    // Cross-origin: refused like every state change.
    let evil = app
        .send(
            "PUT",
            SETTINGS,
            Some(json!({"registration": "closed"})),
            Some(&operator),
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!((evil.status, evil.code()), (403, "csrf_rejected"));
    assert_eq!(app.get(SETTINGS, Some(&operator)).await.json, json!({"registration": "open"}));

    // Step-up: past the re-authentication window the change needs the password again.
    app.clock.advance(Duration::from_secs(6 * 60));
    let late = put(&app, json!({"registration": "closed"}), &operator).await;
    assert_eq!((late.status, late.code()), (403, "reauth_required"), "{}", late.text);
    assert_eq!(app.get(SETTINGS, Some(&operator)).await.json, json!({"registration": "open"}));
    let reauth = app.post("/api/v1/auth/reauth", json!({"password": PASSWORD}), Some(&operator)).await;
    assert_eq!(reauth.status, 204, "{}", reauth.text);
    let operator = reauth.session_cookie().expect("a new token on re-authentication");

    let closed = put(&app, json!({"registration": "closed"}), &operator).await;
    assert_eq!((closed.status, closed.json.clone()), (200, json!({"registration": "closed"})), "{}", closed.text);
    assert_eq!(app.get(SETTINGS, Some(&operator)).await.json, json!({"registration": "closed"}));
    // The same value again is no change: answered, not audited twice.
    let same = put(&app, json!({"registration": "closed"}), &operator).await;
    assert_eq!((same.status, same.json.clone()), (200, json!({"registration": "closed"})));
    let reopened = put(&app, json!({"registration": "open"}), &operator).await;
    assert_eq!((reopened.status, reopened.json.clone()), (200, json!({"registration": "open"})));
    // An empty body changes nothing.
    assert_eq!(put(&app, json!({}), &operator).await.json, json!({"registration": "open"}));

    let log = app.get("/api/v1/audit-log", Some(&operator)).await;
    let changes: Vec<_> =
        log.json.as_array().expect("a list").iter().filter(|e| e["kind"] == "operator.settings_changed").collect();
    assert_eq!(changes.len(), 2, "one row per change: {}", log.text);
    assert_eq!(changes[0]["detail"], json!({"old": {"registration": "closed"}, "new": {"registration": "open"}}));
    assert_eq!(changes[1]["detail"], json!({"old": {"registration": "open"}, "new": {"registration": "closed"}}));
    let member_log = app.get("/api/v1/audit-log", Some(&member)).await;
    assert!(!member_log.text.contains("operator.settings_changed"), "{}", member_log.text);
}

pub async fn closed_registration_creates_no_account_and_sends_no_mail(backend: Backend) {
    let app = app(backend).await;
    let operator = app.signed_in("owner@example.com", PASSWORD).await;
    app.signed_in("member@example.com", PASSWORD).await;
    let closed = put(&app, json!({"registration": "closed"}), &operator).await;
    assert_eq!(closed.status, 200, "{}", closed.text);

    // A new address and a taken one get the very same answer (no enumeration), and nothing else.
    let new =
        app.post("/api/v1/auth/register", json!({"email": "newbie@example.com", "password": PASSWORD}), None).await;
    assert_eq!((new.status, new.code()), (403, "registration_closed"), "{}", new.text);
    let taken =
        app.post("/api/v1/auth/register", json!({"email": "member@example.com", "password": PASSWORD}), None).await;
    assert_eq!((taken.status, taken.json.clone()), (new.status, new.json.clone()), "the same for a taken address");
    // Even input that would be refused while open gets the same answer: nothing is looked at.
    let weak = app.post("/api/v1/auth/register", json!({"email": "x@example.com", "password": "password"}), None).await;
    assert_eq!((weak.status, weak.json.clone()), (new.status, new.json.clone()));

    // No account: signing in fails exactly as for an address that never registered.
    let attempt = app.try_login("newbie@example.com", PASSWORD, &[]).await;
    let never = app.try_login("never@example.com", PASSWORD, &[]).await;
    assert_eq!((attempt.status, attempt.code()), (401, "invalid_credentials"));
    assert_eq!((attempt.status, attempt.json.clone()), (never.status, never.json.clone()));

    // The register page says registration is closed instead of showing the form.
    let page = app.get("/register", None).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Registration is closed"), "{}", page.text);
    assert!(!page.text.contains(r#"data-api="/api/v1/auth/register""#));

    // Reopened: the same address registers, and its one mail is the verification link (the
    // refused attempt mailed nothing). The member's next mail is the reset link it asks for, not
    // an "already registered" notice.
    assert_eq!(put(&app, json!({"registration": "open"}), &operator).await.status, 200);
    assert!(!app.get("/register", None).await.text.contains("Registration is closed"));
    app.register("newbie@example.com", PASSWORD).await;
    let reset = app.post("/api/v1/auth/password/reset-request", json!({"email": "member@example.com"}), None).await;
    assert_eq!(reset.status, 202);
    let member_mails = app.smtp.wait_for("member@example.com", 2).await;
    let subjects: Vec<&str> = member_mails.iter().map(|m| m.subject()).collect();
    assert_eq!(subjects, ["Confirm your email for Bulwark", "Reset your Bulwark password"]);
    let newbie_mails = app.smtp.to("newbie@example.com");
    assert_eq!(newbie_mails.len(), 1, "only the link of the registration that happened");
    let me = app.signed_in("later@example.com", PASSWORD).await;
    assert_eq!(app.get("/api/v1/me", Some(&me)).await.json["operator"], false);
}

pub async fn the_security_page_shows_the_operator_section_to_the_operator_only(backend: Backend) {
    let app = app(backend).await;
    let operator = app.signed_in("boss@example.com", PASSWORD).await;
    let member = app.signed_in("staff@example.com", PASSWORD).await;
    let form = r#"data-api="/api/v1/operator/settings""#;

    let page = app.get("/account/security", Some(&operator)).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains(r#"id="operator""#) && page.text.contains(form), "{}", page.text);
    assert!(page.text.contains(r#"<option value="open" selected>"#), "shows the current setting");
    assert!(!page.text.contains("<script>"), "no inline script");

    let page = app.get("/account/security", Some(&member)).await;
    assert_eq!(page.status, 200);
    assert!(!page.text.contains(r#"id="operator""#) && !page.text.contains(form), "not for other accounts");

    assert_eq!(put(&app, json!({"registration": "closed"}), &operator).await.status, 200);
    let page = app.get("/account/security", Some(&operator)).await;
    assert!(page.text.contains(r#"<option value="closed" selected>"#), "{}", page.text);
    assert!(page.text.contains("Server settings changed (operator)"), "the change is in the activity list");
}
