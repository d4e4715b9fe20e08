// Exchange accounts in a real browser, against `bulwark exchange-sim` standing in for Binance:
// a key that can withdraw is refused with the sentence saying what to change and nothing is listed;
// the same key without that permission connects and is listed by its last four characters with its
// permission badges; balances are masked while "hide balances" is on and shown after "Show
// amounts"; "Check again" works and pauses the account (with the reason in words) once the key can
// withdraw again; "Remove" asks for confirmation and the password, then the account is gone. The
// secret never comes back: not in the page, not in any answer the page receives, not in a mail,
// not in the address bar or the browser's storage, and the form's secret field is empty after
// every try. The server runs with BULWARK_REAUTH_WINDOW_SECONDS=3, so waiting 3.5 s before a
// step-up action always makes the password dialog appear. The sim is restarted on the same port
// to change the key's permissions (serve reads BULWARK_BINANCE_URL once). Exits non-zero on the
// first failed expectation.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import assert from "node:assert/strict";
import { launchBrowser, signUp, startExchangeSim, startServer } from "./lib.mjs";

const screenshots = path.resolve(import.meta.dirname, "screenshots");
const EMAIL = "robin@example.com";
const PASSWORD = "copper meadow lantern 58";
const REAUTH_WINDOW_MS = 3_000;
// Binance-shaped: 64 letters and digits each. Random, so a match anywhere means it leaked.
const API_KEY = `${crypto.randomBytes(30).toString("hex")}Wxyz`;
const API_SECRET = crypto.randomBytes(32).toString("hex");
const HINT = `…${API_KEY.slice(-4)}`;
const ACCOUNT_NAME = "Binance main";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function outlastReauthWindow(since) {
  await sleep(Math.max(0, since + REAUTH_WINDOW_MS + 500 - Date.now()));
}

// One exchange account holding the test key; `permissions` adds flags such as --withdrawals.
const simArgs = (bind, permissions) => [
  "--bind", bind, "--api-key", API_KEY, "--api-secret", API_SECRET, "--balances", "USDT=10000,BTC=0.5", ...permissions,
];
let sim = await startExchangeSim(simArgs("127.0.0.1:0", ["--withdrawals"]));
const simBind = new URL(sim.base).host;

// The same key with other permissions, as if its owner had edited it on the exchange. The port is
// bound again as soon as the old process is gone; a few tries cover a slow release.
async function restartSim(permissions) {
  await sim.stop();
  for (let attempt = 1; ; attempt += 1) {
    try {
      sim = await startExchangeSim(simArgs(simBind, permissions));
      return;
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(100);
    }
  }
}

const server = await startServer("bulwark-e2e-keys-", {
  BULWARK_BINANCE_URL: sim.base,
  BULWARK_REAUTH_WINDOW_SECONDS: String(REAUTH_WINDOW_MS / 1000),
});
const { base, outbox } = server;
const browser = await launchBrowser();
const pageErrors = [];
try {
  fs.mkdirSync(screenshots, { recursive: true });
  const context = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // Expected refusals (401, 403 reauth_required, 422) show up as console errors; nothing else may.
  page.on("console", (m) => { if (m.type() === "error" && !/status of (401|403|422)/.test(m.text())) pageErrors.push(m.text()); });

  // Every answer the page receives, to be searched for the secret.
  const answers = [];
  page.on("response", (response) => {
    answers.push(response.body().then((body) => ({ url: response.url(), text: body.toString("utf8") }), () => null));
  });
  async function assertSecretNowhere(when) {
    const seen = (await Promise.all(answers)).filter(Boolean);
    assert.ok(seen.some((a) => a.url.includes("/api/v1/exchange-accounts")), `${when}: the page asked the API`);
    for (const { url, text } of seen) {
      assert.ok(!text.includes(API_SECRET), `${when}: the secret is in the answer from ${url}`);
      assert.ok(!text.includes(API_KEY), `${when}: the whole API key is in the answer from ${url}`);
    }
    const html = await page.content();
    assert.ok(!html.includes(API_SECRET) && !html.includes(API_KEY), `${when}: the page's HTML holds the key or secret`);
    assert.equal(await page.inputValue("#api_secret"), "", `${when}: the secret field is empty`);
    assert.equal(await page.inputValue("#private_key"), "", `${when}: the private key field is empty`);
    assert.ok(!page.url().includes(API_SECRET), `${when}: the secret is in the address`);
    assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0, `${when}: nothing in storage`);
  }

  const dialog = page.locator("dialog#step-up");
  async function passStepUp() {
    await dialog.waitFor({ state: "visible" });
    await dialog.locator("#step-up-password").fill(PASSWORD);
    await dialog.locator("button[type=submit]").click();
    await dialog.waitFor({ state: "hidden" });
    return Date.now();
  }
  const accounts = page.locator("[data-accounts] > li");
  const accountsStatus = page.locator("[data-accounts-status]");
  const refusal = page.locator("[data-refusal]");

  await signUp(page, base, outbox, EMAIL, PASSWORD);
  const signedInAt = Date.now();

  // The page, from the main menu: no accounts yet, and the guidance for a trade-only key.
  await page.click("nav >> text=Exchange accounts");
  await page.waitForURL("**/exchange-accounts");
  assert.equal(await page.getAttribute('nav a[href="/exchange-accounts"]', "aria-current"), "page");
  await page.locator("text=No accounts yet").waitFor({ state: "visible" });
  assert.equal(await accounts.count(), 0);
  const guide = await page.textContent(".guide");
  for (const words of ["API Management", "Enable Spot & Margin Trading", "Enable Withdrawals", "Restrict access to trusted IPs only", "One key per service"]) {
    assert.ok(guide.includes(words), `the guidance names ${words}`);
  }
  // Ed25519 keys take a private key instead of a secret: one field at a time.
  assert.equal(await page.locator("#private_key").isVisible(), false);
  await page.getByLabel("Ed25519").check();
  await page.locator("#private_key").waitFor({ state: "visible" });
  assert.equal(await page.locator("#api_secret").isVisible(), false);
  await page.getByLabel("HMAC").check();
  await page.locator("#api_secret").waitFor({ state: "visible" });

  // A key that can withdraw: after the password dialog (the sign-in is older than the window),
  // the refusal says what to change on the exchange, the secret field is empty, nothing is listed.
  await page.fill("#account_name", ACCOUNT_NAME);
  await page.fill("#api_key", API_KEY);
  await page.fill("#api_secret", API_SECRET);
  await outlastReauthWindow(signedInAt);
  await page.click("text=Check and connect");
  let reauthAt = await passStepUp();
  await refusal.waitFor({ state: "visible" });
  const refusalText = await refusal.textContent();
  assert.match(refusalText, /not connected/);
  assert.match(refusalText, /can withdraw/);
  assert.match(refusalText, /Enable Withdrawals/);
  assert.ok(await refusal.evaluate((box) => box === document.activeElement), "the refusal has the focus");
  assert.equal(await page.inputValue("#api_secret"), "", "the secret is gone from the form");
  assert.equal(await page.inputValue("#api_key"), API_KEY, "the public key stays for the next try");
  assert.equal(await accounts.count(), 0);
  const afterRefusal = await page.evaluate(async () => (await fetch("/api/v1/exchange-accounts")).json());
  assert.deepEqual(afterRefusal, [], "a refused key is not stored");
  await assertSecretNowhere("after the refusal");
  await page.screenshot({ path: path.join(screenshots, "exchange-accounts-refused.png"), fullPage: true });

  // The owner turns withdrawals off on the exchange and connects the same key again.
  await restartSim([]);
  await page.fill("#api_secret", API_SECRET);
  await outlastReauthWindow(reauthAt);
  await page.click("text=Check and connect");
  reauthAt = await passStepUp();
  await accounts.first().waitFor({ state: "visible" });
  assert.equal(await refusal.isVisible(), false, "the old refusal went away");
  assert.match(await page.textContent('[data-ok-for="connect-account"]'), /Connected “Binance main”/);
  assert.equal(await page.inputValue("#api_key"), "", "the form is empty again");

  // The account as listed: by name, venue, last four characters and key type, with its badges.
  // The same after a reload, which lists it from the API afresh.
  async function checkListed() {
    assert.equal(await accounts.count(), 1);
    const item = accounts.first();
    assert.equal(await item.locator("h3").textContent(), ACCOUNT_NAME);
    const text = await item.textContent();
    for (const words of ["Binance", HINT, "HMAC", "Active"]) assert.ok(text.includes(words), `the account shows ${words}`);
    assert.equal(await item.locator(".pill.ok", { hasText: "Trade" }).count(), 1, "a green Trade badge");
    assert.equal(await item.locator(".pill.ok", { hasText: "IP restricted" }).count(), 1, "an IP restricted badge");
    assert.equal(await item.locator(".pill.danger").count(), 0, "no red badge");
    assert.equal(await item.locator(".flag").count(), 0, "not paused");
    return item;
  }
  await checkListed();
  await assertSecretNowhere("after connecting");
  await page.reload();
  await accounts.first().waitFor({ state: "visible" });
  const account = await checkListed();
  const history = await page.textContent("main");
  assert.match(history, /Exchange key refused: it can withdraw funds/, "the refusal is in the key history");
  assert.match(history, /Exchange key connected/, "so is the connection");
  await page.screenshot({ path: path.join(screenshots, "exchange-accounts-connected.png"), fullPage: true });

  // Balances while "hide balances" is on: masked, then shown for this page only, then masked again.
  const toggle = page.locator('header [data-action="toggle-balances"]');
  await toggle.click();
  await page.waitForFunction(() => document.querySelector('[data-action="toggle-balances"]').getAttribute("aria-pressed") === "true");
  const balancesButton = account.getByRole("button", { name: "Balances" });
  await balancesButton.click();
  assert.equal(await balancesButton.getAttribute("aria-expanded"), "true");
  const balances = account.locator("[data-balances]");
  const row = (asset) => balances.locator("tbody tr", { hasText: asset });
  await row("USDT").waitFor({ state: "visible" });
  assert.deepEqual(await row("USDT").locator("td").allTextContents(), ["***", "***"]);
  assert.deepEqual(await row("BTC").locator("td").allTextContents(), ["***", "***"]);
  await balances.getByRole("button", { name: "Show amounts" }).click();
  await balances.locator("td", { hasText: "10,000" }).waitFor({ state: "visible" });
  assert.deepEqual(await row("USDT").locator("td").allTextContents(), ["10,000", "0"]);
  assert.deepEqual(await row("BTC").locator("td").allTextContents(), ["0.5", "0"]);
  const revealed = (await Promise.all(answers)).filter(Boolean).map((a) => a.url);
  assert.ok(revealed.some((url) => url.endsWith("/balances?reveal=true")), "amounts were asked for with reveal=true");
  await balances.getByRole("button", { name: "Hide amounts" }).click();
  await balances.locator("td", { hasText: "***" }).first().waitFor({ state: "visible" });
  assert.deepEqual(await row("USDT").locator("td").allTextContents(), ["***", "***"]);
  const me = await page.evaluate(async () => (await fetch("/api/v1/me")).json());
  assert.equal(me.hide_balances, true, "showing amounts on this page does not change the preference");

  // Check again: still fine.
  await account.getByRole("button", { name: "Check again" }).click();
  await accounts.first().locator('[data-ok-for="account"]', { hasText: "Checked just now" }).waitFor({ state: "visible" });
  assert.match(await accounts.first().textContent(), /Active/);
  assert.equal(await accounts.first().locator("[data-balances]").isVisible(), true, "the open balances stay open");

  // The key gains the withdrawal permission on the exchange: Check again pauses the account,
  // with a clear flag, the reason in words, and a red Withdraw badge.
  await restartSim(["--withdrawals"]);
  await accounts.first().getByRole("button", { name: "Check again" }).click();
  const paused = accounts.first();
  await paused.locator(".flag").waitFor({ state: "visible" });
  assert.match(await paused.locator(".flag").textContent(), /Paused: Bulwark does not trade with this key/);
  assert.match(await paused.locator(".flag").textContent(), /can now withdraw funds/);
  assert.equal(await paused.locator(".account-head .pill.danger", { hasText: "Paused" }).count(), 1);
  assert.equal(await paused.locator(".pill.danger", { hasText: "Withdraw" }).count(), 1, "a red Withdraw badge");
  const listed = await page.evaluate(async () => (await fetch("/api/v1/exchange-accounts")).json());
  assert.equal(listed[0].status, "paused");
  await page.screenshot({ path: path.join(screenshots, "exchange-accounts-paused.png"), fullPage: true });

  // Remove: a confirmation first (Dismiss keeps the account), then the password dialog.
  await outlastReauthWindow(reauthAt);
  page.once("dialog", (confirm) => confirm.dismiss());
  await paused.getByRole("button", { name: "Remove" }).click();
  assert.equal(await accounts.count(), 1, "dismissing the confirmation keeps the account");
  let question = "";
  page.once("dialog", (confirm) => { question = confirm.message(); confirm.accept(); });
  await paused.getByRole("button", { name: "Remove" }).click();
  await passStepUp();
  await accountsStatus.filter({ hasText: "Removed" }).waitFor({ state: "visible" });
  assert.ok(question.includes(ACCOUNT_NAME), "the confirmation names the account");
  assert.equal(await accounts.count(), 0);
  const afterRemove = await page.evaluate(async () => (await fetch("/api/v1/exchange-accounts")).json());
  assert.deepEqual(afterRemove, []);

  await assertSecretNowhere("at the end");
  for (const file of fs.readdirSync(outbox).filter((f) => f.endsWith(".eml"))) {
    assert.ok(!fs.readFileSync(path.join(outbox, file), "utf8").includes(API_SECRET), `the secret is in the mail ${file}`);
  }
  assert.deepEqual(pageErrors, [], "no script errors (a CSP violation would show here)");
  console.log("e2e: exchange accounts flow passed in", await browser.version());
} finally {
  await browser.close();
  await server.stop();
  await sim.stop();
}
