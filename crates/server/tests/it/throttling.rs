//! Online-guessing limits (AU-4, NET-1), persisted in the database.

use std::time::Duration;

use serde_json::json;
use store::ThrottleRule;

use crate::{Backend, PASSWORD, TestApp, spawn_app_with};

crate::on_both!(sign_in_is_throttled_per_account, sign_in_is_throttled_per_address);

fn rule(limit: u32) -> ThrottleRule {
    ThrottleRule {
        limit,
        base_block: Duration::from_secs(60),
        max_block: Duration::from_secs(3600),
        forget_after: Duration::from_secs(3600),
        lock_after: None,
    }
}

async fn throttled_app(backend: Backend) -> TestApp {
    crate::logs::install();
    spawn_app_with(backend, |c| {
        c.throttles.login_account = rule(3);
        c.throttles.login_ip = rule(9);
        c.throttles.mail_ip = rule(4);
    })
    .await
}

async fn login(app: &TestApp, email: &str, password: &str) -> crate::Reply {
    app.try_login(email, password, &[]).await
}

pub async fn sign_in_is_throttled_per_account(backend: Backend) {
    let app = throttled_app(backend).await;
    app.register("max@example.com", PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(login(&app, "max@example.com", "wrong guess number 1").await.status, 401);
    }
    let blocked = login(&app, "max@example.com", PASSWORD).await;
    assert_eq!((blocked.status, blocked.code()), (429, "rate_limited"), "even the right password waits");
    assert_eq!(blocked.header("retry-after"), Some("60"));
    // An unknown email is throttled exactly the same way.
    for _ in 0..3 {
        assert_eq!(login(&app, "ghost@example.com", "wrong guess number 1").await.status, 401);
    }
    let ghost = login(&app, "ghost@example.com", "wrong guess number 1").await;
    assert_eq!((ghost.status, ghost.header("retry-after")), (429, Some("60")));

    app.clock.advance(Duration::from_secs(60));
    assert_eq!(login(&app, "max@example.com", PASSWORD).await.status, 200, "the block ends");
    // Success cleared the count: three more failures are needed for the next block.
    for _ in 0..2 {
        assert_eq!(login(&app, "max@example.com", "wrong guess number 2").await.status, 401);
    }
    assert_eq!(login(&app, "max@example.com", PASSWORD).await.status, 200);
}

pub async fn sign_in_is_throttled_per_address(backend: Backend) {
    let app = throttled_app(backend).await;
    app.register("nia@example.com", PASSWORD).await;
    // Nine failures spread over five accounts: no account reaches its limit, the address does.
    for i in 0..9 {
        assert_eq!(login(&app, &format!("spray{}@example.com", i % 5), "Spring2026!!!!!").await.status, 401);
    }
    let blocked = login(&app, "nia@example.com", PASSWORD).await;
    assert_eq!((blocked.status, blocked.code()), (429, "rate_limited"));
    assert!(blocked.header("retry-after").is_some());
}

#[tokio::test]
async fn mail_sending_requests_are_throttled_per_address() {
    let app = throttled_app(Backend::Sqlite).await;
    for i in 0..4 {
        let reply =
            app.post("/api/v1/auth/password/reset-request", json!({"email": format!("r{i}@example.com")}), None).await;
        assert_eq!(reply.status, 202);
    }
    let reply =
        app.post("/api/v1/auth/register", json!({"email": "late@example.com", "password": PASSWORD}), None).await;
    assert_eq!((reply.status, reply.code()), (429, "rate_limited"));
    assert!(app.store.user_by_email("late@example.com").await.unwrap().is_none());
}

#[tokio::test]
async fn the_hundredth_failure_locks_until_a_reset_by_mail() {
    crate::logs::install();
    // The default policy, with the hard lock scaled down from 100 to 4 failures.
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.throttles.login_account = ThrottleRule { lock_after: Some(4), ..rule(2) };
    })
    .await;
    app.register("pat@example.com", PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(login(&app, "pat@example.com", "wrong guess number 1").await.status, 401);
    }
    assert_eq!(login(&app, "pat@example.com", PASSWORD).await.status, 429);
    app.clock.advance(Duration::from_secs(60));
    for _ in 0..2 {
        assert_eq!(login(&app, "pat@example.com", "wrong guess number 1").await.status, 401);
    }
    let locked = login(&app, "pat@example.com", PASSWORD).await;
    assert_eq!((locked.status, locked.code(), locked.header("retry-after")), (429, "rate_limited", Some("86400")));
    assert!(locked.json["message"].as_str().unwrap().contains("Reset the password"));
    app.clock.advance(Duration::from_secs(30 * 86_400));
    assert_eq!(login(&app, "pat@example.com", PASSWORD).await.status, 429, "a lock does not time out");

    app.post("/api/v1/auth/password/reset-request", json!({"email": "pat@example.com"}), None).await;
    let mails = app.smtp.wait_for("pat@example.com", 2).await;
    let token = crate::token_of(&mails[1].link(&format!("{}/reset-password?token=", app.base)).unwrap());
    let new = "unlocked at last by mail";
    let reset = app.post("/api/v1/auth/password/reset", json!({"token": token, "new_password": new}), None).await;
    assert_eq!(reset.status, 204);
    assert_eq!(login(&app, "pat@example.com", new).await.status, 200, "the reset unlocked it");
}
