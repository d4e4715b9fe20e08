// What every browser test needs: a `bulwark serve` of its own (fresh data dir, free loopback port)
// and headless Chromium.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const bin = process.env.BULWARK_BIN || path.resolve(import.meta.dirname, "../target/debug/bulwark");

// Starts the binary on a fresh data dir with `env` added to the defaults. Resolves once it logs
// the address it listens on. `stop()` resolves once the process is gone and its data dir removed
// (it writes its paper market's state file while shutting down, so removing earlier races it).
export function startServer(prefix, env = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const child = spawn(bin, ["serve"], {
    env: { BULWARK_DATA_DIR: dataDir, BULWARK_BIND: "127.0.0.1:0", BULWARK_LOG: "info", PATH: process.env.PATH, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((done) => child.once("exit", done));
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`bulwark did not start: ${seen}`)), 60_000);
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      const match = seen.match(/address=(127\.0\.0\.1:\d+)/);
      if (match) {
        clearTimeout(timer);
        resolve({
          child,
          base: `http://${match[1]}`,
          dataDir,
          outbox: path.join(dataDir, "outbox"),
          async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill();
            await exited;
            fs.rmSync(dataDir, { recursive: true, force: true });
          },
        });
      }
    });
    child.on("exit", (code) => reject(new Error(`bulwark exited with ${code}: ${seen}`)));
  });
}

// Starts `bulwark exchange-sim` with `args` (a Binance-compatible exchange on loopback; add
// `--bind 127.0.0.1:0` for a free port). Resolves once it prints its base URL.
export function startExchangeSim(args) {
  const child = spawn(bin, ["exchange-sim", ...args], {
    env: { BULWARK_LOG: "info", PATH: process.env.PATH },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let seen = "";
    let started = false;
    const timer = setTimeout(() => { child.kill(); reject(new Error(`exchange-sim did not start: ${seen}`)); }, 30_000);
    child.once("error", reject);
    const exited = new Promise((done) => child.once("exit", done));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exchange-sim exited with ${code}: ${seen}`));
    });
    // Keeps reading after the address is known, so a chatty log never fills the pipe.
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      const match = seen.match(/http:\/\/127\.0\.0\.1:\d+/);
      if (match && !started) {
        started = true;
        clearTimeout(timer);
        resolve({
          child,
          base: match[0],
          // Resolves once the process is gone, so its port can be bound again.
          async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill();
            await exited;
          },
        });
      }
    });
  });
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// The text of the first mail in `outbox` containing `needle` (quoted-printable soft line breaks and
// `=3D` undone), waiting up to 10 s for it to arrive.
export async function mailContaining(outbox, needle) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const files = fs.existsSync(outbox) ? fs.readdirSync(outbox).filter((f) => f.endsWith(".eml")).sort() : [];
    for (const file of files) {
      const text = fs.readFileSync(path.join(outbox, file), "utf8").replace(/=\r?\n/g, "").replace(/=3D/g, "=");
      if (text.includes(needle)) return text;
    }
    if (Date.now() >= deadline) throw new Error(`no mail containing ${needle} in ${outbox}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// The first link to /<kind>?token=... in the outbox's mails.
export async function linkInMail(outbox, kind) {
  const text = await mailContaining(outbox, `/${kind}?token=`);
  return text.match(new RegExp(`http\\S+/${kind}\\?token=[A-Za-z0-9_-]+`))[0];
}

// Registers through the page, confirms through the mailed link and signs in; ends on the dashboard.
export async function signUp(page, base, outbox, email, password) {
  await page.goto(base + "/register");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.fill("#confirm", password);
  await page.click("button[type=submit]");
  await page.waitForURL("**/check-email");
  await page.goto(await linkInMail(outbox, "verify-email"));
  assert.equal(await page.textContent("h1"), "Email confirmed");
  await page.goto(base + "/");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click("#password-step button[type=submit]");
  await page.waitForURL("**/dashboard");
}
