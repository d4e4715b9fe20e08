// The first thing a person does with Bulwark, in a real browser: register (and see a refused
// password explained next to the field), confirm the mailed link from the outbox, sign in, see and
// revoke sessions, change the password and the email, sign out everywhere. Starts its own `bulwark serve` on a
// fresh data dir and a free loopback port. Exits non-zero on the first failed expectation.
import assert from "node:assert/strict";
import { launchBrowser, linkInMail, startServer } from "./lib.mjs";

const PASSWORD = "violet kettle thunder 42";
const NEW_PASSWORD = "quiet harbor lantern 88";

const server = await startServer("bulwark-e2e-");
const { base, outbox } = server;
const browser = await launchBrowser();
const pageErrors = [];
try {
  const laptop = await browser.newContext({ userAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0 Safari/537.36" });
  const page = await laptop.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error" && !/status of (401|422)/.test(m.text())) pageErrors.push(m.text()); });

  // Register: a common password is refused with the reason next to the field.
  await page.goto(base + "/");
  await page.click("text=Create an account");
  await page.fill("#email", "person@example.com");
  await page.fill("#password", "passwordpassword");
  await page.fill("#confirm", "passwordpassword");
  await page.click("button[type=submit]");
  const weak = page.locator('[data-error-for="password"]');
  await weak.waitFor({ state: "visible" });
  assert.match(await weak.textContent(), /guess/);
  assert.equal(await page.getAttribute("#password", "aria-invalid"), "true");
  // Mismatched repeat is caught before anything is sent.
  await page.fill("#password", PASSWORD);
  await page.fill("#confirm", PASSWORD + "!");
  await page.click("button[type=submit]");
  await page.locator('[data-error-for="_confirm"]').waitFor({ state: "visible" });
  await page.fill("#confirm", PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL("**/check-email");
  assert.match(await page.textContent("h1"), /Check your mail/);

  // Confirm through the link in the outbox.
  const verify = await linkInMail(outbox, "verify-email");
  assert.ok(verify.startsWith(base), "the link points at this server");
  await page.goto(verify);
  assert.equal(await page.textContent("h1"), "Email confirmed");

  // Sign in: a wrong password first, then the right one.
  await page.goto(base + "/");
  await page.fill("#email", "person@example.com");
  await page.fill("#password", "not my password at all");
  await page.click("button[type=submit]");
  // The sign-in page also holds the (hidden) second step with its own error slot.
  const formError = page.locator('#password-step [data-error-for="_form"]');
  await formError.waitFor({ state: "visible" });
  assert.match(await formError.textContent(), /email or password is not right/);
  await page.fill("#password", PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL("**/dashboard");
  assert.match(await page.textContent("main"), /person@example\.com/);
  assert.match(await page.textContent("main"), /verified/);

  // A second browser signs in; the first sees and revokes it.
  const phone = await browser.newContext({ userAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Mobile Safari/604.1" });
  const phonePage = await phone.newPage();
  await phonePage.goto(base + "/");
  await phonePage.fill("#email", "person@example.com");
  await phonePage.fill("#password", PASSWORD);
  await phonePage.click("button[type=submit]");
  await phonePage.waitForURL("**/dashboard");

  await page.click("nav >> text=Security");
  await page.waitForURL("**/account/security");
  const rows = page.locator("table").first().locator("tbody tr");
  assert.equal(await rows.count(), 2);
  assert.match(await page.textContent("table"), /Safari 18 on iPhone/);
  assert.match(await page.textContent("table"), /Chrome 156 on Linux/);
  await rows.filter({ hasText: "iPhone" }).locator("button").click();
  await page.waitForLoadState("load");
  await page.waitForFunction(() => document.querySelectorAll("table")[0].querySelectorAll("tbody tr").length === 1);
  await phonePage.goto(base + "/dashboard");
  assert.equal(new URL(phonePage.url()).pathname, "/", "the revoked browser is signed out");

  // Change the password.
  await page.fill("#current_password", PASSWORD);
  await page.fill("#new_password", NEW_PASSWORD);
  await page.fill("#confirm", NEW_PASSWORD);
  await page.click("form >> text=Change password");
  const ok = page.locator("form:has(#new_password) [data-ok]");
  await ok.waitFor({ state: "visible" });
  assert.match(await ok.textContent(), /Password changed/);

  // Change the email: the link mailed to the new address makes the change.
  await page.fill("#new_email", "renamed@example.com");
  await page.click("form >> text=Send confirmation link");
  const emailOk = page.locator("form:has(#new_email) [data-ok]");
  await emailOk.waitFor({ state: "visible" });
  assert.match(await emailOk.textContent(), /confirmation link/);
  await page.goto(await linkInMail(outbox, "confirm-email-change"));
  assert.equal(await page.textContent("h1"), "Email changed");
  await page.goto(base + "/account/security");
  assert.match(await page.textContent("main"), /renamed@example\.com/);

  // Sign out everywhere (confirm dialog accepted), then sign in with the new password and out.
  page.once("dialog", (d) => d.accept());
  await page.click("text=Sign out everywhere");
  await page.waitForURL(base + "/");
  await page.fill("#email", "renamed@example.com");
  await page.fill("#password", NEW_PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL("**/dashboard");
  await page.click("header >> text=Sign out");
  await page.waitForURL(base + "/");
  const status = await page.evaluate(async () => (await fetch("/api/v1/me")).status);
  assert.equal(status, 401, "signed out server-side");

  assert.deepEqual(pageErrors, [], "no script errors (a CSP violation would show here)");
  console.log("e2e: account flow passed in", (await browser.version()));
} finally {
  await browser.close();
  await server.stop();
}
