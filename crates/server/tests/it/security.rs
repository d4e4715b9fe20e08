//! Security headers, cross-origin refusal and bad input (SE-4, SE-5, NET-1).

use serde_json::json;

use crate::{Backend, PASSWORD, app};

fn assert_security_headers(reply: &crate::Reply, what: &str) {
    let csp = reply.header("content-security-policy").unwrap_or_else(|| panic!("CSP on {what}"));
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(reply.header("cross-origin-opener-policy"), Some("same-origin"), "{what}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("ivy@example.com", PASSWORD).await;
    let gets = [
        "/",
        "/register",
        "/check-email",
        "/forgot-password",
        "/reset-password?token=x",
        "/verify-email?token=x",
        "/dashboard",
        "/account/security",
        "/exchange-accounts",
        "/api/v1/exchange-accounts",
        "/assets/app.css",
        "/assets/app.js",
        "/assets/favicon.svg",
        "/healthz",
        "/api/v1/me",
        "/api/v1/sessions",
        "/api/v1/audit-log",
        "/api/v1/nope",
        "/nope",
    ];
    for path in gets {
        for session in [None, Some(cookie.as_str())] {
            let reply = app.get(path, session).await;
            assert_security_headers(&reply, path);
            assert!(reply.header("strict-transport-security").is_none(), "no HSTS over plain HTTP");
        }
    }
    let posts = [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/auth/logout-all",
        "/api/v1/auth/verify-email",
        "/api/v1/auth/password/reset-request",
        "/api/v1/auth/password/reset",
        "/api/v1/auth/password/change",
        "/api/v1/auth/reauth",
    ];
    for path in posts {
        let reply = app.send("POST", path, None, None, &[("content-type", "application/json")]).await;
        assert_security_headers(&reply, path);
    }
    let reply = app.send("POST", "/api/v1/auth/login", None, None, &[("origin", "https://evil.example")]).await;
    assert_security_headers(&reply, "a refused request");
}

#[tokio::test]
async fn hsts_when_served_over_https() {
    crate::logs::install();
    let app = crate::spawn_app_with(Backend::Sqlite, |c| {
        c.public_url = url::Url::parse("https://bulwark.example").unwrap();
    })
    .await;
    let reply = app.get("/healthz", None).await;
    let hsts = reply.header("strict-transport-security").expect("HSTS");
    assert!(hsts.contains("max-age=63072000") && hsts.contains("includeSubDomains"), "{hsts}");
}

#[tokio::test]
async fn cross_origin_state_changes_are_refused() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("jo@example.com", PASSWORD).await;
    let base = app.base.clone();
    let refused: [&[(&str, &str)]; 4] = [
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site"), ("origin", base.as_str())],
        &[("sec-fetch-site", "same-site")],
    ];
    for headers in refused {
        for path in ["/api/v1/auth/logout", "/api/v1/auth/logout-all"] {
            let reply = app.send("POST", path, Some(json!({})), Some(&cookie), headers).await;
            assert_eq!((reply.status, reply.code()), (403, "csrf_rejected"), "{path} {headers:?}");
        }
        let login = app.try_login("jo@example.com", PASSWORD, headers).await;
        assert_eq!(login.status, 403, "login CSRF too: {headers:?}");
    }
    assert_eq!(app.get("/api/v1/me", Some(&cookie)).await.status, 200, "nothing happened");
    let same: [&[(&str, &str)]; 3] =
        [&[("origin", base.as_str())], &[("sec-fetch-site", "same-origin")], &[("sec-fetch-site", "none")]];
    for headers in same {
        let reply = app.try_login("jo@example.com", PASSWORD, headers).await;
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.text);
    }
    let ok =
        app.send("POST", "/api/v1/auth/logout", Some(json!({})), Some(&cookie), &[("origin", base.as_str())]).await;
    assert_eq!(ok.status, 204);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let app = app(Backend::Sqlite).await;
    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let app = &app;
        async move {
            let mut request = app.client.post(app.url("/api/v1/auth/register")).body(body);
            if let Some(ct) = content_type {
                request = request.header("content-type", ct);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let json: serde_json::Value = response.json().await.unwrap_or_default();
            (status, json["error"].as_str().unwrap_or("").to_owned())
        }
    };
    assert_eq!(raw("{\"email\": ", Some("application/json")).await, (400, "invalid_json".into()));
    assert_eq!(raw("not json", Some("application/json")).await, (400, "invalid_json".into()));
    assert_eq!(raw("{\"email\": 5, \"password\": []}", Some("application/json")).await, (422, "invalid_input".into()));
    assert_eq!(raw("{}", Some("application/json")).await, (422, "invalid_input".into()));
    assert_eq!(
        raw("{\"email\":\"x@example.com\",\"password\":\"p\"}", None).await,
        (415, "unsupported_media_type".into())
    );
    let huge = format!("{{\"email\":\"big@example.com\",\"password\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let reply = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 413);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["error"], "body_too_large");
    assert!(app.store.user_by_email("big@example.com").await.unwrap().is_none());
    assert!(app.store.user_by_email("x@example.com").await.unwrap().is_none());

    let missing = app.get("/api/v1/does-not-exist", None).await;
    assert_eq!((missing.status, missing.code()), (404, "not_found"));
    assert!(missing.json["message"].is_string());
    let page = app.get("/does-not-exist", None).await;
    assert_eq!(page.status, 404);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let wrong_method = app.send("GET", "/api/v1/auth/login", None, None, &[]).await;
    assert_eq!((wrong_method.status, wrong_method.code()), (405, "method_not_allowed"));
    let bad_cookie =
        app.send("GET", "/api/v1/me", None, None, &[("cookie", "__Host-bulwark_session=%%%; other=1")]).await;
    assert_eq!(bad_cookie.status, 401);
}

#[tokio::test]
async fn health_answers() {
    let app = app(Backend::Sqlite).await;
    let reply = app.get("/healthz", None).await;
    assert_eq!((reply.status, reply.json.clone()), (200, json!({"status": "ok"})));
}

#[tokio::test]
async fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    crate::logs::install();
    let plain = crate::spawn_app_with(Backend::Sqlite, |_| {}).await;
    let cookie = plain.signed_in("kai@example.com", PASSWORD).await;
    let spoofed =
        plain.send("GET", "/api/v1/sessions", None, Some(&cookie), &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(spoofed.json[0]["ip"], "127.0.0.1");
    let login = plain.try_login("kai@example.com", PASSWORD, &[("x-forwarded-for", "203.0.113.9")]).await;
    let list = plain.get("/api/v1/sessions", Some(&login.session_cookie().unwrap())).await;
    assert!(list.json.as_array().unwrap().iter().all(|s| s["ip"] == "127.0.0.1"), "{}", list.text);

    let proxied =
        crate::spawn_app_with(Backend::Sqlite, |c| c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    proxied.signed_in("lea@example.com", PASSWORD).await;
    let login =
        proxied.try_login("lea@example.com", PASSWORD, &[("x-forwarded-for", "198.51.100.1, 203.0.113.9")]).await;
    let cookie = login.session_cookie().unwrap();
    let list = proxied.get("/api/v1/sessions", Some(&cookie)).await;
    let current = list.json.as_array().unwrap().iter().find(|s| s["current"] == true).unwrap().clone();
    assert_eq!(current["ip"], "203.0.113.9", "the nearest untrusted hop, not the client-written left end");
}
