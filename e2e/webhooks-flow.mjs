// A bot's TradingView webhook, in a real browser, against `bulwark serve` with its built-in paper
// market. Register, confirm, sign in, open a paper account; on /bots make a bot whose deals start
// on a TradingView signal, with an address allowlist (this machine and, through the preset button,
// TradingView's addresses) and a max signal age. The webhook secret is shown once; "Open its alert
// messages with this secret" opens the bot's page in a new tab with the messages already carrying
// it (handed over in memory). On the bot's own page the messages show the placeholder until the
// secret is filled in; then the start-deal message is JSON with the bot's id, the secret, the pair
// and the alert's time placeholder. A test signal is refused without the secret; with it, after a
// confirmation, it is posted to the webhook URL as TradingView would post it: 202 with its signal
// id, the log entry turns `done`, and a deal appears. An "add funds" signal's volume follows
// "Balances: hidden" in the log. "Rotate secret" asks for the password (the server's re-auth
// window is 3 s), shows the new secret once with the previous one's end of validity, and the
// messages carry the new secret; a "close all" signal with it closes the deal. Signed mode (WH-4):
// ticking "Take only signed requests" PATCHes it on and the settings say so; the page's unsigned
// test signal is then refused by the page; the signed examples (shell and Python) sign the chosen
// message without its secret for the webhook URL; that body signed here with Node's crypto is
// accepted (202), stale with an old `t` (422), and the same message unsigned with its secret is
// refused (401 invalid_signature); unticking PATCHes it off. Clearing the webhook settings (PATCH
// with null) removes them. A signal bot's page offers the Signal-bot messages
// only (for its direction), and no ladder settings. The secret is never stored by the page (no storage, not
// in the address) and is gone after a reload. No script or CSP error on the way. Waits for text and
// elements with timeouts, never for a fixed time (docs/dev-notes.md rule 17), except to outlast the
// re-authentication window. Exits non-zero on the first failed expectation.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import assert from "node:assert/strict";
import { launchBrowser, signUp, startServer } from "./lib.mjs";

const screenshots = path.resolve(import.meta.dirname, "screenshots");
const EMAIL = "alerts@example.com";
const PASSWORD = "quarry thistle beacon 27";
const ACCOUNT_NAME = "Alert practice";
const BOT_NAME = "BTC on alerts";
const REAUTH_WINDOW_MS = 3_000;
// The engine cycles every second; a signal and its deal take a few cycles.
const DEAL_STEP_MS = 30_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const server = await startServer("bulwark-e2e-webhooks-", { BULWARK_REAUTH_WINDOW_SECONDS: String(REAUTH_WINDOW_MS / 1000) });
const { base, outbox } = server;
const browser = await launchBrowser();
const pageErrors = [];
try {
  fs.mkdirSync(screenshots, { recursive: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 1100 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const watch = (page) => {
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    // Refusals the flow asks for (a step-up's 403, a preview's 422) show up as console errors; nothing else may.
    page.on("console", (m) => { if (m.type() === "error" && !/status of (401|403|409|422)/.test(m.text())) pageErrors.push(m.text()); });
  };
  const page = await context.newPage();
  watch(page);

  const dialog = page.locator("dialog#step-up");
  let lastAuth = 0;
  async function passStepUp() {
    await dialog.waitFor({ state: "visible" });
    await dialog.locator("#step-up-password").fill(PASSWORD);
    await dialog.locator("button[type=submit]").click();
    await dialog.waitFor({ state: "hidden" });
    lastAuth = Date.now();
  }

  await signUp(page, base, outbox, EMAIL, PASSWORD);
  lastAuth = Date.now();

  // A paper account to trade on (through the password dialog if the sign-in is already too old).
  await page.click("nav >> text=Exchange accounts");
  await page.waitForURL("**/exchange-accounts");
  const paperForm = page.locator("form[data-paper-form]");
  await paperForm.getByLabel("Name").fill(ACCOUNT_NAME);
  await paperForm.getByRole("button", { name: "Open the paper account" }).click();
  await page.locator("dialog#step-up[open], [data-accounts] > li.paper").first().waitFor({ state: "visible" });
  if (await dialog.isVisible()) await passStepUp();
  await page.locator("[data-accounts] > li.paper").waitFor({ state: "visible" });

  // The new bot: deals start on a TradingView signal; signals only from this machine and
  // TradingView (the preset button), at most 300 s old.
  await page.click("nav >> text=Bots");
  await page.waitForURL("**/bots");
  const form = page.locator("form[data-bot-form]");
  await form.locator("select[name=exchange_account_id]:not([disabled])").waitFor();
  await page.waitForFunction(() => /^\d+(\.\d+)?$/.test(document.querySelector("input[name=start_price]").value));
  await form.getByLabel("Name").fill(BOT_NAME);
  await form.getByLabel("Deal start condition").selectOption("trading_view");
  const allowlist = form.getByLabel("Take signals only from");
  await allowlist.fill("127.0.0.1");
  await form.getByRole("button", { name: "Add TradingView’s addresses" }).click();
  assert.equal(await allowlist.inputValue(), "127.0.0.1\ntradingview");
  await form.getByRole("button", { name: "Add TradingView’s addresses" }).click();
  assert.equal(await allowlist.inputValue(), "127.0.0.1\ntradingview", "the preset is added once");
  // A list the API refuses is named next to the field by the live preview.
  await allowlist.fill("127.0.0.1\nnot-an-address");
  await form.locator('[data-error-for="webhook_ip_allowlist"]', { hasText: /IP addresses or CIDR blocks/ }).waitFor();
  await allowlist.fill("127.0.0.1\ntradingview");
  await form.locator('[data-error-for="webhook_ip_allowlist"]:empty').waitFor({ state: "attached" });
  await form.getByLabel("Refuse signals older than").fill("300");
  await form.locator('[data-preview] tr[data-preview-row="base"]').waitFor();
  const createdAnswer = page.waitForResponse((r) => r.url().endsWith("/api/v1/bots") && r.request().method() === "POST");
  await form.getByRole("button", { name: "Create the bot" }).click();
  const sent = JSON.parse((await createdAnswer).request().postData());
  assert.deepEqual(sent.webhook_ip_allowlist, ["127.0.0.1", "tradingview"]);
  assert.equal(sent.webhook_max_lag_seconds, 300);
  assert.deepEqual(sent.strategy_list, [{ strategy: "trading_view" }]);

  // The secret, shown once.
  const created = page.locator("[data-bot-created]");
  await created.waitFor({ state: "visible" });
  const secret = await created.locator("[data-webhook-secret]").textContent();
  assert.match(secret, /^[0-9a-f]{64}$/);
  const botLink = await created.getByRole("link", { name: "Open the bot →" }).getAttribute("href");
  const botId = botLink.split("/").pop();
  assert.match(botId, /^[0-9a-f-]{36}$/);

  // "Open its alert messages with this secret": the bot's page in a new tab, its messages ready.
  const [popup] = await Promise.all([
    context.waitForEvent("page"),
    created.getByRole("button", { name: "Open its alert messages with this secret" }).click(),
  ]);
  watch(popup);
  await popup.waitForURL((url) => url.pathname === `/bots/${botId}` && url.hash === "#webhook-title");
  const popupStart = popup.locator('[data-message="start_deal"] [data-message-text]');
  await popupStart.filter({ hasText: secret }).waitFor();
  assert.equal(JSON.parse(await popupStart.textContent()).email_token, secret);
  assert.equal(await popup.inputValue("#webhook-secret"), secret);
  await popup.locator("[data-secret-ok]", { hasText: "the bots page showed when the bot was created" }).waitFor();
  await popup.close();

  // The bot's page in this tab: the secret is not there until it is filled in.
  await created.getByRole("link", { name: "Open the bot →" }).click();
  await page.waitForURL(`**/bots/${botId}`);
  const startMessage = page.locator('[data-message="start_deal"] [data-message-text]');
  await startMessage.filter({ hasText: "<webhook secret>" }).waitFor();
  assert.ok(!(await page.content()).includes(secret), "the secret is not on the page");
  assert.equal(await page.textContent('[data-webhook-url="dca"]'), `${base}/trade_signal/trading_view`);
  assert.equal(await page.textContent('[data-webhook-url="signal"]'), `${base}/signal_bots/webhooks`);
  await page.locator("[data-webhook-port-note]", { hasText: "which TradingView cannot post to" }).waitFor();
  await page.locator('[data-setting="webhook_ip_allowlist"]', { hasText: "127.0.0.1, TradingView’s addresses" }).waitFor();
  assert.equal(await page.textContent('[data-setting="webhook_max_lag_seconds"]'), "300 s");
  assert.equal(await page.textContent('[data-setting="strategy_list"]'), "trading_view");
  assert.equal(await page.getByLabel("Take signals only from").inputValue(), "127.0.0.1\ntradingview", "the settings form shows them");
  await page.locator("[data-signals-list]", { hasText: "No signals yet" }).waitFor();

  // Without the secret a test signal is refused by the page, before anything is sent.
  const testForm = page.locator("form[data-test-form]");
  await testForm.getByLabel("Message to send").selectOption("start_deal");
  await testForm.getByRole("button", { name: "Send test signal" }).click();
  await page.locator("[data-test-error]", { hasText: "Fill in your secret first" }).waitFor();

  // A wrong paste is named; the secret fills every message.
  await page.getByLabel("Fill in my secret").fill("not the secret");
  await page.getByRole("button", { name: "Fill in", exact: true }).click();
  await page.locator('[data-error-for="webhook_secret"]', { hasText: "That is not a webhook secret" }).waitFor();
  await page.getByLabel("Fill in my secret").fill(secret);
  await startMessage.filter({ hasText: secret }).waitFor();
  const start = JSON.parse(await startMessage.textContent());
  assert.deepEqual(start, {
    message_type: "bot", bot_id: botId, email_token: secret, delay_seconds: 0, pair: "USDT_BTC", timestamp: "{{timenow}}",
  }, "the start-deal message: no action, and the alert's time because the bot has a max age");
  const message = async (kind) => JSON.parse(await page.textContent(`[data-message="${kind}"] [data-message-text]`));
  assert.equal((await message("close_at_market_price")).action, "close_at_market_price");
  assert.equal((await message("close_at_market_price_all")).action, "close_at_market_price_all");
  assert.equal((await message("start_trailing")).action, "start_trailing");
  const addFunds = await message("add_funds_in_quote");
  assert.equal(addFunds.action, "add_funds_in_quote");
  assert.equal(addFunds.volume, 20, "the volume field starts at the base order volume, written as a JSON number");
  await page.getByLabel("Limit price, optional").fill("1000");
  await page.locator('[data-message="add_funds_in_quote"] [data-message-text]', { hasText: '"price": 1000' }).waitFor();
  await page.getByLabel("Limit price, optional").fill("");
  await page.waitForFunction(() => !document.querySelector('[data-message="add_funds_in_quote"] [data-message-text]').textContent.includes('"price"'));
  assert.ok(!("price" in await message("add_funds_in_quote")), "no price: at market");
  const enter = await message("signal_enter");
  assert.deepEqual(enter, {
    secret, bot_uuid: botId, action: "enter_long", timestamp: "{{timenow}}", max_lag: "300", trigger_price: "{{close}}",
    tv_exchange: "{{exchange}}", tv_instrument: "{{ticker}}",
  });
  assert.equal((await message("signal_exit")).action, "exit_long");
  // The copy button copies the message as shown.
  await page.locator('[data-message="start_deal"]').getByRole("button", { name: "Copy the “Start a deal” message" }).click();
  await page.locator("[data-webhook] [data-copy-ok]", { hasText: "with your secret" }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), await startMessage.textContent());
  await page.screenshot({ path: path.join(screenshots, "bot-webhook.png"), fullPage: true });

  // The test signal: confirmed, posted to the webhook URL as TradingView would, answered 202. The
  // page's own API requests carry the session cookie (the log is asked every few seconds), so its
  // absence from a signal below means something.
  const polled = await page.waitForRequest((r) => r.url().includes(`/api/v1/bots/${botId}/signals`));
  assert.ok((await polled.allHeaders()).cookie, "the page's API requests carry the session");
  const signalRow = (id) => page.locator(`[data-signals-list] tr[data-signal-row="${id}"]`);
  async function sendTest(kind, expected) {
    let question = "";
    page.once("dialog", (confirm) => { question = confirm.message(); confirm.accept(); });
    const posted = page.waitForRequest((r) => r.url() === `${base}${kind.startsWith("signal_") ? "/signal_bots/webhooks" : "/trade_signal/trading_view"}`);
    await testForm.getByLabel("Message to send").selectOption(kind);
    await testForm.getByRole("button", { name: "Send test signal" }).click();
    const request = await posted;
    const headers = await request.allHeaders();
    assert.equal(headers["content-type"], "application/json");
    assert.equal(headers.cookie, undefined, "no session goes with a signal");
    await page.locator("[data-test-ok]", { hasText: "Accepted (202): signal" }).waitFor();
    assert.match(question, expected);
    const id = await page.getAttribute("[data-test-ok] [data-test-signal]", "data-test-signal");
    await signalRow(id).waitFor();
    return { id, body: JSON.parse(request.postData()) };
  }
  const first = await sendTest("start_deal", /for real\? Bulwark starts a deal on BTC\/USDT and places its orders on “Alert practice”/);
  assert.equal(first.body.email_token, secret);
  assert.match(first.body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, "the alert's time filled in as TradingView does");
  assert.equal(first.body.action, undefined);
  await page.locator(`[data-signals-list] tr[data-signal-row="${first.id}"][data-signal-state="done"]`).waitFor({ timeout: DEAL_STEP_MS });
  const firstCells = await signalRow(first.id).locator("td").allTextContents();
  assert.match(firstCells[1], /^Start a deal/);
  assert.equal(firstCells[2], "BTC/USDT");
  assert.equal(firstCells[3], "done");
  assert.ok(firstCells[4].length > 0, "the outcome in words");
  assert.equal(firstCells[5], "127.0.0.1");
  // The deal it started.
  const dealRow = page.locator("[data-deals-list] tbody tr");
  await dealRow.first().waitFor({ timeout: DEAL_STEP_MS });
  assert.equal(await dealRow.count(), 1);
  await page.locator("[data-active-deals]", { hasText: /^1$/ }).waitFor();

  // Add funds: the log shows its volume, masked while "Balances: hidden" is on.
  const funds = await sendTest("add_funds_in_quote", /adds 20 USDT to the open deal on BTC\/USDT at market/);
  assert.equal(funds.body.volume, 20);
  await page.locator(`[data-signals-list] tr[data-signal-row="${funds.id}"]:not([data-signal-state="pending"])`).waitFor({ timeout: DEAL_STEP_MS });
  const fundsAction = signalRow(funds.id).locator("td").nth(1);
  assert.match(await fundsAction.textContent(), /^Add funds \+20 USDT/);
  const toggle = page.locator('header [data-action="toggle-balances"]');
  await toggle.click();
  await fundsAction.filter({ hasText: "+*** USDT" }).waitFor();
  await page.locator("[data-dca-reveal]").click();
  await fundsAction.filter({ hasText: "+20 USDT" }).waitFor();
  await toggle.click();
  await page.locator("[data-dca-reveal]").waitFor({ state: "hidden" });
  await fundsAction.filter({ hasText: "+20 USDT" }).waitFor();
  await page.screenshot({ path: path.join(screenshots, "bot-webhook-signals.png"), fullPage: true });

  // Rotate: a confirmation, then the password (the window has passed), then the new secret once.
  await sleep(Math.max(0, lastAuth + REAUTH_WINDOW_MS + 500 - Date.now()));
  let rotateQuestion = "";
  page.once("dialog", (confirm) => { rotateQuestion = confirm.message(); confirm.accept(); });
  await page.getByRole("button", { name: "Rotate secret" }).click();
  await passStepUp();
  assert.match(rotateQuestion, /keeps working for 24 hours/);
  const rotated = page.locator("[data-rotated]");
  await rotated.waitFor({ state: "visible" });
  const newSecret = await rotated.locator("[data-rotated-secret]").textContent();
  assert.match(newSecret, /^[0-9a-f]{64}$/);
  assert.notEqual(newSecret, secret);
  assert.match(await rotated.textContent(), /Copy it now: it won’t be shown again\./);
  assert.match(await rotated.locator("[data-rotated-grace]").textContent(), /The previous secret keeps working until .+ \(24 hours\)/);
  const until = new Date(await rotated.locator("[data-rotated-grace] time").getAttribute("datetime"));
  const hours = (until.getTime() - Date.now()) / 3_600_000;
  assert.ok(hours > 23.9 && hours <= 24, `previous_valid_until is 24 h away: ${until.toISOString()}`);
  await startMessage.filter({ hasText: newSecret }).waitFor();
  assert.equal(JSON.parse(await startMessage.textContent()).email_token, newSecret);
  assert.equal((await message("signal_exit")).secret, newSecret);
  assert.equal(await page.inputValue("#webhook-secret"), newSecret);
  await page.screenshot({ path: path.join(screenshots, "bot-webhook-rotated.png"), fullPage: true });

  // The new secret works: "close all" closes the deal.
  const close = await sendTest("close_at_market_price_all", /closes every open deal of this bot at the market price/);
  assert.equal(close.body.email_token, newSecret);
  await page.locator(`[data-signals-list] tr[data-signal-row="${close.id}"][data-signal-state="done"]`).waitFor({ timeout: DEAL_STEP_MS });
  await page.locator('[data-deals-list] [data-status="panic_sold"]').waitFor({ timeout: DEAL_STEP_MS });

  // Signed mode (WH-4): ticked and saved, the PATCH turns it on (and repeats the other settings).
  const settingsForm = page.locator("form[data-webhook-settings]");
  const signedBox = settingsForm.getByLabel("Take only signed requests");
  assert.equal(await signedBox.isChecked(), false);
  assert.equal(await page.textContent('[data-setting="webhook_require_signature"]'), "off");
  await signedBox.check();
  const signedOn = page.waitForRequest((r) => r.url().endsWith(`/api/v1/bots/${botId}`) && r.method() === "PATCH");
  await settingsForm.getByRole("button", { name: "Save the webhook settings" }).click();
  assert.deepEqual(JSON.parse((await signedOn).postData()), {
    webhook_ip_allowlist: ["127.0.0.1", "tradingview"], webhook_max_lag_seconds: 300, webhook_require_signature: true,
  });
  await settingsForm.locator("[data-webhook-settings-ok]", { hasText: "Saved." }).waitFor();
  await page.locator('[data-setting="webhook_require_signature"]', { hasText: /^on$/ }).waitFor();
  await page.locator("[data-signed-only]").waitFor({ state: "visible" });
  assert.equal(await signedBox.isChecked(), true, "the form shows the stored setting");
  // The page's test signal is unsigned, as TradingView's: the page says it would be refused.
  await testForm.getByLabel("Message to send").selectOption("close_at_market_price_all");
  await testForm.getByRole("button", { name: "Send test signal" }).click();
  await page.locator("[data-test-error]", { hasText: "takes only signed requests" }).waitFor();

  // The signed examples: the chosen message without its secret, to the webhook URL, signed with
  // the secret filled in above; {{timenow}} is filled in by the script when it runs.
  await page.getByLabel("Message to sign").selectOption("close_at_market_price_all");
  const shellExample = page.locator('[data-signed-example="sh"] [data-signed-text]');
  const pythonExample = page.locator('[data-signed-example="python"] [data-signed-text]');
  await shellExample.filter({ hasText: "close_at_market_price_all" }).waitFor();
  const shell = await shellExample.textContent();
  const python = await pythonExample.textContent();
  for (const example of [shell, python]) {
    assert.ok(example.includes(botId), "the bot's id");
    assert.ok(example.includes(`${base}/trade_signal/trading_view`), "the webhook URL");
    assert.ok(example.includes("Bulwark-Signature"), "the header");
    assert.ok(example.includes(newSecret), "the secret filled in above");
    assert.ok(!example.includes("email_token"), "no secret in the body");
  }
  assert.match(shell, /openssl dgst -sha256 -hmac/);
  assert.match(python, /hmac\.new\(/);
  const signedTemplate = shell.match(/^body='(.*)'$/m)[1];
  assert.ok(python.includes(`body = '${signedTemplate}'`), "both examples sign the same body");
  assert.deepEqual(JSON.parse(signedTemplate), {
    message_type: "bot", bot_id: botId, delay_seconds: 0, pair: "USDT_BTC", timestamp: "{{timenow}}", action: "close_at_market_price_all",
  });
  await page.locator('[data-signed-example="sh"]').getByRole("button", { name: "Copy the shell example" }).click();
  await page.locator("[data-signed-copy-ok]", { hasText: "Copied the shell example, with your secret." }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), shell);
  await page.screenshot({ path: path.join(screenshots, "bot-webhook-signed.png"), fullPage: true });

  // Signed as the examples sign it, the body without the secret is accepted; a `t` over 300 s off
  // is stale; the same message unsigned, even with the right secret in it, is refused.
  const signedBody = signedTemplate.replace("{{timenow}}", new Date().toISOString().replace(/\.\d{3}Z$/, "Z"));
  const signature = (t, body) => `t=${t},v1=${crypto.createHmac("sha256", newSecret).update(`${t}.${body}`).digest("hex")}`;
  const post = async (body, headers = {}) => {
    const res = await fetch(`${base}/trade_signal/trading_view`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body });
    return { status: res.status, data: await res.json() };
  };
  const now = Math.floor(Date.now() / 1000);
  const stale = await post(signedBody, { "Bulwark-Signature": signature(now - 400, signedBody) });
  assert.equal(stale.status, 422, JSON.stringify(stale.data));
  assert.equal(stale.data.error, "stale_signal");
  const signedPost = await post(signedBody, { "Bulwark-Signature": signature(now, signedBody) });
  assert.equal(signedPost.status, 202, JSON.stringify(signedPost.data));
  assert.match(signedPost.data.signal_id, /^[0-9a-f-]{36}$/);
  const unsigned = await post(JSON.stringify({ ...JSON.parse(signedBody), email_token: newSecret }));
  assert.equal(unsigned.status, 401, JSON.stringify(unsigned.data));
  assert.equal(unsigned.data.error, "invalid_signature");
  await signalRow(signedPost.data.signal_id).waitFor({ timeout: DEAL_STEP_MS });

  // Unticked, the PATCH turns it off; the settings cleared below leave it out (unchanged).
  await signedBox.uncheck();
  const signedOff = page.waitForRequest((r) => r.url().endsWith(`/api/v1/bots/${botId}`) && r.method() === "PATCH");
  await settingsForm.getByRole("button", { name: "Save the webhook settings" }).click();
  assert.deepEqual(JSON.parse((await signedOff).postData()), {
    webhook_ip_allowlist: ["127.0.0.1", "tradingview"], webhook_max_lag_seconds: 300, webhook_require_signature: false,
  });
  await page.locator('[data-setting="webhook_require_signature"]', { hasText: /^off$/ }).waitFor();
  await page.locator("[data-signed-only]").waitFor({ state: "hidden" });

  // The webhook settings cleared: PATCH with null removes them, and the start message loses its time.
  await settingsForm.getByLabel("Take signals only from").fill("");
  await settingsForm.getByLabel("Refuse signals older than").fill("");
  const patched = page.waitForRequest((r) => r.url().endsWith(`/api/v1/bots/${botId}`) && r.method() === "PATCH");
  await settingsForm.getByRole("button", { name: "Save the webhook settings" }).click();
  assert.deepEqual(JSON.parse((await patched).postData()), { webhook_ip_allowlist: null, webhook_max_lag_seconds: null });
  await settingsForm.locator("[data-webhook-settings-ok]", { hasText: "Saved." }).waitFor();
  await page.locator('[data-setting="webhook_ip_allowlist"]', { hasText: "any address" }).waitFor();
  assert.equal(await page.textContent('[data-setting="webhook_max_lag_seconds"]'), "off");
  await page.waitForFunction(() => !document.querySelector('[data-message="start_deal"] [data-message-text]').textContent.includes("timestamp"));
  assert.equal((await message("signal_enter")).max_lag, "300");

  // A signal bot takes the Signal-bot message only: its page offers no DCA-bot URL, message or test.
  const signalBot = await page.evaluate(async (account) => {
    const res = await fetch("/api/v1/bots", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type: "signal", name: "Signals only", exchange_account_id: account, pairs: ["USDT_BTC", "USDT_ETH"], enabled: true, base_order_volume: "20", strategy: "short" }),
    });
    return { status: res.status, bot: await res.json() };
  }, await page.evaluate(async (id) => (await (await fetch(`/api/v1/bots/${id}`)).json()).exchange_account_id, botId));
  assert.equal(signalBot.status, 201, JSON.stringify(signalBot.bot));
  await page.goto(`${base}/bots/${signalBot.bot.id}`);
  const signalEnter = page.locator('[data-message="signal_enter"] [data-message-text]');
  await signalEnter.filter({ hasText: "enter_short" }).waitFor();
  assert.equal(JSON.parse(await signalEnter.textContent()).bot_uuid, signalBot.bot.id);
  assert.equal((await message("signal_exit")).action, "exit_short");
  assert.ok(await page.locator('[data-message="start_deal"]').isHidden(), "no DCA-bot messages");
  assert.ok(await page.locator('[data-webhook-url="dca"]').isHidden(), "no DCA-bot URL");
  assert.equal(await testForm.getByLabel("Message to send").inputValue(), "signal_enter");
  assert.equal(await page.locator('#test-message option[value="start_deal"]').isDisabled(), true);
  await page.getByLabel("Pair of the test signals").selectOption("USDT_ETH");
  assert.equal(await page.textContent('[data-setting="strategy_list"]'), "signals");
  assert.equal(await page.locator('[data-setting="max_safety_orders"]').count(), 0, "no ladder");
  await page.goto(`${base}/bots/${botId}`);

  // The secret was never stored, and a reload forgets it.
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0, "nothing in storage");
  assert.ok(!page.url().includes(secret) && !page.url().includes(newSecret), "no secret in the address");
  await page.reload();
  await startMessage.filter({ hasText: "<webhook secret>" }).waitFor();
  assert.equal(await page.inputValue("#webhook-secret"), "");
  const html = await page.content();
  assert.ok(!html.includes(secret) && !html.includes(newSecret), "no secret after a reload");
  await page.locator(`[data-signals-list] tr[data-signal-row="${first.id}"][data-signal-state="done"]`).waitFor();

  assert.deepEqual(pageErrors, [], "no script errors (a CSP violation would show here)");
  console.log("e2e: webhooks flow passed in", await browser.version());
} finally {
  await browser.close();
  await server.stop();
}
