//! The server-rendered pages: what a person sees, and that they stay safe (no inline script,
//! escaped values).

use serde_json::json;

use crate::{Backend, PASSWORD, app};

fn assert_no_inline_script(html: &str, path: &str) {
    for (i, _) in html.match_indices("<script") {
        let tag_end = html[i..].find('>').map_or(html.len(), |e| i + e);
        assert!(html[i..tag_end].contains("src="), "{path}: inline script at {i}");
    }
    assert!(!html.contains(" onclick=") && !html.contains(" onsubmit=") && !html.contains("javascript:"), "{path}");
    assert!(!html.contains("style=\""), "{path}: inline style would need 'unsafe-inline'");
}

#[tokio::test]
async fn public_pages_render_without_inline_script() {
    let app = app(Backend::Sqlite).await;
    for (path, marker) in [
        ("/", "Sign in"),
        ("/register", "Create an account"),
        ("/check-email", "Check your mail"),
        ("/forgot-password", "Reset your password"),
    ] {
        let page = app.get(path, None).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.header("content-type").unwrap().starts_with("text/html"), "{path}");
        assert!(page.text.contains(marker), "{path}");
        assert!(page.text.contains("/assets/app.js") && page.text.contains("/assets/app.css"), "{path}");
        assert_no_inline_script(&page.text, path);
    }
    let js = app.get("/assets/app.js", None).await;
    assert_eq!((js.status, js.header("content-type")), (200, Some("text/javascript; charset=utf-8")));
    assert!(js.text.contains("data-api"));
    let css = app.get("/assets/app.css", None).await;
    assert_eq!((css.status, css.header("content-type")), (200, Some("text/css; charset=utf-8")));
}

#[tokio::test]
async fn signed_in_pages_need_a_session() {
    let app = app(Backend::Sqlite).await;
    for path in ["/dashboard", "/account/security", "/exchange-accounts"] {
        let page = app.get(path, None).await;
        assert_eq!((page.status, page.header("location")), (303, Some("/")), "{path}");
    }
    let cookie = app.signed_in("rae@example.com", PASSWORD).await;
    let home = app.get("/", Some(&cookie)).await;
    assert_eq!((home.status, home.header("location")), (303, Some("/dashboard")));
    let dashboard = app.get("/dashboard", Some(&cookie)).await;
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.text.contains("rae@example.com") && dashboard.text.contains("verified"));
    assert_no_inline_script(&dashboard.text, "/dashboard");
    let security = app.get("/account/security", Some(&cookie)).await;
    assert_eq!(security.status, 200);
    for marker in [
        "Sessions",
        "this browser",
        "Change password",
        "Sign out everywhere",
        "Recent activity",
        "Signed in",
        "Email confirmed",
    ] {
        assert!(security.text.contains(marker), "{marker}");
    }
    assert_no_inline_script(&security.text, "/account/security");
    let keys = app.get("/exchange-accounts", Some(&cookie)).await;
    assert_eq!(keys.status, 200);
    for marker in ["Exchange accounts", "Enable Withdrawals", "trusted IP", "Ed25519"] {
        assert!(keys.text.contains(marker), "{marker}");
    }
    assert_no_inline_script(&keys.text, "/exchange-accounts");
}

#[tokio::test]
async fn unverified_users_are_offered_a_new_link() {
    let app = app(Backend::Sqlite).await;
    app.register("sam@example.com", PASSWORD).await;
    let cookie = app.login("sam@example.com", PASSWORD).await;
    let dashboard = app.get("/dashboard", Some(&cookie)).await;
    assert!(dashboard.text.contains("Confirm your email"));
    let resend = app.post("/api/v1/auth/verify-email/resend", json!({}), Some(&cookie)).await;
    assert_eq!(resend.status, 202);
    let mails = app.smtp.wait_for("sam@example.com", 2).await;
    let link = mails[1].link(&format!("{}/verify-email?token=", app.base)).unwrap();
    assert_eq!(app.get(&link.replacen(&app.base, "", 1), None).await.status, 200);
    let again = app.post("/api/v1/auth/verify-email/resend", json!({}), Some(&cookie)).await;
    assert_eq!((again.status, again.json["status"].as_str()), (200, Some("already_verified")));
}

#[tokio::test]
async fn values_are_escaped_in_pages() {
    let app = app(Backend::Sqlite).await;
    app.signed_in("tia@example.com", PASSWORD).await;
    let evil = "<script>alert(1)</script>";
    let reply = app.try_login("tia@example.com", PASSWORD, &[("user-agent", evil)]).await;
    let page = app.get("/account/security", Some(&reply.session_cookie().unwrap())).await;
    assert!(!page.text.contains(evil));
    assert!(
        page.text.contains("&#60;script&#62;alert(1)&#60;/script&#62;") || page.text.contains("&lt;script&gt;"),
        "escaped"
    );
}

#[tokio::test]
async fn bad_links_show_a_page_not_an_error_dump() {
    let app = app(Backend::Sqlite).await;
    for path in ["/verify-email", "/verify-email?token=nope", "/reset-password?token=nope", "/reset-password"] {
        let page = app.get(path, None).await;
        assert_eq!(page.status, 400, "{path}");
        assert!(page.text.contains("This link does not work"), "{path}");
    }
}

/// `/exchange-accounts/{id}`: a paper account's trade page (marked PAPER, the panel app.js fills),
/// a real key's page saying why it cannot trade here yet, and nothing for anyone else.
#[tokio::test]
async fn an_account_page_offers_trading_on_paper_accounts_only() {
    let app = app(Backend::Sqlite).await;
    let unknown = "/exchange-accounts/7d1c3e52-5b5e-4a43-9a1c-0f1e2d3c4b5a";
    let page = app.get(unknown, None).await;
    assert_eq!((page.status, page.header("location")), (303, Some("/")), "signed out");

    let cookie = app.signed_in("uma@example.com", PASSWORD).await;
    for path in [unknown, "/exchange-accounts/not-an-id"] {
        let page = app.get(path, Some(&cookie)).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.text.contains("Account not found"), "{path}");
    }

    let paper = app
        .post("/api/v1/exchange-accounts", json!({"exchange": "paper", "name": "Practice <b>"}), Some(&cookie))
        .await;
    assert_eq!(paper.status, 201, "{}", paper.text);
    let id = paper.json["id"].as_str().unwrap();
    let path = format!("/exchange-accounts/{id}");
    let page = app.get(&path, Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    for marker in ["PAPER", &format!("data-trade=\"{id}\""), "Place an order", "Trade history", "paper-reset"] {
        assert!(page.text.contains(marker), "{marker}");
    }
    let escaped = page.text.contains("Practice &#60;b&#62;") || page.text.contains("Practice &lt;b&gt;");
    assert!(!page.text.contains("Practice <b>") && escaped, "the name is escaped");
    assert_no_inline_script(&page.text, &path);

    let real = json!({
        "exchange": "binance",
        "name": "Main",
        "api_key": app.venue.hmac_api_key,
        "api_secret": app.venue.hmac_secret,
    });
    let real = app.post("/api/v1/exchange-accounts", real, Some(&cookie)).await;
    assert_eq!(real.status, 201, "{}", real.text);
    let real_path = format!("/exchange-accounts/{}", real.json["id"].as_str().unwrap());
    let page = app.get(&real_path, Some(&cookie)).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("order guard") && !page.text.contains("data-trade="), "no trade panel for a real key");
    assert!(!page.text.contains(">PAPER<"));
    assert_no_inline_script(&page.text, &real_path);

    let other = app.signed_in("vic@example.com", PASSWORD).await;
    assert_eq!(app.get(&path, Some(&other)).await.status, 404, "another user's account");

    let list = app.get("/exchange-accounts", Some(&cookie)).await;
    assert!(list.text.contains("Open a paper account") && list.text.contains("data-paper-form"));
    assert!(list.text.contains("Paper account opened"), "the key history names the paper account");
    assert_no_inline_script(&list.text, "/exchange-accounts");
}

/// `/bots`, `/deals`, `/bots/{id}` and `/deals/{id}`: a session or the sign-in page; the list and
/// the new-bot form with its preview; "not found" pages for ids that are not the user's; the nav
/// links to both.
#[tokio::test]
async fn bot_and_deal_pages_need_a_session() {
    let app = app(Backend::Sqlite).await;
    let unknown = "7d1c3e52-5b5e-4a43-9a1c-0f1e2d3c4b5a";
    for path in ["/bots".to_owned(), "/deals".to_owned(), format!("/bots/{unknown}"), format!("/deals/{unknown}")] {
        let page = app.get(&path, None).await;
        assert_eq!((page.status, page.header("location")), (303, Some("/")), "{path}");
    }
    let cookie = app.signed_in("wes@example.com", PASSWORD).await;
    let bots = app.get("/bots", Some(&cookie)).await;
    assert_eq!(bots.status, 200);
    for marker in [
        "New bot",
        "data-bot-form",
        "name=\"base_order_volume\"",
        "name=\"safety_order_volume\"",
        "name=\"base_order_volume_type\"",
        "name=\"safety_order_volume_type\"",
        "<option value=\"base_currency\">",
        "name=\"max_safety_orders\"",
        "name=\"active_safety_orders_count\"",
        "name=\"safety_order_step_percentage\"",
        "name=\"martingale_step_coefficient\"",
        "name=\"martingale_volume_coefficient\"",
        "name=\"take_profit\"",
        "name=\"take_profit_type\"",
        "name=\"use_take_profit_steps\"",
        "data-error-for=\"take_profit_steps\"",
        "name=\"trailing_enabled\"",
        "name=\"trailing_deviation\"",
        "name=\"strategy\"",
        "name=\"stop_loss_percentage\"",
        "name=\"stop_loss_timeout_in_seconds\"",
        "name=\"stop_loss_type\"",
        "<option value=\"stop_loss_and_disable_bot\">",
        "name=\"tsl_enabled\"",
        "name=\"sl_to_breakeven_enabled\"",
        "name=\"cooldown\"",
        "name=\"max_active_deals\"",
        "name=\"strategy_list\"",
        "name=\"webhook_ip_allowlist\"",
        "data-add-tradingview",
        "name=\"webhook_max_lag_seconds\"",
        "\"timestamp\": \"{{timenow}}\"",
        "data-open-messages",
        "name=\"start_price\"",
        "data-preview",
        "won’t be shown again",
        "href=\"/bots\" aria-current=\"page\"",
        "href=\"/deals\"",
    ] {
        assert!(bots.text.contains(marker), "/bots: {marker}");
    }
    // Four take-profit step rows, each with its share and profit labelled; the error for the
    // steps (`field: take_profit_steps`) is shown next to them.
    for step in 1..=4 {
        for (field, id) in [("amount_percentage", "amount"), ("profit_percentage", "profit")] {
            let input = format!("id=\"bot-tp-step-{step}-{id}\" name=\"{field}\" data-field=\"take_profit_steps\"");
            assert!(bots.text.contains(&input), "/bots: {input}");
            assert!(bots.text.contains(&format!("for=\"bot-tp-step-{step}-{id}\"")), "/bots: the label of {input}");
        }
    }
    assert_no_inline_script(&bots.text, "/bots");
    let deals = app.get("/deals", Some(&cookie)).await;
    assert_eq!(deals.status, 200);
    for marker in ["data-deal-filters", "name=\"bot_id\"", "<option value=\"panic_sold\">", "Profit per day"] {
        assert!(deals.text.contains(marker), "/deals: {marker}");
    }
    assert_no_inline_script(&deals.text, "/deals");
    // Query strings are the page's filters, read by app.js.
    assert_eq!(app.get(&format!("/deals?bot_id={unknown}&status=bought"), Some(&cookie)).await.status, 200);
    for (path, text) in [
        (format!("/bots/{unknown}"), "Bot not found"),
        ("/bots/not-an-id".to_owned(), "Bot not found"),
        (format!("/deals/{unknown}"), "Deal not found"),
        ("/deals/not-an-id".to_owned(), "Deal not found"),
    ] {
        let page = app.get(&path, Some(&cookie)).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.text.contains(text), "{path}");
    }
    let dashboard = app.get("/dashboard", Some(&cookie)).await;
    assert!(dashboard.text.contains("href=\"/bots\"") && dashboard.text.contains("href=\"/deals\""), "the nav");
}

/// A bot's page and its deal's page answer for their owner only, and the deal's chart is an SVG of
/// the pair with a marker for each order: the base order filled, the safety orders and the take
/// profit waiting on the book.
#[tokio::test]
async fn a_bot_and_its_deal_have_pages_and_the_deal_chart_marks_its_orders() {
    crate::logs::install();
    let app = crate::spawn_app_with(Backend::Sqlite, |config| {
        config.engine_interval = std::time::Duration::from_millis(50);
    })
    .await;
    let cookie = app.signed_in("xia@example.com", PASSWORD).await;
    let account =
        app.post("/api/v1/exchange-accounts", json!({"exchange": "paper", "name": "Paper"}), Some(&cookie)).await;
    assert_eq!(account.status, 201, "{}", account.text);
    let account = account.json["id"].as_str().unwrap().to_owned();
    app.venue.paper.set_price("BTCUSDT", domain::Decimal::new(30_000, 0)).expect("the paper market moves");
    let body = json!({
        "type": "dca", "name": "Ladder <i>", "exchange_account_id": account, "pairs": ["USDT_BTC"], "enabled": true,
        "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 3,
        "active_safety_orders_count": 2, "safety_order_step_percentage": "1", "take_profit": "1",
        "strategy_list": [{"strategy": "manual"}],
    });
    let bot = app.post("/api/v1/bots", body, Some(&cookie)).await;
    assert_eq!(bot.status, 201, "{}", bot.text);
    let bot = bot.json["id"].as_str().unwrap().to_owned();

    let bot_path = format!("/bots/{bot}");
    assert_eq!(app.get(&bot_path, None).await.header("location"), Some("/"), "signed out");
    let page = app.get(&bot_path, Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    for marker in [
        &format!("data-bot=\"{bot}\""),
        "Start new deal",
        "Profit per day",
        "data-deals-list",
        // The webhook section: the paths app.js prefixes with the page's origin, the secret field,
        // a message block per action of both formats, the test signal, the log, rotation and the
        // webhook settings.
        "TradingView webhook",
        "data-dca-path=\"/trade_signal/trading_view\"",
        "data-signal-path=\"/signal_bots/webhooks\"",
        "ports 80 and 443",
        "<label for=\"webhook-secret\">Fill in my secret</label>",
        "&lt;webhook secret&gt;",
        "data-message=\"start_deal\"",
        "data-message=\"close_at_market_price\"",
        "data-message=\"close_at_market_price_all\"",
        "data-message=\"add_funds_in_quote\"",
        "<label for=\"webhook-volume\">Volume to add",
        "data-message=\"start_trailing\"",
        "data-message=\"signal_enter\"",
        "data-message=\"signal_exit\"",
        "{{…}}",
        "Send test signal",
        "Bulwark acts on it for real",
        "data-signals-list",
        "Rotate secret",
        "data-webhook-settings",
        "<label for=\"webhook-setting-allowlist\">",
        "<label for=\"webhook-setting-lag\">",
        "data-add-tradingview",
    ] {
        assert!(page.text.contains(marker), "{marker}");
    }
    assert!(!page.text.contains("Ladder <i>") && page.text.contains("Ladder &#60;i&#62;"), "the name is escaped");
    assert_no_inline_script(&page.text, &bot_path);

    let started = app.post(&format!("/api/v1/bots/{bot}/start_new_deal"), json!({}), Some(&cookie)).await;
    assert_eq!(started.status, 200, "{}", started.text);
    let deal = started.json["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let shown = app.get(&format!("/api/v1/deals/{deal}"), Some(&cookie)).await.json;
        let open = |role: &str| {
            shown["orders"].as_array().unwrap().iter().filter(|o| o["role"] == role && o["state"] == "open").count()
        };
        if shown["status"] == "bought" && open("safety") == 2 && open("take_profit") == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "waited 20 s for the deal to buy: {shown:#}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }

    let deal_path = format!("/deals/{deal}");
    assert_eq!(app.get(&deal_path, None).await.header("location"), Some("/"), "signed out");
    let page = app.get(&deal_path, Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    for marker in [
        &format!("data-deal=\"{deal}\""),
        "Deal on BTC / USDT",
        &format!("href=\"/bots/{bot}\""),
        "Ladder &#60;i&#62;",
        "Close at market",
        "Add funds",
        "data-chart",
        "data-deal-targets",
    ] {
        assert!(page.text.contains(marker), "{marker}");
    }
    assert_no_inline_script(&page.text, &deal_path);

    let chart_path = format!("/api/v1/deals/{deal}/chart.svg");
    let chart = app.get(&chart_path, Some(&cookie)).await;
    assert_eq!(chart.status, 200, "{}", chart.text);
    assert_eq!(chart.header("content-type"), Some("image/svg+xml; charset=utf-8"));
    assert!(chart.text.starts_with("<svg") && chart.text.ends_with("</svg>") && chart.text.contains("USDT_BTC"));
    assert_eq!(chart.text.matches("<polygon class=\"marker buy filled\"").count(), 1, "the base order: {}", chart.text);
    assert_eq!(chart.text.matches("<polygon class=\"marker buy open\"").count(), 2, "two safety orders");
    assert_eq!(chart.text.matches("<polygon class=\"marker sell open\"").count(), 1, "the take profit");
    assert!(chart.text.contains(">SO2<") && chart.text.contains(">TP<") && chart.text.contains(">BO<"));
    assert!(!chart.text.contains("script"));
    let limited = app.get(&format!("{chart_path}?limit=10"), Some(&cookie)).await;
    assert_eq!(limited.status, 200);
    let unknown = app.get(&format!("{chart_path}?cachebust=1"), Some(&cookie)).await;
    assert_eq!(unknown.status, 422, "query parameters are checked");
    assert_eq!(app.get(&chart_path, None).await.status, 401);

    let other = app.signed_in("yan@example.com", PASSWORD).await;
    assert_eq!(app.get(&bot_path, Some(&other)).await.status, 404, "another user's bot");
    assert_eq!(app.get(&deal_path, Some(&other)).await.status, 404, "another user's deal");
    assert_eq!(app.get(&chart_path, Some(&other)).await.status, 404, "another user's chart");
}
