// A DCA bot on a paper account, in a real browser, against `bulwark serve` with its built-in paper
// market. Register, confirm, sign in, open a paper account, then on /bots: the account is offered,
// the start price is filled in from the market, and the plan preview (POST /api/v1/bots/preview)
// follows the settings as they are typed: its numbers change with the base order volume, its rows
// with the number of safety orders, and a setting that is not a number is named next to its field.
// A volume's unit follows its type (quote or base currency). With two take-profit steps the
// preview lists both targets of every order; steps whose shares do not make 100 % are named next
// to the steps; a step can be added and removed.
// Create the bot (manual start, two steps, stop loss 5 % moved to breakeven after a step): the
// webhook secret is shown once, with the note to copy it now, and never again (not on the bot
// page, not after a reload). On the bot's page: its settings (the steps in words), "Start new
// deal", the deal in its list; on the deal's page: it reaches "bought" with its orders (the base
// order filled, safety orders and both take-profit steps waiting), its targets and stop-loss
// price, and a chart with their markers; "Balances: hidden" masks its amounts, not its prices
// ("Show amounts" shows them for this page only); "Close at market" (after a confirmation) ends
// it as "panic_sold", closed at market with a profit, its targets not reached.
// Back on the bot page it counts as finished with its day's profit, and the deals page filters by
// bot and status. Then a signal bot through the same form: "Signal bot" hides the ladder and the
// start condition (and "DCA bot" brings them back), the take profit may stay empty, the preview
// shows the entry order alone; the POST carries `type: "signal"` and no ladder field nor
// `strategy_list`; the secret hand-off to a new tab works as for a DCA bot, and the bot's page shows
// a signal bot with the Signal-bot messages. No script or CSP error on the way. Waits for text and elements with timeouts,
// never for a fixed time (docs/dev-notes.md rule 17). Exits non-zero on the first failed
// expectation.
import fs from "node:fs";
import path from "node:path";
import assert from "node:assert/strict";
import { launchBrowser, signUp, startServer } from "./lib.mjs";

const screenshots = path.resolve(import.meta.dirname, "screenshots");
const EMAIL = "dca@example.com";
const PASSWORD = "harbour willow signal 91";
const ACCOUNT_NAME = "Bot practice";
const BOT_NAME = "BTC ladder";
// The engine cycles every second; a deal's steps take a few cycles.
const DEAL_STEP_MS = 30_000;

const server = await startServer("bulwark-e2e-bots-");
const { base, outbox } = server;
const browser = await launchBrowser();
const pageErrors = [];
try {
  fs.mkdirSync(screenshots, { recursive: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 1100 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // A preview refused while a setting is being typed (422) and a step-up (403 reauth_required)
  // show up as console errors; nothing else may.
  page.on("console", (m) => { if (m.type() === "error" && !/status of (403|422)/.test(m.text())) pageErrors.push(m.text()); });
  // Every answer the page receives, to make sure the webhook secret comes exactly once.
  const answers = [];
  page.on("response", (response) => {
    answers.push(response.body().then((body) => ({ url: response.url(), text: body.toString("utf8") }), () => null));
  });

  await signUp(page, base, outbox, EMAIL, PASSWORD);

  // A paper account to trade on (through the password dialog if it appears).
  await page.click("nav >> text=Exchange accounts");
  await page.waitForURL("**/exchange-accounts");
  const paperForm = page.locator("form[data-paper-form]");
  await paperForm.getByLabel("Name").fill(ACCOUNT_NAME);
  await paperForm.getByRole("button", { name: "Open the paper account" }).click();
  const dialog = page.locator("dialog#step-up");
  const paperItem = page.locator("[data-accounts] > li.paper");
  await page.locator("dialog#step-up[open], [data-accounts] > li.paper").first().waitFor({ state: "visible" });
  if (await dialog.isVisible()) {
    await dialog.locator("#step-up-password").fill(PASSWORD);
    await dialog.locator("button[type=submit]").click();
    await dialog.waitFor({ state: "hidden" });
  }
  await paperItem.waitFor({ state: "visible" });

  // Bots: none yet; the form offers the account and fills the start price from its market.
  await page.click("nav >> text=Bots");
  await page.waitForURL("**/bots");
  assert.equal(await page.getAttribute('nav a[href="/bots"]', "aria-current"), "page");
  await page.locator("[data-bots-status]", { hasText: "No bots yet" }).waitFor();
  const form = page.locator("form[data-bot-form]");
  await form.locator("select[name=exchange_account_id]:not([disabled])").waitFor();
  assert.match(await form.locator("select[name=exchange_account_id] option:checked").textContent(), new RegExp(`^${ACCOUNT_NAME} \\(Paper trading\\)$`));
  assert.equal(await form.locator("input[name=pairs]").inputValue(), "USDT_BTC");
  await page.waitForFunction(() => /^\d+(\.\d+)?$/.test(document.querySelector("input[name=start_price]").value));
  const startPrice = Number(await form.locator("input[name=start_price]").inputValue());
  assert.ok(startPrice > 0, "the last price of BTC/USDT");

  // The preview: the base order and five safety orders, rounded to the market, with numbers.
  const preview = form.locator("[data-preview]");
  const rows = preview.locator("tbody tr[data-preview-row]");
  const cell = (row, col) => preview.locator(`tr[data-preview-row="${row}"] [data-col="${col}"]`);
  const number = async (locator) => Number((await locator.textContent()).replace(/,/g, ""));
  await preview.locator("text=Rounded to the market’s rules").waitFor();
  assert.equal(await rows.count(), 6);
  assert.equal(await preview.locator("tr[data-preview-row=base] th").textContent(), "Base order");
  assert.equal(await preview.locator("tr[data-preview-row=safety-5] th").textContent(), "Safety order 5−7.5 %", "its deviation below");
  assert.match(await preview.locator("tr[data-preview-row=base] .sub").textContent(), /^0\.[0-9]+ BTC$/, "the size in BTC too");
  assert.equal(await preview.locator("tr.problem-row").count(), 0, "every order can be placed");
  const basePrice = await number(cell("base", "price"));
  assert.ok(Math.abs(basePrice - startPrice) / startPrice < 0.01, `the base order at the start price (${basePrice}, ${startPrice})`);
  const baseSize = await number(cell("base", "size_quote"));
  assert.ok(baseSize > 19 && baseSize <= 20, `about 20 USDT: ${baseSize}`);
  assert.ok(await number(cell("safety-1", "price")) < basePrice, "a long bot's safety orders sit below");
  assert.ok(await number(cell("safety-1", "take_profit_price")) > await number(cell("safety-1", "average_price")));
  assert.match(await preview.locator("[data-plan-summary]").textContent(), /^At most [0-9,.]+ USDT per deal; the last safety order is [0-9.]+ % below the start price\.$/);

  // It follows the settings as they are typed: a bigger base order, fewer safety orders.
  await form.getByLabel("Name").fill(BOT_NAME);
  await form.locator("input[name=base_order_volume]").fill("30");
  await page.waitForFunction(() => {
    const size = document.querySelector('[data-preview] tr[data-preview-row="base"] [data-col="size_quote"]');
    return size && Number(size.textContent.replace(/,/g, "")) > 29;
  });
  assert.ok(await number(cell("base", "size_quote")) <= 30);
  await form.locator("input[name=max_safety_orders]").fill("3");
  await preview.locator("tr[data-preview-row=safety-4]").waitFor({ state: "detached" });
  assert.equal(await rows.count(), 4);
  // A setting that is not a number is named next to its field, and the plan says why it is missing.
  await form.locator("input[name=safety_order_step_percentage]").fill("one");
  await form.locator('[data-error-for="safety_order_step_percentage"]', { hasText: "safety_order_step_percentage is a number" }).waitFor();
  await preview.locator("[data-preview-problem]").waitFor();
  assert.equal(await form.locator("input[name=safety_order_step_percentage]").getAttribute("aria-invalid"), "true");
  await form.locator("input[name=safety_order_step_percentage]").fill("1");
  await preview.locator("tr[data-preview-row=safety-3]").waitFor();
  assert.equal(await form.locator('[data-error-for="safety_order_step_percentage"]').textContent(), "");
  // A short bot's ladder goes up.
  await form.locator('label[for="strategy-short"]').click();
  await preview.locator("[data-plan-summary]", { hasText: "above the start price" }).waitFor();
  await form.locator('label[for="strategy-long"]').click();
  await preview.locator("[data-plan-summary]", { hasText: "below the start price" }).waitFor();
  await form.getByLabel("Deal start condition").selectOption("manual");
  await page.screenshot({ path: path.join(screenshots, "bots-new-preview.png"), fullPage: true });

  // A volume in the base currency shows the coin as its unit.
  const boUnit = form.locator('[data-volume-unit="base_order_volume_type"]');
  assert.equal(await boUnit.textContent(), "USDT");
  await form.getByLabel("Base order volume in").selectOption("base_currency");
  await boUnit.filter({ hasText: /^BTC$/ }).waitFor();
  assert.equal(await form.locator('[data-volume-unit="safety_order_volume_type"]').textContent(), "USDT", "each volume has its own type");
  await form.getByLabel("Base order volume in").selectOption("quote_currency");
  await boUnit.filter({ hasText: /^USDT$/ }).waitFor();

  // Two take-profit steps: take_profit gives way to them, and every order shows both targets.
  const breakeven = form.locator("input[name=sl_to_breakeven_enabled]");
  assert.ok(await breakeven.isDisabled(), "move to breakeven needs steps");
  await form.getByLabel("Take profit in steps").check();
  const stepsBox = form.locator("[data-tp-steps]");
  await stepsBox.waitFor({ state: "visible" });
  assert.ok(await form.locator("input[name=take_profit]").isDisabled(), "with steps take_profit is left out");
  await form.getByLabel("Step 1: share of the position").fill("50");
  await form.getByLabel("Step 1: profit").fill("1");
  await form.getByLabel("Step 2: share of the position").fill("50");
  await form.getByLabel("Step 2: profit").fill("2");
  await preview.locator("th", { hasText: "Take profit targets" }).waitFor();
  const target = (row, step) => preview.locator(`tr[data-preview-row="${row}"] [data-col="take_profit_target"][data-step="${step}"]`);
  await target("safety-3", 2).waitFor();
  for (const row of ["base", "safety-1", "safety-3"]) {
    assert.equal(await preview.locator(`tr[data-preview-row="${row}"] [data-col="take_profit_target"]`).count(), 2, `${row}: two targets`);
    const average = await number(cell(row, "average_price"));
    const first = await number(target(row, 1));
    const second = await number(target(row, 2));
    assert.ok(average < first && first < second, `${row}: ${average} < TP1 ${first} < TP2 ${second}`);
    // 1 % and 2 % above the average (to the market's price step).
    assert.ok(Math.abs(first / average - 1.01) < 0.001 && Math.abs(second / average - 1.02) < 0.001, `${row}: +1 % and +2 %`);
  }
  assert.equal(await preview.locator("[data-plan-exits]").textContent(), "Takes profit in 2 steps: 50 % at +1 %, 50 % at +2 %.");
  // Shares that do not make 100 % are named next to the steps.
  await form.getByLabel("Step 2: share of the position").fill("40");
  await form.locator("[data-steps-total]", { hasText: "The shares add up to 90 %; they must make 100 %." }).waitFor();
  await form.locator('[data-error-for="take_profit_steps"]', { hasText: /.+/ }).waitFor();
  assert.equal(await form.getByLabel("Step 2: share of the position").getAttribute("aria-invalid"), "true");
  await preview.locator("[data-preview-problem]").waitFor();
  await form.getByLabel("Step 2: share of the position").fill("50");
  await target("safety-3", 2).waitFor();
  assert.equal(await form.locator('[data-error-for="take_profit_steps"]').textContent(), "");
  assert.equal(await form.locator("[data-steps-total]").textContent(), "The shares add up to 100 %.");
  // A third step comes and goes; the first two stay as they were.
  await form.getByRole("button", { name: "Add a step" }).click();
  const third = form.getByLabel("Step 3: share of the position");
  await third.waitFor({ state: "visible" });
  assert.equal(await third.evaluate((input) => document.activeElement === input), true, "the new step has the focus");
  await form.getByRole("button", { name: "Remove step 3" }).click();
  await third.waitFor({ state: "hidden" });
  assert.equal(await form.getByLabel("Step 2: profit").inputValue(), "2");
  await target("safety-3", 2).waitFor();
  // A stop loss, moved to breakeven once a step has sold (possible with two steps).
  assert.ok(await breakeven.isEnabled(), "two steps allow move to breakeven");
  assert.equal(await form.getByLabel("When the stop loss fires").inputValue(), "stop_loss");
  const previewed = page.waitForResponse((r) => {
    const sent = r.url().endsWith("/api/v1/bots/preview") ? JSON.parse(r.request().postData() || "{}") : {};
    return sent.stop_loss_percentage === "5" && sent.sl_to_breakeven_enabled === true && sent.stop_loss_type === "stop_loss"
      && !("take_profit" in sent) && Array.isArray(sent.take_profit_steps) && sent.take_profit_steps.length === 2;
  });
  await form.locator("input[name=stop_loss_percentage]").fill("5");
  await breakeven.check();
  assert.equal((await previewed).status(), 200, "the preview takes the steps and the stop loss");
  await target("safety-3", 2).waitFor();
  assert.equal(await preview.locator("[data-preview-problem]").count(), 0);
  await page.screenshot({ path: path.join(screenshots, "bots-new-steps.png"), fullPage: true });

  // Create it: the webhook secret, once, with the note to copy it now.
  await form.getByRole("button", { name: "Create the bot" }).click();
  const created = page.locator("[data-bot-created]");
  await created.waitFor({ state: "visible" });
  assert.match(await created.textContent(), /Copy its webhook secret now: it won’t be shown again\./);
  assert.match(await created.locator("[data-bot-created-title]").textContent(), new RegExp(`“${BOT_NAME}” is created and enabled`));
  const secret = await created.locator("[data-webhook-secret]").textContent();
  assert.match(secret, /^[0-9a-f]{64}$/);
  const botRow = page.locator("[data-bots-list] tbody tr", { hasText: BOT_NAME });
  await botRow.waitFor();
  const botCells = await botRow.locator("td").allTextContents();
  assert.deepEqual(botCells.slice(1), ["BTC/USDT", ACCOUNT_NAME, "Enabled", "0", "0", "0 USDT"]);
  await page.screenshot({ path: path.join(screenshots, "bots-created.png"), fullPage: true });

  // The bot's page: its settings, and no secret.
  await created.getByRole("link", { name: "Open the bot →" }).click();
  await page.waitForURL(/\/bots\/[0-9a-f-]+$/);
  const botUrl = page.url();
  assert.equal(await page.textContent("h1"), BOT_NAME);
  await page.locator("[data-bot-state]", { hasText: "Enabled" }).waitFor();
  await page.locator('[data-setting="base_order_volume"]', { hasText: "30 USDT" }).waitFor();
  assert.equal(await page.textContent('[data-setting="max_safety_orders"]'), "3");
  assert.equal(await page.textContent('[data-setting="strategy_list"]'), "manual");
  assert.equal(await page.textContent('[data-setting="take_profit_steps"]'), "50 % at +1 %, 50 % at +2 %");
  assert.equal(await page.textContent('[data-setting="take_profit"]'), "2 %", "the last step's profit");
  assert.equal(await page.textContent('[data-setting="base_order_volume_type"]'), "USDT (quote currency)");
  assert.equal(await page.textContent('[data-setting="trailing_deviation"]'), "off");
  assert.equal(await page.textContent('[data-setting="stop_loss_type"]'), "close the deal");
  assert.equal(await page.textContent('[data-setting="sl_to_breakeven_enabled"]'), "on");
  assert.equal(await page.textContent('[data-setting="tsl_enabled"]'), "off");
  await page.locator("[data-bot-summary] dd a", { hasText: ACCOUNT_NAME }).waitFor();
  await page.locator("[data-deals-list]", { hasText: "No deals yet" }).waitFor();
  assert.ok(!(await page.content()).includes(secret), "the secret is not on the bot page");

  // Start a deal by hand, and follow it to its page.
  await page.getByRole("button", { name: "Start new deal" }).click();
  const started = page.locator("[data-bot-ok]", { hasText: "Started a deal on BTC/USDT" });
  await started.waitFor();
  const dealRow = page.locator("[data-deals-list] tbody tr");
  await dealRow.first().waitFor();
  assert.equal(await dealRow.count(), 1);
  await started.getByRole("link", { name: "Open the deal →" }).click();
  await page.waitForURL(/\/deals\/[0-9a-f-]+$/);
  const dealId = page.url().split("/").pop();
  assert.equal(await page.textContent("h1"), "Deal on BTC / USDT");
  await page.locator('[data-deal-status] [data-status="bought"]').waitFor({ timeout: DEAL_STEP_MS });
  assert.match(await page.textContent("[data-deal-status-text]"), /safety orders and the take profit are working/);
  const orders = page.locator("[data-deal-orders] tbody tr");
  const openTakeProfits = page.locator('[data-deal-orders] tr[data-order-role="take_profit"][data-order-state="open"]');
  await page.waitForFunction(() => document.querySelectorAll('[data-deal-orders] tr[data-order-role="take_profit"][data-order-state="open"]').length === 2,
    null, { timeout: DEAL_STEP_MS });
  assert.equal(await openTakeProfits.count(), 2, "one order per take-profit step");
  const baseCells = await page.locator('[data-deal-orders] tr[data-order-role="base"]').locator("td").allTextContents();
  assert.deepEqual(baseCells.slice(0, 3), ["Base order", "Buy", "market"]);
  assert.equal(baseCells[4], "30 USDT");
  assert.equal(baseCells[5], "filled");
  assert.match(baseCells[6], /^0\.[0-9]+$/, "the BTC bought");
  assert.match(baseCells[7], /^(29|30)(\.[0-9]+)?$/, "for about 30 USDT");
  assert.match(baseCells[8], /^0\.[0-9]+ BTC$/, "the base order paid its fee in BTC");
  assert.equal(await page.locator("[data-deal-orders] th", { hasText: "Error" }).count(), 0, "no error column without errors");
  assert.equal(await page.locator('[data-deal-orders] tr[data-order-role="safety"][data-order-state="open"]').count(), 2, "two active safety orders");
  for (const step of [1, 2]) {
    const tpCells = await openTakeProfits.nth(step - 1).locator("td").allTextContents();
    assert.deepEqual([tpCells[0], tpCells[1], tpCells[2]], [`Take profit ${step}`, "Sell", "limit"]);
  }
  assert.ok(await orders.count() >= 5);
  await page.locator('[data-fact="average_price"]', { hasText: "USDT" }).waitFor();
  assert.match(await page.textContent('[data-fact="take_profit_price"]'), /^[0-9,.]+ USDT$/);
  // The targets: both steps on the book, half the position each, above the average; and the stop loss 5 % below it.
  const targets = page.locator("[data-deal-targets] tbody tr");
  await page.locator('[data-deal-targets] tr[data-target-step="2"][data-step-state="open"]').waitFor();
  assert.equal(await targets.count(), 2);
  const targetCell = (step, col) => page.locator(`[data-deal-targets] tr[data-target-step="${step}"] [data-col="${col}"]`);
  const average = await number(page.locator('[data-fact="average_price"] span span'));
  const prices = [];
  for (const step of [1, 2]) {
    assert.deepEqual(await page.locator(`[data-deal-targets] tr[data-target-step="${step}"] td`).allTextContents(), [
      `TP${step}`, "50 %", `+${step} %`, await targetCell(step, "price").textContent(), await targetCell(step, "quantity").textContent(), "on the book",
    ]);
    assert.match(await targetCell(step, "quantity").textContent(), /^0\.[0-9]+$/, "the step's BTC");
    prices.push(await number(targetCell(step, "price")));
  }
  assert.ok(average < prices[0] && prices[0] < prices[1], `average ${average} < TP1 ${prices[0]} < TP2 ${prices[1]}`);
  assert.equal(await page.textContent('[data-fact="take_profit_price"] span span'), await targetCell(1, "price").textContent(), "the first target's price");
  const stopLoss = await number(page.locator('[data-fact="stop_loss_price"] span span'));
  assert.ok(Math.abs(stopLoss / average - 0.95) < 0.001, `the stop loss 5 % below the average: ${stopLoss}, ${average}`);
  assert.match(await page.textContent('[data-fact="position"]'), /^0\.[0-9]+ BTC$/);
  // The chart: an image drawn by the server, with the orders marked on it.
  await page.waitForFunction(() => {
    const img = document.querySelector("img[data-chart]");
    return img && img.complete && img.naturalWidth > 0;
  });
  const chart = await page.evaluate(async (id) => (await fetch(`/api/v1/deals/${id}/chart.svg`, { cache: "no-store" })).text(), dealId);
  assert.equal((chart.match(/class="marker buy filled"/g) || []).length, 1, "the base order traded");
  assert.equal((chart.match(/class="marker buy open"/g) || []).length, 2, "two safety orders wait");
  assert.equal((chart.match(/class="marker sell open"/g) || []).length, 2, "both take-profit steps wait");
  await page.screenshot({ path: path.join(screenshots, "deal-bought.png"), fullPage: true });

  // "Balances: hidden" masks the deal's amounts; "Show amounts" shows them on this page only.
  const toggle = page.locator('header [data-action="toggle-balances"]');
  await toggle.click();
  await page.locator('[data-fact="position"]', { hasText: "***" }).waitFor();
  await page.locator('[data-deal-orders] tr[data-order-role="base"] td[data-col="executed_quantity"]', { hasText: "***" }).waitFor();
  assert.equal(await page.textContent('[data-deal-orders] tr[data-order-role="base"] td[data-col="executed_quote"]'), "***");
  assert.equal(await page.textContent('[data-deal-orders] tr[data-order-role="base"] td:nth-child(5)'), "*** USDT");
  assert.match(await page.textContent('[data-fact="average_price"]'), /^[0-9,.]+ USDT$/, "prices are not amounts of money and stay");
  await targetCell(1, "quantity").filter({ hasText: "***" }).waitFor();
  assert.equal(await number(targetCell(1, "price")), prices[0], "a target's price stays");
  const reveal = page.locator("[data-dca-reveal]");
  await reveal.click();
  await page.locator('[data-fact="position"]', { hasText: /^0\.[0-9]+ BTC$/ }).waitFor();
  assert.ok((await page.evaluate(async () => (await fetch("/api/v1/me")).json())).hide_balances, "the preference stays on");
  await reveal.click();
  await page.locator('[data-fact="position"]', { hasText: "***" }).waitFor();
  await toggle.click();
  await page.locator('[data-fact="position"]', { hasText: /^0\.[0-9]+ BTC$/ }).waitFor();
  await reveal.waitFor({ state: "hidden" });

  // Close at market: a confirmation, then the deal ends as panic_sold.
  let question = "";
  page.once("dialog", (confirm) => { question = confirm.message(); confirm.accept(); });
  await page.getByRole("button", { name: "Close at market" }).click();
  await page.locator("[data-deal-ok]", { hasText: "Closing at market" }).waitFor();
  assert.match(question, /Close this deal at market\?/);
  await page.locator('[data-deal-status] [data-status="panic_sold"]').waitFor({ timeout: DEAL_STEP_MS });
  await page.locator('[data-fact="close_reason"]', { hasText: "closed at market" }).waitFor();
  await page.locator('[data-deal-orders] tr[data-order-role="close"][data-order-state="filled"]').waitFor();
  assert.match(await page.textContent('[data-fact="profit"]'), /^-?[0-9,.]+ USDT$/);
  await page.locator("[data-deal-actions]").waitFor({ state: "hidden" });
  await page.locator('[data-deal-targets] tr[data-target-step="2"][data-step-state="not_reached"]').waitFor();
  assert.equal(await page.locator('[data-deal-targets] tr[data-step-state="not_reached"]').count(), 2, "neither step sold");
  await page.screenshot({ path: path.join(screenshots, "deal-panic-sold.png"), fullPage: true });

  // The bot counts it as finished, with the day's profit.
  await page.goto(botUrl);
  await page.locator("[data-finished-deals]", { hasText: /^1$/ }).waitFor();
  const today = await page.evaluate(() => {
    const now = new Date();
    const pad = (n) => String(n).padStart(2, "0");
    return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  });
  const dayRow = page.locator(`[data-profit-days] tr[data-day="${today}"]`);
  await dayRow.waitFor();
  const dayCells = await dayRow.locator("td").allTextContents();
  assert.equal(dayCells[1], "1");
  assert.match(dayCells[2], /^-?[0-9,.]+ USDT$/);
  assert.equal(dayCells[2], await page.textContent("[data-bot-profit]"), "one deal: the day's profit is the bot's");
  await page.locator('[data-deals-list] [data-status="panic_sold"]').waitFor();
  await page.screenshot({ path: path.join(screenshots, "bot-page.png"), fullPage: true });

  // The deals page, filtered by bot and status; the filters stay in the address.
  await page.click("nav >> text=Deals");
  await page.waitForURL("**/deals");
  const listed = page.locator("[data-deals-list] tbody tr");
  await listed.first().waitFor();
  assert.equal(await listed.count(), 1);
  assert.deepEqual((await listed.first().locator("td").allTextContents()).slice(1, 4), [BOT_NAME, "BTC/USDT", "panic_sold"]);
  await page.getByLabel("Status").selectOption("bought");
  await page.locator("[data-deals-list]", { hasText: "No deal matches these filters." }).waitFor();
  assert.match(page.url(), /\?status=bought$/);
  await page.getByLabel("Status").selectOption("panic_sold");
  await page.getByLabel("Bot").selectOption({ label: BOT_NAME });
  await listed.first().waitFor();
  assert.match(page.url(), /bot_id=[0-9a-f-]+/);
  await page.reload();
  await listed.first().waitFor();
  assert.equal(await page.getByLabel("Status").inputValue(), "panic_sold", "the filter is read back from the address");
  await page.screenshot({ path: path.join(screenshots, "deals-filtered.png"), fullPage: true });

  // A signal bot through the same form. Choosing "Signal bot" hides the ladder and the start
  // condition and empties the default take profit; "DCA bot" brings them back.
  await page.click("nav >> text=Bots");
  await page.waitForURL("**/bots");
  await form.locator("select[name=exchange_account_id]:not([disabled])").waitFor();
  await page.waitForFunction(() => /^\d+(\.\d+)?$/.test(document.querySelector("input[name=start_price]").value));
  const ladderFields = ["safety_order_volume", "safety_order_volume_type", "max_safety_orders", "active_safety_orders_count",
    "safety_order_step_percentage", "martingale_step_coefficient", "martingale_volume_coefficient"];
  const ladderInputs = () => [...ladderFields.map((name) => form.locator(`[name=${name}]`)), form.getByLabel("Deal start condition")];
  const dcaType = form.getByRole("radio", { name: /^DCA bot/ });
  const signalType = form.getByRole("radio", { name: /^Signal bot \(opens and closes on TradingView Signal-bot alerts\)/ });
  assert.equal(await form.locator("fieldset.bot-kind legend").textContent(), "Bot type (type)");
  assert.ok(await dcaType.isChecked(), "a DCA bot by default");
  for (const input of ladderInputs()) assert.ok(await input.isVisible(), "a DCA bot's ladder");
  const takeProfit = form.locator("input[name=take_profit]");
  assert.equal(await takeProfit.inputValue(), "1.5");
  await signalType.check();
  await form.locator("[name=max_safety_orders]").waitFor({ state: "hidden" });
  for (const input of ladderInputs()) assert.ok(await input.isHidden(), "no ladder for a signal bot");
  assert.equal(await takeProfit.inputValue(), "", "a signal bot's take profit is optional");
  const tpNote = form.locator("#bot-tp-signal-help");
  assert.match(await tpNote.textContent(), /a deal holds its position until an exit signal, the stop loss/);
  assert.ok(await tpNote.isVisible());
  assert.match(await takeProfit.getAttribute("aria-describedby"), /bot-tp-signal-help/);
  assert.match(await form.locator("[data-strategy-help]").textContent(), /enter_long/);
  // The preview: the entry order alone, and no take profit.
  const entryRow = preview.locator('tr[data-preview-row="entry"]');
  await entryRow.waitFor();
  assert.equal(await preview.locator("tbody tr[data-preview-row]").count(), 1, "no safety orders");
  assert.match(await preview.locator("[data-plan-summary]").textContent(), /^Each signal to enter opens a deal with one order of [0-9,.]+ USDT; there are no safety orders\.$/);
  assert.match(await preview.locator("[data-plan-exits]").textContent(), /^No take profit: the deal holds its position until an exit_long signal/);
  assert.equal(await preview.locator("th", { hasText: "Take profit" }).count(), 0);
  // Back to DCA: the ladder and the default take profit come back; then a signal bot again.
  await dcaType.check();
  await form.locator("[name=max_safety_orders]").waitFor({ state: "visible" });
  for (const input of ladderInputs()) assert.ok(await input.isVisible(), "the ladder is back");
  assert.equal(await takeProfit.inputValue(), "1.5");
  await preview.locator("tr[data-preview-row=safety-1]").waitFor();
  await signalType.check();
  await form.locator("[name=max_safety_orders]").waitFor({ state: "hidden" });
  // A refused setting is named next to its field, as for a DCA bot.
  await form.locator("input[name=base_order_volume]").fill("lots");
  await form.locator('[data-error-for="base_order_volume"]', { hasText: "base_order_volume" }).waitFor();
  await form.getByLabel("Name").fill("BTC signals");
  await form.locator("input[name=pairs]").fill("USDT_BTC");
  await form.locator("input[name=base_order_volume]").fill("25");
  await preview.locator('tr[data-preview-row="entry"] [data-col="size_quote"]', { hasText: /^2[45](\.[0-9]+)?$/ }).waitFor();
  assert.equal(await form.locator('[data-error-for="base_order_volume"]').textContent(), "");
  await page.screenshot({ path: path.join(screenshots, "bots-new-signal.png"), fullPage: true });
  const signalPosted = page.waitForRequest((r) => r.url() === `${base}/api/v1/bots` && r.method() === "POST");
  await form.getByRole("button", { name: "Create the bot" }).click();
  const signalSent = JSON.parse((await signalPosted).postData());
  assert.equal(signalSent.type, "signal");
  assert.equal(signalSent.base_order_volume, "25");
  assert.equal(signalSent.strategy, "long");
  assert.deepEqual(signalSent.pairs, ["USDT_BTC"]);
  for (const field of [...ladderFields, "strategy_list", "take_profit", "take_profit_steps", "bot_type"]) {
    assert.ok(!(field in signalSent), `no ${field} for a signal bot`);
  }
  await created.locator("[data-bot-created-title]", { hasText: "“BTC signals” is created and enabled" }).waitFor();
  const signalSecret = await created.locator("[data-webhook-secret]").textContent();
  assert.match(signalSecret, /^[0-9a-f]{64}$/);
  assert.notEqual(signalSecret, secret);
  const signalBotId = (await created.getByRole("link", { name: "Open the bot →" }).getAttribute("href")).split("/").pop();
  // "Open its alert messages with this secret" hands the secret to the new tab, as for a DCA bot.
  const [popup] = await Promise.all([
    context.waitForEvent("page"),
    created.getByRole("button", { name: "Open its alert messages with this secret" }).click(),
  ]);
  popup.on("pageerror", (e) => pageErrors.push(String(e)));
  await popup.waitForURL((url) => url.pathname === `/bots/${signalBotId}`);
  const popupEnter = popup.locator('[data-message="signal_enter"] [data-message-text]');
  await popupEnter.filter({ hasText: signalSecret }).waitFor();
  assert.equal(JSON.parse(await popupEnter.textContent()).secret, signalSecret);
  await popup.close();
  // The bot's page: a signal bot, with the Signal-bot messages and no DCA-bot ones.
  await created.getByRole("link", { name: "Open the bot →" }).click();
  await page.waitForURL(`**/bots/${signalBotId}`);
  assert.equal(await page.textContent("h1"), "BTC signals");
  await page.locator('[data-bot-type="signal"]', { hasText: /^Signal bot/ }).waitFor();
  await page.locator('[data-setting="base_order_volume"]', { hasText: "25 USDT" }).waitFor();
  assert.equal(await page.textContent('[data-setting="strategy_list"]'), "signals");
  assert.equal(await page.textContent('[data-setting="take_profit"]'), "off");
  assert.equal(await page.locator('[data-setting="max_safety_orders"]').count(), 0, "no ladder");
  const signalEnter = page.locator('[data-message="signal_enter"] [data-message-text]');
  await signalEnter.filter({ hasText: "enter_long" }).waitFor();
  const enterMessage = JSON.parse(await signalEnter.textContent());
  assert.equal(enterMessage.bot_uuid, signalBotId);
  assert.equal(enterMessage.action, "enter_long");
  assert.ok(await page.locator('[data-message="start_deal"]').isHidden(), "no DCA-bot messages");
  assert.ok(!(await page.content()).includes(signalSecret), "the secret is not on the bot page");
  const botDetails = await page.evaluate(async (id) => (await fetch(`/api/v1/bots/${id}`)).json(), signalBotId);
  assert.equal(botDetails.type, "signal");
  await page.screenshot({ path: path.join(screenshots, "bot-signal.png"), fullPage: true });

  // The secret came in one answer only, the one that created the bot.
  const seen = (await Promise.all(answers)).filter(Boolean).filter((a) => a.text.includes(secret));
  assert.deepEqual(seen.map((a) => new URL(a.url).pathname), ["/api/v1/bots"]);
  const seenSignal = (await Promise.all(answers)).filter(Boolean).filter((a) => a.text.includes(signalSecret));
  assert.deepEqual(seenSignal.map((a) => new URL(a.url).pathname), ["/api/v1/bots"], "the signal bot's secret too");

  assert.deepEqual(pageErrors, [], "no script errors (a CSP violation would show here)");
  console.log("e2e: bots flow passed in", await browser.version());
} finally {
  await browser.close();
  await server.stop();
}
