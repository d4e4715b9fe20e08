// Two-factor sign-in in a real browser: turn it on from the security page (QR code, key, backup
// codes shown once with Copy and Download), sign in with a code on the second step, see a replayed
// code and a reused backup code refused, keep "hide balances" across a reload, set the
// anti-phishing code, and pass the step-up dialog that sensitive actions open when the session
// has not confirmed the password recently. Codes come from our own RFC 6238 implementation below,
// independent of the Rust code. The server runs with BULWARK_REAUTH_WINDOW_SECONDS=3 so that
// waiting 3.5 s always makes the step-up dialog appear. Exits non-zero on the first failed
// expectation.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import assert from "node:assert/strict";
import { launchBrowser, linkInMail, mailContaining, startServer } from "./lib.mjs";

const screenshots = path.resolve(import.meta.dirname, "screenshots");
const EMAIL = "kim@example.com";
const PASSWORD = "amber falcon orchard 73";
const REAUTH_WINDOW_MS = 3_000;
const ANTI_PHISHING = "orange kite 7";

// ---- RFC 4648 base32, RFC 4226 HOTP, RFC 6238 TOTP (SHA-1, 30-second steps) ----

function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bytes = [];
  let value = 0;
  let bits = 0;
  for (const ch of text.replace(/[\s=]/g, "").toUpperCase()) {
    const index = alphabet.indexOf(ch);
    assert.ok(index >= 0, `base32 character ${ch}`);
    value = ((value << 5) | index) & 0xffff; // at most 12 pending bits, so 16 are enough
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

function hotp(key, counter, digits) {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = crypto.createHmac("sha1", key).update(message).digest();
  const offset = mac[mac.length - 1] & 0x0f; // dynamic truncation, RFC 4226 section 5.3
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, "0");
}

const stepAt = (unixMs) => Math.floor(unixMs / 30_000);
const currentStep = () => stepAt(Date.now());

// The implementation is checked against the published vectors before it is trusted.
const rfcKey = Buffer.from("12345678901234567890", "ascii");
assert.deepEqual(base32Decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), rfcKey, "RFC 4648 base32 of the RFC 6238 key");
assert.equal(hotp(rfcKey, stepAt(59_000), 8), "94287082", "RFC 6238 appendix B, T=59, SHA-1");
assert.equal(hotp(rfcKey, stepAt(59_000), 6), "287082", "the same value, six digits");
assert.equal(hotp(rfcKey, stepAt(1_111_111_109_000), 8), "07081804", "RFC 6238 appendix B, T=1111111109");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The server refuses a code of a step it already accepted. When a fresh code is needed, wait for
// the next 30-second boundary: exactly the time left to it plus 200 ms.
async function stepAfter(usedStep) {
  if (currentStep() <= usedStep) await sleep((usedStep + 1) * 30_000 - Date.now() + 200);
  const step = currentStep();
  assert.ok(step > usedStep);
  return step;
}

// Makes the session's last password confirmation older than the server's re-authentication window.
async function outlastReauthWindow(since) {
  await sleep(Math.max(0, since + REAUTH_WINDOW_MS + 500 - Date.now()));
}


const server = await startServer("bulwark-e2e-2fa-", { BULWARK_REAUTH_WINDOW_SECONDS: String(REAUTH_WINDOW_MS / 1000) });
const { base, outbox } = server;
const browser = await launchBrowser();
const pageErrors = [];
try {
  fs.mkdirSync(screenshots, { recursive: true });
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // Expected refusals (401, 403 reauth_required, 422) show up as console errors; nothing else may.
  page.on("console", (m) => { if (m.type() === "error" && !/status of (401|403|422)/.test(m.text())) pageErrors.push(m.text()); });
  const formError = (scope) => page.locator(`${scope} [data-error-for="_form"]`);

  // Register and confirm through the mailed link.
  await page.goto(base + "/register");
  await page.fill("#email", EMAIL);
  await page.fill("#password", PASSWORD);
  await page.fill("#confirm", PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL("**/check-email");
  const verify = await linkInMail(outbox, "verify-email");
  await page.goto(verify);
  assert.equal(await page.textContent("h1"), "Email confirmed");

  // Sign in without a second factor yet: straight to the dashboard.
  const signIn = async () => {
    await page.goto(base + "/");
    await page.fill("#email", EMAIL);
    await page.fill("#password", PASSWORD);
    await page.click("#password-step button[type=submit]");
  };
  const signOut = async () => {
    await page.click("header >> text=Sign out");
    await page.waitForURL(base + "/");
  };
  await signIn();
  await page.waitForURL("**/dashboard");
  let signedInAt = Date.now();

  // The anti-phishing code: saved, kept across a reload, and at the top of the next mail.
  await page.click("nav >> text=Security");
  await page.waitForURL("**/account/security");
  await page.fill("#anti_phishing_code", ANTI_PHISHING);
  await page.click("text=Save code");
  await page.locator('[data-ok-for="anti-phishing"]').waitFor({ state: "visible" });
  assert.match(await page.textContent('[data-ok-for="anti-phishing"]'), /Saved/);
  await page.reload();
  assert.equal(await page.inputValue("#anti_phishing_code"), ANTI_PHISHING);

  // Turning two-factor sign-in on is a step-up action, and the sign-in is now older than the
  // window: the dialog asks for the password only (two-factor sign-in is off). Cancel first.
  await outlastReauthWindow(signedInAt);
  const dialog = page.locator("dialog#step-up");
  await page.click("text=Turn on two-factor sign-in");
  await dialog.waitFor({ state: "visible" });
  assert.equal(await dialog.locator("#step-up-code").isVisible(), false, "no code field while 2FA is off");
  await dialog.locator("text=Cancel").click();
  await dialog.waitFor({ state: "hidden" });
  // The message is written after the dialog closes: wait for it rather than read at once.
  await page.locator('[data-error-for="totp-setup"]', { hasText: "Cancelled" }).waitFor();
  // Again: a wrong password is refused in the dialog, the right one continues the setup by itself.
  await page.click("text=Turn on two-factor sign-in");
  await dialog.waitFor({ state: "visible" });
  await dialog.locator("#step-up-password").fill("not the password at all");
  await dialog.locator("button[type=submit]").click();
  await dialog.locator('[data-error-for="_form"]').waitFor({ state: "visible" });
  assert.match(await dialog.locator('[data-error-for="_form"]').textContent(), /not right/);
  await dialog.locator("#step-up-password").fill(PASSWORD);
  await dialog.locator("button[type=submit]").click();
  await dialog.waitFor({ state: "hidden" });
  const setup = page.locator("[data-totp-setup]");
  await setup.waitFor({ state: "visible" });

  // The QR code is an image (no SVG markup in the page), the key is grouped in fours and is the
  // one in the otpauth link.
  const qr = setup.locator("img[data-qr]");
  const qrSrc = await qr.getAttribute("src");
  assert.ok(qrSrc.startsWith("data:image/svg+xml;base64,"), qrSrc.slice(0, 40));
  assert.match(Buffer.from(qrSrc.split(",")[1], "base64").toString("utf8"), /^<svg[\s\S]*<\/svg>\s*$/);
  await page.waitForFunction(() => document.querySelector("img[data-qr]").naturalWidth > 0);
  assert.equal(await page.locator("main svg").count(), 0, "the SVG is not injected as markup");
  const shownSecret = (await setup.locator("[data-secret]").textContent()).trim();
  assert.match(shownSecret, /^([A-Z2-7]{4} )+[A-Z2-7]{1,4}$/, "the key in groups of four");
  const secret = shownSecret.replace(/ /g, "");
  const otpauth = new URL(await setup.locator("a[data-otpauth]").getAttribute("href"));
  assert.equal(otpauth.protocol, "otpauth:");
  assert.equal(otpauth.searchParams.get("secret"), secret);
  const key = base32Decode(secret);

  // Confirm with the current code: ten backup codes, shown once.
  const enabledStep = currentStep();
  await page.fill("#confirm_code", hotp(key, enabledStep, 6));
  await setup.locator("button[type=submit]").click();
  const panel = page.locator("[data-backup-codes]");
  await panel.waitFor({ state: "visible" });
  const codes = await panel.locator("[data-codes-list] li").allTextContents();
  assert.equal(codes.length, 10);
  for (const code of codes) assert.match(code, /^[a-z2-7]{5}-[a-z2-7]{5}$/);
  assert.equal(new Set(codes).size, 10);
  assert.equal(await setup.isVisible(), false, "the setup steps are gone");
  assert.equal(await page.locator("[data-totp-off]").isVisible(), false, "so is the explanation for turning it on");
  assert.equal((await page.textContent("[data-totp-pill]")).trim(), "on");

  // Download gives a .txt file with every code; Copy puts them on the clipboard.
  const [download] = await Promise.all([page.waitForEvent("download"), panel.locator("text=Download").click()]);
  assert.equal(download.suggestedFilename(), "bulwark-backup-codes.txt");
  const downloaded = fs.readFileSync(await download.path(), "utf8");
  for (const code of codes) assert.ok(downloaded.includes(code), `${code} in the download`);
  await panel.locator("text=Copy").click();
  await panel.locator('[data-ok-for="copy-backup-codes"]').waitFor({ state: "visible" });
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  for (const code of codes) assert.ok(copied.includes(code), `${code} copied`);

  // The mail about it starts with the anti-phishing code.
  const enabledMail = await mailContaining(outbox, "Two-factor sign-in was turned on");
  assert.ok(enabledMail.includes(`Your anti-phishing code: ${ANTI_PHISHING}`), "anti-phishing code in the mail");

  // "I have stored them" reloads: the page now says two-factor sign-in is on with 10 codes left.
  await panel.locator("text=I have stored them").click();
  await page.waitForLoadState("load");
  await page.locator("text=Make new backup codes").waitFor({ state: "visible" });
  assert.match(await page.textContent("#two-factor"), /10 of 10/);
  assert.equal(await panel.isVisible(), false, "codes are not shown again");
  await page.screenshot({ path: path.join(screenshots, "security-2fa-on.png"), fullPage: true });

  // Signing in now takes a second step. The password is no longer in the form, nor in storage.
  await signOut();
  const secondStep = page.locator("#second-step");
  await signIn();
  await secondStep.waitFor({ state: "visible" });
  assert.equal(await secondStep.locator("h1").textContent(), "Two-factor sign-in");
  assert.equal(await page.locator("#password-step").isVisible(), false);
  assert.equal(await page.getAttribute("#totp_code", "autocomplete"), "one-time-code");
  assert.equal(await page.getAttribute("#totp_code", "inputmode"), "numeric");
  assert.equal(await page.inputValue("#password"), "");
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0, "nothing in storage");
  await page.screenshot({ path: path.join(screenshots, "sign-in-second-step.png") });

  // The confirming code's step is spent; a fresh code needs the next step.
  const signInStep = await stepAfter(enabledStep);
  const signInCode = hotp(key, signInStep, 6);
  await page.fill("#totp_code", signInCode);
  await secondStep.locator("button[type=submit]").click();
  await page.waitForURL("**/dashboard");

  // The same code again, within the same 30-second step: refused as a replay.
  await signOut();
  await signIn();
  await secondStep.waitFor({ state: "visible" });
  await page.fill("#totp_code", signInCode);
  await secondStep.locator("button[type=submit]").click();
  await formError("#second-step").waitFor({ state: "visible" });
  assert.match(await formError("#second-step").textContent(), /already used/);
  assert.equal(currentStep(), signInStep, "the replay was tried within the same step");
  assert.equal(new URL(page.url()).pathname, "/");

  // A backup code works once.
  await page.click("text=Use a backup code instead");
  await page.locator("#backup_code").waitFor({ state: "visible" });
  assert.equal(await page.locator("#totp_code").isVisible(), false);
  await page.fill("#backup_code", codes[0]);
  await secondStep.locator("button[type=submit]").click();
  await page.waitForURL("**/dashboard");
  await signOut();
  await signIn();
  await secondStep.waitFor({ state: "visible" });
  await page.click("text=Use a backup code instead");
  await page.fill("#backup_code", codes[0]);
  await secondStep.locator("button[type=submit]").click();
  await formError("#second-step").waitFor({ state: "visible" });
  assert.match(await formError("#second-step").textContent(), /already used/);
  // "Back" returns to the password form; then sign in with another backup code.
  await secondStep.getByRole("button", { name: "Back", exact: true }).click();
  await page.locator("#password-step").waitFor({ state: "visible" });
  assert.equal(await secondStep.isVisible(), false);
  await page.fill("#password", PASSWORD);
  await page.click("#password-step button[type=submit]");
  await secondStep.waitFor({ state: "visible" });
  await page.click("text=Use a backup code instead");
  await page.fill("#backup_code", codes[1]);
  await secondStep.locator("button[type=submit]").click();
  await page.waitForURL("**/dashboard");
  signedInAt = Date.now();

  // Hide balances: the header toggle is saved on the server, so a reload keeps it.
  const toggle = page.locator('header [data-action="toggle-balances"]');
  assert.equal(await toggle.textContent(), "Balances: shown");
  assert.equal(await toggle.getAttribute("aria-pressed"), "false");
  await toggle.click();
  await page.waitForFunction(() => document.querySelector('[data-action="toggle-balances"]').getAttribute("aria-pressed") === "true");
  assert.equal(await toggle.textContent(), "Balances: hidden");
  await page.reload();
  assert.equal(await toggle.getAttribute("aria-pressed"), "true");
  assert.equal(await toggle.textContent(), "Balances: hidden");
  const me = await page.evaluate(async () => (await fetch("/api/v1/me")).json());
  assert.equal(me.hide_balances, true);

  // New backup codes after the window: the dialog asks for password and code, and the codes
  // appear without another click.
  await page.click("nav >> text=Security");
  await page.waitForURL("**/account/security");
  assert.equal(await toggle.textContent(), "Balances: hidden", "the toggle is on every signed-in page");
  await outlastReauthWindow(signedInAt);
  const reauthStep = await stepAfter(signInStep);
  await page.click("text=Make new backup codes");
  await dialog.waitFor({ state: "visible" });
  assert.equal(await dialog.locator("#step-up-code").isVisible(), true, "a code field while 2FA is on");
  await dialog.locator("#step-up-password").fill(PASSWORD);
  await dialog.locator("#step-up-code").fill(hotp(key, reauthStep, 6));
  await dialog.locator("button[type=submit]").click();
  await dialog.waitFor({ state: "hidden" });
  const reauthAt = Date.now();
  await panel.waitFor({ state: "visible" });
  const newCodes = await panel.locator("[data-codes-list] li").allTextContents();
  assert.equal(newCodes.length, 10);
  assert.ok(newCodes.every((c) => !codes.includes(c)), "all codes are new");

  // Turning it off (also step-up, after the window again): password and a backup code in the
  // form, and another backup code in the dialog.
  await page.click("text=I have stored them");
  await page.waitForLoadState("load");
  await outlastReauthWindow(reauthAt);
  await page.click("summary >> text=Turn off two-factor sign-in");
  await page.fill("#disable_password", PASSWORD);
  await page.fill("#disable_code", newCodes[0]);
  await page.click("form >> button.danger");
  await dialog.waitFor({ state: "visible" });
  await dialog.locator("#step-up-password").fill(PASSWORD);
  await dialog.locator("#step-up-code").fill(newCodes[1]);
  await dialog.locator("button[type=submit]").click();
  await page.locator("text=Turn on two-factor sign-in").waitFor({ state: "visible" });
  assert.equal((await page.textContent("[data-totp-pill]")).trim(), "off");
  const status = await page.evaluate(async () => (await fetch("/api/v1/2fa/status")).json());
  assert.equal(status.totp_enabled, false);

  assert.deepEqual(pageErrors, [], "no script errors (a CSP violation would show here)");
  console.log("e2e: two-factor flow passed in", await browser.version());
} finally {
  await browser.close();
  await server.stop();
}
