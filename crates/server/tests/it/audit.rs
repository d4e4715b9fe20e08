//! The user's own audit log.

use serde_json::json;

use crate::{Backend, PASSWORD, app};

crate::on_both!(the_audit_log_records_account_events);

pub async fn the_audit_log_records_account_events(backend: Backend) {
    let app = app(backend).await;
    let first = app.signed_in("pia@example.com", PASSWORD).await;
    let failed = app.try_login("pia@example.com", "wrong one here 1", &[("user-agent", "guesser/1.0")]).await;
    assert_eq!(failed.status, 401);
    let second = app.login("pia@example.com", PASSWORD).await;
    let change = app
        .post(
            "/api/v1/auth/password/change",
            json!({"current_password": PASSWORD, "new_password": "quiet harbor lantern 88"}),
            Some(&second),
        )
        .await;
    assert_eq!(change.status, 204);
    let third = app.login("pia@example.com", "quiet harbor lantern 88").await;
    let sessions = app.get("/api/v1/sessions", Some(&second)).await;
    let other = sessions.json.as_array().unwrap().iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.send("DELETE", &format!("/api/v1/sessions/{other}"), None, Some(&second), &[]).await.status, 204);
    assert_eq!(app.post("/api/v1/auth/logout", json!({}), Some(&second)).await.status, 204);
    assert_eq!(app.get("/api/v1/me", Some(&first)).await.status, 401);
    assert_eq!(app.get("/api/v1/me", Some(&third)).await.status, 401);

    let fourth = app.login("pia@example.com", "quiet harbor lantern 88").await;
    let log = app.get("/api/v1/audit-log", Some(&fourth)).await;
    assert_eq!(log.status, 200);
    let kinds: Vec<&str> = log.json.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "auth.login_succeeded",
            "auth.logout",
            "auth.session_revoked",
            "auth.login_succeeded",
            "auth.password_changed",
            "auth.login_succeeded",
            "auth.login_failed",
            "auth.login_succeeded",
            "auth.email_verified",
            "auth.registered",
        ],
        "newest first"
    );
    let failed = &log.json[6];
    assert_eq!(failed["ip"], "127.0.0.1");
    assert_eq!(failed["user_agent"], "guesser/1.0");
    assert!(failed["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(failed["detail"]["reason"], "invalid_credentials");

    let page = app.get("/api/v1/audit-log?limit=3", Some(&fourth)).await;
    assert_eq!(page.json.as_array().unwrap().len(), 3);
    let before = page.json[2]["at"].as_str().unwrap().to_owned();
    let next = app.get(&format!("/api/v1/audit-log?limit=100&before={before}"), Some(&fourth)).await;
    assert!(next.json.as_array().unwrap().iter().all(|e| e["at"].as_str().unwrap() < before.as_str()));
    for bad in ["limit=0", "limit=201", "before=yesterday", "limit=abc"] {
        let reply = app.get(&format!("/api/v1/audit-log?{bad}"), Some(&fourth)).await;
        assert!(reply.status == 422 || reply.status == 400, "{bad}: {}", reply.status);
        assert!(!reply.code().is_empty());
    }
    assert_eq!(app.get("/api/v1/audit-log", None).await.status, 401);
    let stranger = app.signed_in("quinn@example.com", PASSWORD).await;
    let theirs = app.get("/api/v1/audit-log", Some(&stranger)).await;
    assert!(theirs.json.as_array().unwrap().iter().all(|e| e["kind"] != "auth.password_changed"), "only one's own");
}
