// A newcomer's first paper trades, in a real browser, against `bulwark serve` as the README's first
// command starts it (its built-in paper market: BTC, ETH, BNB and SOL against USDT, prices on a
// random walk; no exchange-sim of our own). Register, confirm by the mailed link, sign in, open a
// paper account from the exchange-accounts page (through the password dialog if it appears), see
// it marked PAPER with 10,000 USDT, then on its page: the chart loads and refreshes, an order
// below the market's minimum is refused with the API's sentence word for word, a market buy for
// 100 USDT and a market sell of part of the BTC fill and show in the trade history with their
// fees, a limit buy far below the price waits in the open orders and is canceled, "Balances:
// hidden" masks every amount (with "Show amounts" for this page only), and Reset starts the account
// over with the chosen balances while the history stays. No script or CSP error on the way. Waits
// for text and elements, never for a fixed time (docs/dev-notes.md rule 17). Exits non-zero on the
// first failed expectation.
import fs from "node:fs";
import path from "node:path";
import assert from "node:assert/strict";
import { launchBrowser, signUp, startServer } from "./lib.mjs";

const screenshots = path.resolve(import.meta.dirname, "screenshots");
const EMAIL = "newcomer@example.com";
const PASSWORD = "amber orchard compass 73";
const ACCOUNT_NAME = "First steps";

const server = await startServer("bulwark-e2e-paper-");
const { base, outbox } = server;
const browser = await launchBrowser();
const pageErrors = [];
try {
  fs.mkdirSync(screenshots, { recursive: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // The refused order (422) and a step-up (403 reauth_required) show up as console errors; nothing else may.
  page.on("console", (m) => { if (m.type() === "error" && !/status of (403|422)/.test(m.text())) pageErrors.push(m.text()); });
  const requested = [];
  page.on("request", (request) => requested.push(request.url()));

  await signUp(page, base, outbox, EMAIL, PASSWORD);

  // Exchange accounts: nothing yet; the paper form stands apart from the key form.
  await page.click("nav >> text=Exchange accounts");
  await page.waitForURL("**/exchange-accounts");
  await page.locator("text=No accounts yet").waitFor({ state: "visible" });
  const paperForm = page.locator("form[data-paper-form]");
  assert.match(await page.textContent(".paper-card h2"), /Open a paper account/);
  assert.equal(await page.locator(".paper-card form[data-connect]").count(), 0, "the key form is elsewhere");
  assert.equal(await paperForm.getByLabel("Starting USDT").inputValue(), "10000");

  // A mistyped extra asset is caught before anything is sent.
  await paperForm.getByLabel("Name").fill(ACCOUNT_NAME);
  await paperForm.getByLabel("Other assets").fill("BTC half");
  await paperForm.getByRole("button", { name: "Open the paper account" }).click();
  await paperForm.locator('[data-error-for="balances"]', { hasText: "BTC half" }).waitFor({ state: "visible" });
  assert.deepEqual(await page.evaluate(async () => (await fetch("/api/v1/exchange-accounts")).json()), []);
  await paperForm.getByLabel("Other assets").fill("");

  // Open it: the password dialog may ask first (the sign-in is recent, so usually it does not).
  await paperForm.getByRole("button", { name: "Open the paper account" }).click();
  const dialog = page.locator("dialog#step-up");
  const paperItem = page.locator("[data-accounts] > li.paper");
  await page.locator("dialog#step-up[open], [data-accounts] > li.paper").first().waitFor({ state: "visible" });
  if (await dialog.isVisible()) {
    await dialog.locator("#step-up-password").fill(PASSWORD);
    await dialog.locator("button[type=submit]").click();
    await dialog.waitFor({ state: "hidden" });
    await paperItem.waitFor({ state: "visible" });
  }
  await paperForm.locator('[data-ok-for="open-paper"]', { hasText: `Opened “${ACCOUNT_NAME}” with 10,000 USDT` }).waitFor();
  assert.equal(await paperItem.locator("h3").textContent(), ACCOUNT_NAME);
  assert.equal(await paperItem.locator(".pill.paper").textContent(), "PAPER");
  assert.match(await paperItem.textContent(), /never reach a real exchange/);
  await paperItem.getByRole("button", { name: "Balances" }).click();
  const listBalances = paperItem.locator("[data-balances] tbody tr", { hasText: "USDT" });
  await listBalances.waitFor({ state: "visible" });
  assert.deepEqual(await listBalances.locator("td").allTextContents(), ["10,000", "0"]);
  await page.screenshot({ path: path.join(screenshots, "paper-account-opened.png"), fullPage: true });

  // Its page, from the Trade button.
  await paperItem.getByRole("link", { name: "Trade" }).click();
  await page.waitForURL(/\/exchange-accounts\/[0-9a-f-]+/);
  assert.equal(await page.textContent("h1"), ACCOUNT_NAME);
  assert.equal(await page.locator(".page-head .pill.paper").textContent(), "PAPER");
  const pair = page.getByLabel("Pair", { exact: true });
  await page.locator("[data-trade-pair]:not([disabled])").waitFor();
  assert.equal(await pair.inputValue(), "USDT_BTC");
  const markets = await pair.locator("option").allTextContents();
  for (const base of ["BTC", "ETH", "BNB", "SOL"]) assert.ok(markets.includes(`${base} / USDT`), `the market lists ${base}`);

  const balances = page.locator("[data-trade-balances]");
  const balanceRow = (asset) => balances.locator("tbody tr", { has: page.locator("th", { hasText: new RegExp(`^${asset}$`) }) });
  await balanceRow("USDT").locator("td", { hasText: "10,000" }).first().waitFor();
  assert.deepEqual(await balanceRow("USDT").locator("td").allTextContents(), ["10,000", "0"]);

  // The chart is an image drawn by the server, and it loads.
  await page.waitForFunction(() => {
    const img = document.querySelector("img[data-chart]");
    return img && img.complete && img.naturalWidth > 0;
  });
  assert.match(await page.getAttribute("img[data-chart]", "alt"), /BTC\/USDT price/);

  const form = page.locator("form[data-order-form]");
  const submit = form.locator("[data-order-submit]");
  const ok = page.locator("[data-order-ok]");
  const refusal = page.locator("[data-order-refusal]");
  const history = page.locator("[data-trade-history] tbody tr");

  // Too small for the market: refused, and the API's sentence is shown as it came.
  await form.getByLabel("Amount", { exact: true }).fill("1");
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/orders") && r.request().method() === "POST"),
    submit.click(),
  ]);
  assert.equal(refused.status(), 422);
  const refusedBody = await refused.json();
  assert.equal(refusedBody.error, "order_rejected");
  await refusal.waitFor({ state: "visible" });
  assert.equal(await refusal.locator("[data-order-refusal-text]").textContent(), refusedBody.message);
  assert.equal(await history.count(), 0, "nothing was traded");

  // A market buy for 100 USDT of BTC: filled, in the history as a buy with a fee.
  assert.equal(await submit.textContent(), "Buy BTC");
  await form.getByLabel("Amount", { exact: true }).fill("100");
  await submit.click();
  await ok.filter({ hasText: /^Bought [0-9.]+ BTC for [0-9.]+ USDT at [0-9,.]+ USDT\. Fee: [0-9.]+ BTC\.$/ }).waitFor();
  assert.equal(await refusal.isVisible(), false, "the old refusal went away");
  await history.first().waitFor();
  assert.equal(await history.count(), 1);
  const buyCells = await history.first().locator("td").allTextContents();
  assert.equal(buyCells[1], "Buy");
  assert.match(buyCells[5], /^0\.[0-9]+ BTC$/, "the buy paid a fee in BTC");
  assert.ok(Number(buyCells[5].split(" ")[0]) > 0, "a fee above zero");
  await balanceRow("BTC").waitFor();
  assert.match((await balanceRow("USDT").locator("td").first().textContent()), /^9,9\d\d(\.\d+)?$/, "about 100 USDT spent");

  // A market sell of part of the BTC, counted in BTC.
  await form.locator('label[for="side-sell"]').click();
  await form.locator('input[name="_amount_in"][value="base"]').check();
  assert.equal(await submit.textContent(), "Sell BTC");
  assert.equal(await form.locator("[data-amount-unit]").textContent(), "BTC");
  await form.getByLabel("Amount", { exact: true }).fill("0.001");
  await form.getByLabel("Amount", { exact: true }).press("Enter"); // the keyboard is enough
  await ok.filter({ hasText: /^Sold 0\.001 BTC for [0-9.]+ USDT at [0-9,.]+ USDT\. Fee: [0-9.]+ USDT\.$/ }).waitFor();
  await history.nth(1).waitFor();
  assert.equal(await history.count(), 2);
  const sellCells = await history.first().locator("td").allTextContents();
  assert.equal(sellCells[1], "Sell", "the newest trade comes first");
  assert.equal(sellCells[3], "0.001");
  assert.match(sellCells[5], /^0\.[0-9]+ USDT$/, "the sell paid a fee in USDT");
  await page.screenshot({ path: path.join(screenshots, "paper-trading-filled.png"), fullPage: true });

  // A limit buy far below the price waits in the open orders, holding its USDT, until canceled.
  await form.locator('label[for="side-buy"]').click();
  await form.locator('label[for="type-limit"]').click();
  await form.getByLabel("Quantity").fill("0.01");
  await form.getByLabel("Limit price").fill("1000");
  await submit.click();
  await ok.filter({ hasText: "Limit buy placed: 0.01 BTC at 1,000 USDT" }).waitFor();
  const openOrders = page.locator("[data-trade-orders] tbody tr");
  await openOrders.first().waitFor();
  assert.equal(await openOrders.count(), 1);
  const orderCells = await openOrders.first().locator("td").allTextContents();
  assert.deepEqual(orderCells.slice(1, 6), ["Buy", "1,000", "0.01", "0", "open"]);
  await balanceRow("USDT").locator("td", { hasText: /^10$/ }).waitFor();
  assert.equal(await history.count(), 2, "the limit order did not fill");
  await openOrders.first().getByRole("button", { name: /Cancel the buy order at 1,000 USDT/ }).click();
  await page.locator("[data-orders-ok]", { hasText: "Canceled the buy order at 1,000 USDT" }).waitFor();
  await page.locator("[data-trade-orders]", { hasText: "No open orders" }).waitFor();
  assert.equal(await openOrders.count(), 0);
  await balanceRow("USDT").locator("td", { hasText: /^0$/ }).waitFor();

  // The chart follows the market: it is asked for again within its 15 s period.
  const chartsBefore = requested.filter((url) => url.includes("/chart.svg")).length;
  await page.waitForRequest((r) => r.url().includes("/chart.svg?pair=USDT_BTC"), { timeout: 20_000 });
  assert.ok(requested.filter((url) => url.includes("/chart.svg")).length > chartsBefore);
  assert.ok(await page.evaluate(() => document.querySelector("img[data-chart]").naturalWidth > 0));

  // Another market: its own chart, order form and (empty) history; the address remembers it.
  await pair.selectOption("USDT_ETH");
  await page.locator("[data-trade-history]", { hasText: "No trades on this market yet" }).waitFor();
  assert.match(await page.getAttribute("img[data-chart]", "alt"), /ETH\/USDT price/);
  await page.waitForFunction(() => document.querySelector("img[data-chart]").naturalWidth > 0);
  assert.match(page.url(), /\?pair=USDT_ETH$/);
  assert.equal(await submit.textContent(), "Buy ETH");
  await pair.selectOption("USDT_BTC");
  await history.nth(1).waitFor();

  // "Balances: hidden" masks every amount here: balances, the history's quantities, values and fees.
  const toggle = page.locator('header [data-action="toggle-balances"]');
  await toggle.click();
  await page.waitForFunction(() => document.querySelector('[data-action="toggle-balances"]').getAttribute("aria-pressed") === "true");
  await balanceRow("USDT").locator("td", { hasText: "***" }).first().waitFor();
  assert.deepEqual(await balanceRow("USDT").locator("td").allTextContents(), ["***", "***"]);
  assert.deepEqual(await balanceRow("BTC").locator("td").allTextContents(), ["***", "***"]);
  await history.first().locator("td", { hasText: "***" }).first().waitFor();
  for (const row of await history.all()) {
    const cells = await row.locator("td").allTextContents();
    assert.deepEqual([cells[3], cells[4]], ["***", "***"], "quantity and value are hidden");
    assert.match(cells[5], /^\*\*\* (BTC|USDT)$/, "so is the fee");
    assert.match(cells[2], /^[0-9,.]+$/, "prices are not amounts of money and stay");
  }
  assert.match(await page.locator("[data-available]").textContent(), /Available: \*\*\* USDT and \*\*\* BTC/);
  // "Show amounts" shows them on this page only; "Hide amounts" masks them again.
  const reveal = page.locator("[data-trade-reveal]");
  await reveal.click();
  await history.first().locator("td", { hasText: "0.001" }).waitFor();
  assert.match(await balanceRow("USDT").locator("td").first().textContent(), /^\d/);
  assert.ok(requested.some((url) => url.includes("/trades?pair=USDT_BTC&reveal=true")), "amounts were asked for with reveal=true");
  assert.ok(requested.some((url) => url.includes("/balances?reveal=true")));
  assert.equal(await reveal.getAttribute("aria-pressed"), "true");
  await page.screenshot({ path: path.join(screenshots, "paper-trading-revealed.png"), fullPage: true });
  await reveal.click();
  await history.first().locator("td", { hasText: "***" }).first().waitFor();
  const me = await page.evaluate(async () => (await fetch("/api/v1/me")).json());
  assert.equal(me.hide_balances, true, "showing amounts on this page does not change the preference");
  await page.screenshot({ path: path.join(screenshots, "paper-trading-hidden.png"), fullPage: true });
  await toggle.click();
  await balanceRow("USDT").locator("td", { hasText: /^[0-9]/ }).first().waitFor();
  await reveal.waitFor({ state: "hidden" });

  // Reset: a confirmation with the balances to start over with, then 10,000 USDT and nothing else;
  // the history stays.
  await page.getByRole("button", { name: "Reset…" }).click();
  const resetDialog = page.locator("dialog#paper-reset");
  await resetDialog.waitFor({ state: "visible" });
  assert.match(await resetDialog.locator("h2").textContent(), new RegExp(`Start “${ACCOUNT_NAME}” over`));
  // "Keep it as it is" changes nothing.
  await resetDialog.getByRole("button", { name: "Keep it as it is" }).click();
  await resetDialog.waitFor({ state: "hidden" });
  assert.equal(await balanceRow("BTC").count(), 1, "nothing was reset");
  await page.getByRole("button", { name: "Reset…" }).click();
  await resetDialog.waitFor({ state: "visible" });
  assert.equal(await resetDialog.getByLabel("Starting USDT").inputValue(), "10000");
  await resetDialog.getByRole("button", { name: "Reset the account" }).click();
  await resetDialog.waitFor({ state: "hidden" });
  await page.locator("[data-trade-ok]", { hasText: `“${ACCOUNT_NAME}” starts over with 10,000 USDT` }).waitFor();
  await balances.locator("tbody tr").filter({ hasText: "BTC" }).waitFor({ state: "detached" });
  assert.deepEqual(await balanceRow("USDT").locator("td").allTextContents(), ["10,000", "0"]);
  assert.equal(await balances.locator("tbody tr").count(), 1, "only USDT is left");
  assert.equal(await history.count(), 2, "the trade history stays");
  await page.screenshot({ path: path.join(screenshots, "paper-trading-reset.png"), fullPage: true });

  // Back on the list, the account is still marked PAPER, and its opening is in the key history.
  await page.click("text=← Exchange accounts");
  await page.waitForURL("**/exchange-accounts");
  await paperItem.waitFor();
  assert.equal(await paperItem.locator(".pill.paper").textContent(), "PAPER");
  assert.match(await page.textContent("main"), /Paper account opened/);

  assert.deepEqual(pageErrors, [], "no script errors (a CSP violation would show here)");
  console.log("e2e: paper trading flow passed in", await browser.version());
} finally {
  await browser.close();
  await server.stop();
}
