//! Sessions: cookie flags, listing and revoking, timeouts, rotation (SE-1..3).

use std::time::Duration;

use serde_json::json;

use crate::{Backend, PASSWORD, app};

crate::on_both!(sessions_are_listed_and_revoked_per_user, logout_everywhere, sign_in_rotates_the_session);

#[tokio::test]
async fn the_cookie_has_the_flags_of_se_3() {
    let app = app(Backend::Sqlite).await;
    app.signed_in("ann@example.com", PASSWORD).await;
    let reply = app.post("/api/v1/auth/login", json!({"email": "ann@example.com", "password": PASSWORD}), None).await;
    let cookie = reply.header("set-cookie").expect("Set-Cookie");
    let parts: Vec<&str> = cookie.split(';').map(str::trim).collect();
    let token = parts[0].strip_prefix("__Host-bulwark_session=").expect("__Host- prefix");
    assert_eq!(token.len(), 43, "256 bits, base64url");
    for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(parts.contains(&flag), "{flag} in {cookie}");
    }
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "no Domain attribute");
}

pub async fn sessions_are_listed_and_revoked_per_user(backend: Backend) {
    let app = app(backend).await;
    let first = app.signed_in("bea@example.com", PASSWORD).await;
    let login = |ua: &'static str| {
        let app = &app;
        async move {
            let reply = app.try_login("bea@example.com", PASSWORD, &[("user-agent", ua)]).await;
            reply.session_cookie().expect("cookie")
        }
    };
    let second = login("Firefox/140 on the laptop").await;
    let list = app.get("/api/v1/sessions", Some(&first)).await;
    assert_eq!(list.status, 200);
    let sessions = list.json.as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    for s in &sessions {
        for field in ["id", "created_at", "last_seen_at", "ip", "user_agent", "current"] {
            assert!(s.get(field).is_some(), "{field}");
        }
        assert_eq!(s["ip"], "127.0.0.1");
    }
    let current: Vec<bool> = sessions.iter().map(|s| s["current"].as_bool().unwrap()).collect();
    assert_eq!(current.iter().filter(|c| **c).count(), 1);
    let other = sessions.iter().find(|s| s["user_agent"] == "Firefox/140 on the laptop").expect("the second session");
    assert_eq!(other["current"], false);
    let other_id = other["id"].as_str().unwrap().to_owned();

    // Another user cannot see or revoke it.
    let mallory = app.signed_in("mallory@example.com", PASSWORD).await;
    let theirs = app.send("DELETE", &format!("/api/v1/sessions/{other_id}"), None, Some(&mallory), &[]).await;
    assert_eq!((theirs.status, theirs.code()), (404, "not_found"));
    assert_eq!(app.get("/api/v1/me", Some(&second)).await.status, 200);

    let revoked = app.send("DELETE", &format!("/api/v1/sessions/{other_id}"), None, Some(&first), &[]).await;
    assert_eq!(revoked.status, 204);
    assert_eq!(app.get("/api/v1/me", Some(&second)).await.status, 401);
    assert_eq!(app.get("/api/v1/sessions", Some(&first)).await.json.as_array().unwrap().len(), 1);
    for id in [other_id.as_str(), "00000000-0000-4000-8000-000000000000", "not-a-uuid"] {
        let gone = app.send("DELETE", &format!("/api/v1/sessions/{id}"), None, Some(&first), &[]).await;
        assert_eq!((gone.status, gone.code()), (404, "not_found"), "{id}");
    }
    assert_eq!(app.get("/api/v1/sessions", None).await.status, 401);
}

pub async fn logout_everywhere(backend: Backend) {
    let app = app(backend).await;
    let a = app.signed_in("cleo@example.com", PASSWORD).await;
    let b = app.login("cleo@example.com", PASSWORD).await;
    let other_user = app.signed_in("dora@example.com", PASSWORD).await;
    let reply = app.post("/api/v1/auth/logout-all", json!({}), Some(&b)).await;
    assert_eq!(reply.status, 204);
    assert_eq!(app.get("/api/v1/me", Some(&a)).await.status, 401);
    assert_eq!(app.get("/api/v1/me", Some(&b)).await.status, 401);
    assert_eq!(app.get("/api/v1/me", Some(&other_user)).await.status, 200, "only this user's sessions");
    assert_eq!(app.post("/api/v1/auth/logout-all", json!({}), None).await.status, 401);
}

pub async fn sign_in_rotates_the_session(backend: Backend) {
    let app = app(backend).await;
    let old = app.signed_in("eve@example.com", PASSWORD).await;
    let reply =
        app.post("/api/v1/auth/login", json!({"email": "eve@example.com", "password": PASSWORD}), Some(&old)).await;
    let new = reply.session_cookie().unwrap();
    assert_ne!(new, old);
    assert_eq!(app.get("/api/v1/me", Some(&old)).await.status, 401, "the presented session was replaced");
    assert_eq!(app.get("/api/v1/me", Some(&new)).await.status, 200);

    // Re-authentication rotates too.
    let wrong = app.post("/api/v1/auth/reauth", json!({"password": "not the password 1"}), Some(&new)).await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    let reauth = app.post("/api/v1/auth/reauth", json!({"password": PASSWORD}), Some(&new)).await;
    assert_eq!(reauth.status, 204);
    let rotated = reauth.session_cookie().expect("new cookie");
    assert_ne!(rotated, new);
    assert_eq!(app.get("/api/v1/me", Some(&new)).await.status, 401);
    assert_eq!(app.get("/api/v1/me", Some(&rotated)).await.status, 200);
}

#[tokio::test]
async fn sessions_end_after_30_idle_minutes() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("fay@example.com", PASSWORD).await;
    for _ in 0..4 {
        app.clock.advance(Duration::from_secs(29 * 60));
        assert_eq!(app.get("/api/v1/me", Some(&cookie)).await.status, 200, "activity keeps it alive");
    }
    app.clock.advance(Duration::from_secs(30 * 60));
    assert_eq!(app.get("/api/v1/me", Some(&cookie)).await.status, 401, "30 idle minutes end it");
    let listed = app
        .store
        .sessions_for_user(app.store.user_by_email("fay@example.com").await.unwrap().unwrap().id)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "the row stays until the purge, but it no longer counts");
}

#[tokio::test]
async fn sessions_end_12_hours_after_sign_in() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("gus@example.com", PASSWORD).await;
    for _ in 0..(12 * 60 / 20 - 1) {
        app.clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(app.get("/api/v1/me", Some(&cookie)).await.status, 200);
    }
    app.clock.advance(Duration::from_secs(19 * 60 + 59));
    assert_eq!(app.get("/api/v1/me", Some(&cookie)).await.status, 200, "11:59:59 after sign-in");
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(app.get("/api/v1/me", Some(&cookie)).await.status, 401, "12 h is the absolute end");
}

#[tokio::test]
async fn timeouts_are_configurable() {
    crate::logs::install();
    let app = crate::spawn_app_with(Backend::Sqlite, |c| c.session_idle = Duration::from_secs(120)).await;
    let cookie = app.signed_in("hal@example.com", PASSWORD).await;
    app.clock.advance(Duration::from_secs(121));
    assert_eq!(app.get("/api/v1/me", Some(&cookie)).await.status, 401);
}
