// Bulwark's page script. No inline script anywhere (the CSP forbids it): every form that talks
// to the API carries data-api (and optionally data-hook, see formHooks), and buttons carry
// data-action. Errors are shown next to the field the API names.
"use strict";

// One request. Never throws: a network failure is status 0.
async function send(method, url, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try { res = await fetch(url, init); } catch (_) { return { ok: false, status: 0, data: null }; }
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch (_) { data = null; }
  }
  return { ok: res.ok, status: res.status, data };
}

// Every call from the pages goes through here. A sensitive action answers 403 reauth_required
// when the session has not confirmed the password recently: the step-up dialog asks for it, and
// the request is sent once more, so the person does not have to click again.
async function api(method, url, body) {
  const first = await send(method, url, body);
  if (first.status !== 403 || !first.data || first.data.error !== "reauth_required") return first;
  if (!(await stepUp())) {
    return { ok: false, status: 403, data: { message: "Cancelled: this needs your password again first." } };
  }
  return send(method, url, body);
}

function showError(scope, field, message) {
  const slot = scope.querySelector(`[data-error-for="${field}"]`) || scope.querySelector('[data-error-for="_form"]');
  if (slot) slot.textContent = message;
  const input = scope.querySelector(`[name="${field}"]`);
  if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
}

function clearMessages(scope) {
  scope.querySelectorAll("[data-error-for], [data-ok], [data-ok-for]").forEach((el) => { el.textContent = ""; });
  scope.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
}

function describe(result) {
  if (result.data && result.data.message) return result.data.message;
  if (result.status === 0) return "Bulwark could not be reached. Check your connection.";
  return "Something went wrong. Try again.";
}

// ---- Sign-in in two steps -------------------------------------------------------------------

// Between the two sign-in steps the email and password wait here, in memory only (never in
// storage), to be sent again with the code. Forgotten on success and on "Back".
let pendingLogin = null;

function showSecondStep(second) {
  document.getElementById("password-step").hidden = second;
  document.getElementById("second-step").hidden = !second;
}

// Shows the input for one kind of code ("totp" or "backup"); the other is disabled, so it is
// neither sent nor required.
function chooseFactor(kind) {
  const step = document.getElementById("second-step");
  clearMessages(step);
  step.querySelectorAll("[data-factor]").forEach((box) => {
    const input = box.querySelector("input");
    box.hidden = box.dataset.factor !== kind;
    input.disabled = box.hidden;
    input.value = "";
  });
  step.querySelector('[data-action="switch-factor"]').textContent =
    kind === "totp" ? "Use a backup code instead" : "Use the code from your app instead";
  step.querySelector(`[data-factor="${kind}"] input`).focus();
}

// ---- Backup codes, shown once ---------------------------------------------------------------

let shownCodes = [];

function showBackupCodes(codes) {
  shownCodes = codes;
  const panel = document.querySelector("[data-backup-codes]");
  clearMessages(panel);
  panel.querySelector("[data-codes-list]").replaceChildren(...codes.map((text) => {
    const item = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = text;
    item.append(code);
    return item;
  }));
  panel.hidden = false;
  panel.scrollIntoView({ block: "nearest" });
}

function backupCodesText() {
  const who = document.querySelector(".who .email");
  return [
    `Bulwark backup codes${who ? ` for ${who.textContent}` : ""}, made ${new Date().toLocaleString()}.`,
    "Each code signs you in once when your authenticator app is not at hand.",
    "",
    ...shownCodes,
    "",
  ].join("\n");
}

// btoa takes Latin-1 only, so the text goes through its UTF-8 bytes.
function base64(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

// ---- Forms ----------------------------------------------------------------------------------

// What a form's data-hook adds to the generic handling: check() may stop the sending (after
// showing why), body() adds fields to the request, sending() runs once the body is built (before
// any step-up dialog), ok() replaces the default success handling, error() may claim an error
// (returning true) before it is shown next to a field.
const formHooks = {
  login: {
    // Right password and two-factor sign-in on: ask for the code on its own screen.
    error(form, result, body) {
      if (!result.data || result.data.error !== "second_factor_required") return false;
      pendingLogin = { email: body.email, password: body.password };
      form.elements.password.value = "";
      document.querySelector("[data-signing-in-as]").textContent = ` (${body.email})`;
      showSecondStep(true);
      chooseFactor("totp");
      return true;
    },
  },
  "second-factor": {
    body() { return pendingLogin || {}; },
    ok() {
      pendingLogin = null;
      window.location.assign("/dashboard");
    },
  },
  "totp-confirmed": {
    ok(form, result) {
      document.querySelector("[data-totp-setup]").hidden = true;
      document.querySelector("[data-totp-off]").hidden = true;
      const pill = document.querySelector("[data-totp-pill]");
      pill.textContent = "on";
      pill.classList.add("ok");
      // From now on a step-up needs a code as well.
      if (stepUpDialog) stepUpDialog.dataset.totpEnabled = "true";
      showBackupCodes(result.data.backup_codes);
    },
  },
  "anti-phishing": {
    ok(form, result) {
      const code = result.data.anti_phishing_code;
      form.elements.anti_phishing_code.value = code || "";
      form.querySelector('[data-ok-for="anti-phishing"]').textContent = code
        ? "Saved. Every mail from Bulwark now starts with your code."
        : "Removed. Mails from Bulwark no longer carry a code.";
    },
  },
  reload: {
    ok() { window.location.reload(); },
  },
  "connect-account": {
    body(form) { return { waive_ip_restriction: form.elements.waive_ip_restriction.checked }; },
    // Secrets are write-only: the fields are emptied as soon as the request holds them, whatever
    // the outcome, and the previous refusal goes away.
    sending(form) {
      clearSecretFields(form);
      form.querySelector("[data-refusal]").hidden = true;
    },
    ok(form, result) {
      form.reset();
      chooseKeyType(form, "hmac");
      showAccount(result.data);
      form.querySelector('[data-ok-for="connect-account"]').textContent =
        `Connected “${result.data.name}”. The key can trade and cannot withdraw or move funds.`;
    },
    // A refusal (the key can withdraw, cannot trade, ...) is the main thing to read: it says what
    // to change on the exchange. Errors about one field stay next to that field.
    error(form, result) {
      if (result.data && result.data.field) return false;
      const box = form.querySelector("[data-refusal]");
      box.querySelector("[data-refusal-text]").textContent = describeKeyError(result);
      box.hidden = false;
      box.focus();
      return true;
    },
  },
  // A paper account: no key, only a name and the made-up balances it starts with.
  "open-paper": {
    check(form) {
      const read = readBalances(form);
      if (read.field) showError(form, read.field, read.message);
      return !read.field;
    },
    body(form) { return { exchange: paperVenue(), balances: readBalances(form).balances }; },
    ok(form, result) {
      const start = describeBalances(readBalances(form).balances);
      form.reset();
      showAccount(result.data);
      form.querySelector('[data-ok-for="open-paper"]').replaceChildren(
        `Opened “${result.data.name}” with ${start}. `,
        el("a", { href: tradeHref(result.data.id) }, "Start trading →"));
    },
  },
};

document.querySelectorAll("form[data-api]").forEach((form) => {
  const hook = formHooks[form.dataset.hook] || {};
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages(form);
    for (const input of form.querySelectorAll("[data-same-as]")) {
      const other = form.querySelector(`[name="${input.dataset.sameAs}"]`);
      if (other && other.value !== input.value) {
        showError(form, input.name, "The two passwords are not the same.");
        return;
      }
    }
    if (hook.check && !hook.check(form)) return;
    const body = {};
    for (const [name, value] of new FormData(form).entries()) {
      if (!name.startsWith("_")) body[name] = value;
    }
    if (hook.body) Object.assign(body, hook.body(form));
    if (hook.sending) hook.sending(form);
    const button = form.querySelector('button[type="submit"]');
    if (button) button.disabled = true;
    const result = await api(form.dataset.method || "POST", form.dataset.api, body);
    if (button) button.disabled = false;
    if (result.ok) {
      if (hook.ok) { hook.ok(form, result); return; }
      if (form.dataset.next) { window.location.assign(form.dataset.next); return; }
      if (form.hasAttribute("data-reset")) form.reset();
      const ok = form.querySelector("[data-ok]");
      if (ok) ok.textContent = form.dataset.success || "Done.";
      return;
    }
    if (hook.error && hook.error(form, result, body)) return;
    showError(form, (result.data && result.data.field) || "_form", describe(result));
  });
});

// ---- Step-up dialog -------------------------------------------------------------------------

const stepUpDialog = document.getElementById("step-up");
// Everyone waiting for the open dialog: more than one action may need it at once.
let stepUpWaiters = [];

// Asks for the password (and a code when two-factor sign-in is on) and re-authenticates the
// session. Resolves true after a successful /auth/reauth, false when the person cancels.
function stepUp() {
  if (!stepUpDialog) return Promise.resolve(false);
  return new Promise((resolve) => {
    stepUpWaiters.push(resolve);
    if (stepUpDialog.open) return;
    const form = stepUpDialog.querySelector("form");
    form.reset();
    clearMessages(form);
    const withCode = stepUpDialog.dataset.totpEnabled === "true";
    stepUpDialog.querySelectorAll("[data-totp-only]").forEach((el) => { el.hidden = !withCode; });
    form.elements.code.disabled = !withCode;
    stepUpDialog.returnValue = "";
    stepUpDialog.showModal();
    form.elements.password.focus();
  });
}

if (stepUpDialog) {
  const form = stepUpDialog.querySelector("form");
  // Confirm (after a 204), Cancel and Escape all end here.
  stepUpDialog.addEventListener("close", () => {
    const confirmed = stepUpDialog.returnValue === "confirmed";
    const waiters = stepUpWaiters;
    stepUpWaiters = [];
    waiters.forEach((resolve) => resolve(confirmed));
  });
  stepUpDialog.querySelector("[data-step-up-cancel]").addEventListener("click", () => stepUpDialog.close("cancelled"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages(form);
    const body = { password: form.elements.password.value };
    const code = form.elements.code;
    if (!code.disabled) {
      // Six digits are a code from the app; anything else is tried as a backup code.
      const value = code.value.trim();
      body[/^[0-9]{6}$/.test(value.replace(/\s/g, "")) ? "totp_code" : "backup_code"] = value;
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    const result = await send("POST", "/api/v1/auth/reauth", body);
    button.disabled = false;
    if (result.ok) {
      form.reset();
      stepUpDialog.close("confirmed");
      return;
    }
    // The API names totp_code or backup_code; here both are the one "code" input.
    const field = result.data && result.data.field;
    showError(form, !field ? "_form" : field === "password" ? "password" : "code", describe(result));
  });
}

// ---- Buttons --------------------------------------------------------------------------------

function reflectBalances(button, hidden) {
  button.setAttribute("aria-pressed", String(hidden));
  button.textContent = `Balances: ${hidden ? "hidden" : "shown"}`;
}

const actions = {
  async logout() {
    await api("POST", "/api/v1/auth/logout");
    window.location.assign("/");
  },
  async "logout-all"() {
    if (!window.confirm("Sign out of every browser, this one included?")) return;
    const result = await api("POST", "/api/v1/auth/logout-all");
    if (result.ok) window.location.assign("/");
    else showError(document, "sessions", describe(result));
  },
  async "revoke-session"(button) {
    const result = await api("DELETE", `/api/v1/sessions/${encodeURIComponent(button.dataset.id)}`);
    if (result.ok) window.location.reload();
    else showError(document, "sessions", describe(result));
  },
  async "resend-verification"() {
    const result = await api("POST", "/api/v1/auth/verify-email/resend");
    const ok = document.querySelector('[data-ok-for="resend-verification"]');
    if (result.ok) { if (ok) ok.textContent = "A new link is on its way."; }
    else showError(document, "resend-verification", describe(result));
  },
  "switch-factor"() {
    const usingApp = !document.querySelector('[data-factor="totp"]').hidden;
    chooseFactor(usingApp ? "backup" : "totp");
  },
  "second-factor-back"() {
    pendingLogin = null;
    showSecondStep(false);
    chooseFactor("totp");
    document.getElementById("password").focus();
  },
  async "toggle-balances"(button) {
    const hide = button.getAttribute("aria-pressed") !== "true";
    const result = await api("PATCH", "/api/v1/me/preferences", { hide_balances: hide });
    if (result.ok) {
      reflectBalances(button, result.data.hide_balances);
      // Open balance lists follow the new setting; a "show amounts" on one of them ends here.
      document.querySelectorAll("[data-balances]:not([hidden])").forEach((panel) => {
        panel.dataset.reveal = "false";
        loadBalances(panel);
      });
      if (trade) {
        trade.reveal = false;
        reflectReveal();
        refreshAmounts();
      }
    } else showError(document, "toggle-balances", describe(result));
  },
  async "totp-setup"(button) {
    const result = await api("POST", "/api/v1/2fa/totp/setup");
    if (!result.ok) { showError(document, "totp-setup", describe(result)); return; }
    const { secret, otpauth_uri: uri, qr_svg: svg, expires_in_seconds: expires } = result.data;
    const setup = document.querySelector("[data-totp-setup]");
    // An image, not markup: the SVG never becomes part of the page's DOM.
    setup.querySelector("[data-qr]").src = `data:image/svg+xml;base64,${base64(svg)}`;
    // Groups of four are easier to type into an app by hand.
    setup.querySelector("[data-secret]").textContent = secret.replace(/(.{4})(?!$)/g, "$1 ");
    if (uri.startsWith("otpauth://")) setup.querySelector("[data-otpauth]").href = uri;
    setup.querySelector("[data-setup-expiry]").textContent =
      `This setup expires in ${Math.round(expires / 60)} minutes.`;
    button.hidden = true;
    setup.hidden = false;
    setup.querySelector('input[name="code"]').focus();
  },
  async "regenerate-backup-codes"() {
    const result = await api("POST", "/api/v1/2fa/backup-codes/regenerate");
    if (result.ok) showBackupCodes(result.data.backup_codes);
    else showError(document, "regenerate-backup-codes", describe(result));
  },
  async "copy-backup-codes"() {
    try {
      await navigator.clipboard.writeText(backupCodesText());
      document.querySelector('[data-ok-for="copy-backup-codes"]').textContent = "Copied.";
    } catch (_) {
      showError(document, "copy-backup-codes", "The browser did not allow copying. Select the codes and copy them by hand.");
    }
  },
  "download-backup-codes"() {
    const url = URL.createObjectURL(new Blob([backupCodesText()], { type: "text/plain" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = "bulwark-backup-codes.txt";
    document.body.append(link);
    link.click();
    link.remove();
    // Revoking at once can cancel the download in some browsers.
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  },
  reload() {
    window.location.reload();
  },
  async "recheck-account"(button) {
    const item = button.closest("[data-account]");
    clearMessages(item);
    const result = await api("POST", `${ACCOUNTS_API}/${encodeURIComponent(button.dataset.id)}/recheck`);
    if (!result.ok) { showError(item, "account", describeKeyError(result)); return; }
    const fresh = showAccount(result.data);
    const note = fresh.querySelector('[data-ok-for="account"]');
    const paused = result.data.status === "paused";
    note.classList.toggle("neutral", paused);
    note.textContent = paused
      ? "Checked just now: the account stays paused until the key is fixed, see above."
      : "Checked just now: the key can trade and cannot withdraw or move funds.";
    fresh.querySelector('[data-action="recheck-account"]').focus();
  },
  async "account-balances"(button) {
    const panel = document.getElementById(button.getAttribute("aria-controls"));
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    panel.hidden = !open;
    panel.dataset.reveal = "false";
    if (open) await loadBalances(panel);
  },
  async "reveal-balances"(button) {
    const panel = button.closest("[data-balances]");
    panel.dataset.reveal = String(panel.dataset.reveal !== "true");
    await loadBalances(panel);
    const again = panel.querySelector('[data-action="reveal-balances"]');
    if (again) again.focus();
  },
  async "reset-paper"(button) {
    const item = button.closest("[data-account]");
    clearMessages(item);
    const done = await askReset(button.dataset.id, item.dataset.name);
    button.disabled = false;
    button.focus();
    if (!done) return;
    const note = item.querySelector('[data-ok-for="account"]');
    note.classList.remove("neutral");
    note.textContent = `“${item.dataset.name}” starts over with ${done.start}. Its open orders were canceled; the trade history stays.`;
    const panel = item.querySelector("[data-balances]:not([hidden])");
    if (panel) await loadBalances(panel);
  },
  async "remove-account"(button) {
    const item = button.closest("[data-account]");
    clearMessages(item);
    const name = item.dataset.name;
    const paper = item.hasAttribute("data-paper");
    const question = paper
      ? `Remove the paper account “${name}”? Its made-up balances and its trade history are gone for good.`
      : `Remove “${name}” from Bulwark? Its sealed secret is destroyed. The key itself stays on the exchange until you delete it there.`;
    if (!window.confirm(question)) return;
    const result = await api("DELETE", `${ACCOUNTS_API}/${encodeURIComponent(button.dataset.id)}`);
    if (!result.ok) { showError(item, "account", describe(result)); return; }
    item.remove();
    reflectAccountCount(paper
      ? `Removed the paper account “${name}”.`
      : `Removed “${name}”. If no other service uses its key, delete the key on the exchange as well.`);
    document.getElementById("accounts-title").focus();
  },
};

function bindAction(button) {
  button.addEventListener("click", async () => {
    const name = button.dataset.action;
    const action = actions[name];
    if (!action) return;
    // Messages from this action's previous run go away.
    document.querySelectorAll(`[data-error-for="${name}"], [data-ok-for="${name}"]`).forEach((el) => { el.textContent = ""; });
    button.disabled = true;
    try { await action(button); } finally { button.disabled = false; }
  });
}

document.querySelectorAll("[data-action]").forEach(bindAction);

// Times arrive as RFC 3339 in UTC; show them in the reader's own time zone.
function localTime(el) {
  const when = new Date(el.getAttribute("datetime"));
  if (!Number.isNaN(when.getTime())) el.textContent = when.toLocaleString();
}

document.querySelectorAll("time[datetime]").forEach(localTime);

// ---- Exchange accounts ----------------------------------------------------------------------

// The list is drawn here from the API's answers (GET on load, and each connect, check and
// removal), which never hold a secret: only the key's last four characters.
const ACCOUNTS_API = "/api/v1/exchange-accounts";

// An element with attributes and children; strings become text, never markup.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

function pill(text, tone, title) {
  return el("span", { class: tone ? `pill ${tone}` : "pill", title }, text);
}

function timeEl(rfc3339) {
  const node = el("time", { datetime: rfc3339 }, rfc3339);
  localTime(node);
  return node;
}

// The venue's name as the connect form's menu spells it.
function venueName(code) {
  if (code === paperVenue()) return "Paper trading";
  const option = document.querySelector(`select[name="exchange"] option[value="${CSS.escape(code)}"]`);
  return option ? option.textContent : code;
}

function pauseReason(code) {
  const text = code && document.querySelector(`[data-reason-texts] [data-reason="${CSS.escape(code)}"]`);
  return text ? text.textContent : "Bulwark stopped using this key. Check again to see why.";
}

function describeKeyError(result) {
  if (result.data && result.data.error === "vault_sealed") {
    return "This server’s vault is sealed (its root key is missing), so it cannot store or use exchange keys right now. Ask your operator.";
  }
  return describe(result);
}

// What every account's list item ends with: its result messages and its (hidden) balances panel.
function accountFooter(account, panelId) {
  return [
    el("p", { class: "form-ok", "data-ok-for": "account", role: "status" }),
    el("p", { class: "form-error", "data-error-for": "account", role: "alert" }),
    el("div", { class: "balances", id: panelId, "data-balances": String(account.id), hidden: true,
      "aria-label": `Balances of ${account.name}` }),
  ];
}

function accountItem(account) {
  if (account.exchange === paperVenue()) return paperItem(account);
  const id = String(account.id);
  const perms = account.permissions || {};
  const paused = account.status === "paused";
  const headingId = `account-${id}-name`;
  const panelId = `account-${id}-balances`;
  const button = (action, text, extra) => el("button", { type: "button", "data-action": action, "data-id": id, ...extra }, text);
  const badges = el("span", { class: "badges" },
    perms.spot_trading ? pill("Trade", "ok", "Can place and cancel spot orders") : pill("Cannot trade", "danger"),
    perms.withdrawals && pill("Withdraw", "danger", "Can withdraw funds"),
    perms.transfers && pill("Transfer", "danger", "Can move funds between accounts"),
    perms.ip_restricted
      ? pill("IP restricted", "ok", "Works only from the IP addresses listed on the exchange")
      : pill("Any IP", "warn", "Works from any IP address"),
    !perms.ip_restricted && account.ip_restriction_waived && el("span", { class: "help" }, "waived by you"),
    !perms.withdrawals && !perms.transfers && el("span", { class: "help" }, "cannot withdraw or move funds"));
  const item = el("li", { class: paused ? "account paused" : "account", id: `account-${id}`,
    "data-account": id, "data-name": account.name, "aria-labelledby": headingId },
    el("div", { class: "account-head" },
      el("h3", { id: headingId }, account.name),
      paused ? pill("Paused", "danger") : pill("Active", "ok")),
    paused && el("div", { class: "flag" },
      el("p", {}, el("strong", {}, "Paused: Bulwark does not trade with this key.")),
      el("p", {}, pauseReason(account.status_reason))),
    el("dl", { class: "facts" },
      el("dt", {}, "Exchange"), el("dd", {}, venueName(account.exchange)),
      el("dt", {}, "API key"), el("dd", {},
        el("code", {}, account.api_key_hint), ` · ${account.key_type === "ed25519" ? "Ed25519" : "HMAC"}`),
      el("dt", {}, "Permissions"), el("dd", {}, badges),
      el("dt", {}, "Last checked"), el("dd", {}, account.last_checked_at ? timeEl(account.last_checked_at) : "not yet"),
      el("dt", {}, "Connected"), el("dd", {}, timeEl(account.created_at))),
    el("div", { class: "actions" },
      button("recheck-account", "Check again"),
      button("account-balances", "Balances", { "aria-expanded": "false", "aria-controls": panelId }),
      button("remove-account", "Remove", { class: "danger" })),
    ...accountFooter(account, panelId));
  item.querySelectorAll("[data-action]").forEach(bindAction);
  return item;
}

// Adds the account to the list, or redraws it in place. Returns its list item.
function showAccount(account) {
  const list = document.querySelector("[data-accounts]");
  const item = accountItem(account);
  const old = document.getElementById(item.id);
  if (old) {
    const wasOpen = old.querySelector("[data-balances]:not([hidden])");
    old.replaceWith(item);
    if (wasOpen) item.querySelector('[data-action="account-balances"]').click();
  } else {
    list.append(item);
  }
  reflectAccountCount();
  return item;
}

function reflectAccountCount(message) {
  const status = document.querySelector("[data-accounts-status]");
  const count = document.querySelector("[data-accounts]").children.length;
  status.textContent = message || (count === 0 ? "No accounts yet. Connect a key with the form below." : "");
}

async function loadAccounts() {
  const result = await api("GET", ACCOUNTS_API);
  if (!result.ok || !Array.isArray(result.data)) {
    document.querySelector("[data-accounts-status]").textContent = "";
    showError(document, "accounts", describe(result));
    return;
  }
  document.querySelector("[data-accounts]").replaceChildren(...result.data.map(accountItem));
  reflectAccountCount();
}

// Amounts come as strings (exact decimals) or "***" while balances are hidden; they are shown as
// they come. panel.dataset.reveal asks for the amounts anyway, for this page view only.
async function loadBalances(panel) {
  const reveal = panel.dataset.reveal === "true";
  const run = String(Number(panel.dataset.run || 0) + 1);
  panel.dataset.run = run;
  panel.setAttribute("aria-busy", "true");
  panel.replaceChildren(el("p", { class: "help" }, "Asking the exchange…"));
  const query = reveal ? "?reveal=true" : "";
  const result = await api("GET", `${ACCOUNTS_API}/${encodeURIComponent(panel.dataset.balances)}/balances${query}`);
  if (panel.dataset.run !== run) return; // a newer request took over
  panel.removeAttribute("aria-busy");
  if (!result.ok || !Array.isArray(result.data)) {
    panel.replaceChildren(el("p", { class: "form-error", role: "alert" }, describeKeyError(result)));
    return;
  }
  const masked = result.data.some((b) => b.free === "***" || b.locked === "***");
  const parts = [];
  if (result.data.length === 0) {
    parts.push(el("p", { class: "help" }, "This account holds nothing yet."));
  } else {
    parts.push(el("table", {},
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Asset"),
        el("th", { scope: "col", class: "num" }, "Available"), el("th", { scope: "col", class: "num" }, "In orders"))),
      el("tbody", {}, ...result.data.map((b) => el("tr", {},
        el("th", { scope: "row" }, b.asset), el("td", { class: "num" }, amountText(b.free)), el("td", { class: "num" }, amountText(b.locked)))))));
  }
  if (masked || reveal) {
    parts.push(el("p", { class: "help" }, masked
      ? "Amounts are hidden because “Balances: hidden” is on."
      : "Shown here for now; other pages keep amounts hidden."),
    el("button", { type: "button", class: "toggle", "data-action": "reveal-balances", "aria-pressed": String(reveal) },
      reveal ? "Hide amounts" : "Show amounts"));
  }
  panel.replaceChildren(...parts);
  panel.querySelectorAll("[data-action]").forEach(bindAction);
}

function clearSecretFields(form) {
  form.querySelectorAll('[name="api_secret"], [name="private_key"]').forEach((field) => { field.value = ""; });
}

// HMAC keys come with a secret, Ed25519 keys with a private key: only the chosen field is shown
// and sent (a disabled field is left out of the request).
function chooseKeyType(form, kind) {
  form.querySelectorAll("[data-key-type]").forEach((box) => {
    const field = box.querySelector("input, textarea");
    box.hidden = box.dataset.keyType !== kind;
    field.disabled = box.hidden;
    field.value = "";
  });
  form.querySelectorAll('[name="_key_type"]').forEach((radio) => { radio.checked = radio.value === kind; });
}

const connectForm = document.querySelector("form[data-connect]");
if (connectForm) {
  connectForm.querySelectorAll('[name="_key_type"]').forEach((radio) => {
    radio.addEventListener("change", () => { if (radio.checked) chooseKeyType(connectForm, radio.value); });
  });
  // Leaving the page (or it going into the back-forward cache) takes pasted secrets with it.
  window.addEventListener("pagehide", () => clearSecretFields(connectForm));
  loadAccounts();
}

// ---- Paper accounts -------------------------------------------------------------------------

// The venue paper accounts are listed under, as the page names it.
function paperVenue() {
  const list = document.querySelector("[data-accounts]");
  return (list && list.dataset.paperVenue) || "paper";
}

function tradeHref(id) {
  return `/exchange-accounts/${encodeURIComponent(String(id))}`;
}

// A paper account in the list: marked PAPER, with its own accent, no key facts (its key is
// Bulwark's own), and Trade and Reset besides Balances and Remove.
function paperItem(account) {
  const id = String(account.id);
  const paused = account.status === "paused";
  const headingId = `account-${id}-name`;
  const panelId = `account-${id}-balances`;
  const button = (action, text, extra) => el("button", { type: "button", "data-action": action, "data-id": id, ...extra }, text);
  const item = el("li", { class: paused ? "account paper paused" : "account paper", id: `account-${id}`,
    "data-account": id, "data-name": account.name, "data-paper": true, "aria-labelledby": headingId },
    el("div", { class: "account-head" },
      el("h3", { id: headingId }, account.name),
      pill("PAPER", "paper", "Made-up money in Bulwark’s own simulated market"),
      paused ? pill("Paused", "danger") : pill("Active", "ok")),
    paused && el("div", { class: "flag" },
      el("p", {}, el("strong", {}, "Paused: Bulwark does not trade with this account.")),
      el("p", {}, pauseReason(account.status_reason))),
    el("p", { class: "help" }, "Made-up money in Bulwark’s own market. Orders here never reach a real exchange."),
    el("dl", { class: "facts" },
      el("dt", {}, "Market"), el("dd", {}, "Bulwark’s paper market"),
      el("dt", {}, "Opened"), el("dd", {}, timeEl(account.created_at))),
    el("div", { class: "actions" },
      el("a", { class: "button primary", href: tradeHref(id), "aria-label": `Trade on ${account.name}` }, "Trade"),
      button("account-balances", "Balances", { "aria-expanded": "false", "aria-controls": panelId }),
      button("reset-paper", "Reset…"),
      button("remove-account", "Remove", { class: "danger" })),
    ...accountFooter(account, panelId));
  item.querySelectorAll("[data-action]").forEach(bindAction);
  return item;
}

// Amounts arrive as exact decimal strings; thousands are grouped for reading, nothing is rounded.
function grouped(text) {
  const match = /^(-?)(\d+)(\.\d+)?$/.exec(String(text));
  if (!match) return String(text);
  return `${match[1]}${match[2].replace(/\B(?=(\d{3})+(?!\d))/g, ",")}${match[3] || ""}`;
}

// An amount of money as shown: grouped, or the mask while balances are hidden.
function amountText(text) {
  return text === "***" ? el("span", { class: "masked", title: "Hidden: “Balances: hidden” is on" }, "***") : grouped(text);
}

// What a person types as an amount ("10000", "10,000", "2 500.5", ".5") as the API's decimal
// string, or null. A comma only groups thousands: "10,5" is refused rather than guessed.
function readAmount(text) {
  let raw = String(text).trim().replace(/[\s_\u00a0\u202f]/g, "");
  if (/^\d{1,3}(,\d{3})+(\.\d*)?$/.test(raw)) raw = raw.replace(/,/g, "");
  if (raw.startsWith(".")) raw = `0${raw}`;
  if (raw.endsWith(".")) raw = raw.slice(0, -1);
  return /^\d+(\.\d+)?$/.test(raw) ? raw : null;
}

function isZero(decimal) {
  return /^0*(\.0*)?$/.test(decimal);
}

// A paper account's starting balances from a form's "Starting USDT" (_usdt) and "Other assets"
// (balances: "BTC 0.5, ETH 2", also "BTC=0.5" or "0.5 BTC"). Returns { balances } or, for the
// first problem, { field, message }.
function readBalances(form) {
  const balances = {};
  const usdt = form.elements._usdt.value.trim();
  if (usdt !== "") {
    const amount = readAmount(usdt);
    if (amount === null) return { field: "_usdt", message: "Write an amount, such as 10000 or 2500.50." };
    balances.USDT = amount;
  }
  const asset = /^[A-Za-z][A-Za-z0-9]{0,19}$/;
  for (const part of form.elements.balances.value.split(/[,;\n]+/).map((p) => p.trim()).filter(Boolean)) {
    const words = part.split(/[\s:=]+/).filter(Boolean);
    let pair = null;
    if (words.length === 2 && asset.test(words[0]) && readAmount(words[1]) !== null) pair = [words[0], readAmount(words[1])];
    else if (words.length === 2 && asset.test(words[1]) && readAmount(words[0]) !== null) pair = [words[1], readAmount(words[0])];
    if (!pair) return { field: "balances", message: `“${part}” is not an asset with an amount. Write them as BTC 0.5, ETH 2.` };
    const name = pair[0].toUpperCase();
    if (name in balances) {
      return { field: "balances", message: name === "USDT" && usdt !== "" ? "USDT has its own field above." : `${name} is given twice.` };
    }
    balances[name] = pair[1];
  }
  if (Object.keys(balances).length === 0) return { field: "_usdt", message: "Give at least one starting amount." };
  if (Object.keys(balances).length > 20) return { field: "balances", message: "A paper account starts with 20 assets at most." };
  return { balances };
}

// "10,000 USDT and 0.5 BTC"
function describeBalances(balances) {
  const parts = Object.entries(balances).map(([name, amount]) => `${grouped(amount)} ${name}`);
  return parts.length > 1 ? `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}` : parts[0];
}

// ---- Reset dialog ---------------------------------------------------------------------------

const resetDialog = document.getElementById("paper-reset");
// The reset the open dialog is for: { id, resolve, done }.
let resetting = null;

// Asks whether to start the paper account over, and with which balances, and does it. Resolves
// { account, start } once reset, null when the person keeps the account as it is.
function askReset(id, name) {
  if (!resetDialog) return Promise.resolve(null);
  return new Promise((resolve) => {
    const form = resetDialog.querySelector("form");
    form.reset();
    clearMessages(form);
    resetDialog.querySelector("[data-reset-name]").textContent = `“${name}”`;
    resetting = { id, resolve, done: null };
    resetDialog.showModal();
    form.elements._usdt.focus();
  });
}

if (resetDialog) {
  const form = resetDialog.querySelector("form");
  // The reset button, Cancel and Escape all end here.
  resetDialog.addEventListener("close", () => {
    const ended = resetting;
    resetting = null;
    if (ended) ended.resolve(ended.done);
  });
  resetDialog.querySelector("[data-reset-cancel]").addEventListener("click", () => resetDialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages(form);
    if (!resetting) return;
    const read = readBalances(form);
    if (read.field) { showError(form, read.field, read.message); return; }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    const result = await api("POST", `${ACCOUNTS_API}/${encodeURIComponent(resetting.id)}/reset`, { balances: read.balances });
    button.disabled = false;
    if (!result.ok) {
      showError(form, (result.data && result.data.field) || "_form", describe(result));
      return;
    }
    resetting.done = { account: result.data, start: describeBalances(read.balances) };
    resetDialog.close();
  });
}

// ---- Trading on a paper account -------------------------------------------------------------

// The page of one paper account: a market picked from its markets, the server-drawn chart, the
// order form, balances, open orders and trade history. Amounts follow "Balances: hidden", with a
// "Show amounts" for this page view only, like the balance lists.
const tradeRoot = document.querySelector("[data-trade]");
const trade = tradeRoot && {
  root: tradeRoot,
  id: tradeRoot.dataset.trade,
  name: tradeRoot.dataset.accountName,
  markets: new Map(),
  pair: null,
  reveal: false,
  // Per list, the number of its latest request: a slower, older answer is dropped.
  runs: {},
  timer: null,
  balances: [],
};
const CHART_REFRESH_MS = 15_000;

function tradeUrl(path, params) {
  const query = new URLSearchParams(params || {}).toString();
  return `${ACCOUNTS_API}/${encodeURIComponent(trade.id)}${path}${query ? `?${query}` : ""}`;
}

function part(selector) {
  return trade.root.querySelector(selector);
}

function currentMarket() {
  return trade.markets.get(trade.pair) || { base: "", quote: "", pair: trade.pair };
}

function newRun(name) {
  trade.runs[name] = (trade.runs[name] || 0) + 1;
  return trade.runs[name];
}

function hidingBalances() {
  const toggle = document.querySelector('header [data-action="toggle-balances"]');
  return Boolean(toggle) && toggle.getAttribute("aria-pressed") === "true";
}

function amountParams(extra) {
  return { ...extra, ...(trade.reveal ? { reveal: "true" } : {}) };
}

// A GET for the trade page. A session that ended stops the refreshing and says so once.
async function tradeGet(path, params) {
  const result = await api("GET", tradeUrl(path, params));
  if (result.status === 401) {
    stopRefreshing();
    part("[data-trade-error]").textContent = "Your session has ended. Sign in again to go on trading.";
  }
  return result;
}

function say(selector, text) {
  const ok = part(selector);
  if (ok) ok.textContent = text;
}

function clearTradeMessages() {
  ["[data-trade-ok]", "[data-trade-error]", "[data-orders-ok]", "[data-orders-error]", "[data-order-ok]"].forEach((s) => say(s, ""));
  part("[data-order-refusal]").hidden = true;
}

// Draws a list from an answer unless it is the same as the one shown, which keeps the focus and
// the reading position while the page refreshes itself. A control that had the focus gets it
// back (by its data-focus-key); if it is gone, the section's heading takes it.
function draw(box, result, render) {
  const fine = result.ok && Array.isArray(result.data);
  const sig = fine ? JSON.stringify(result.data) : `error ${result.status} ${describe(result)}`;
  if (box.dataset.sig === sig) return;
  box.dataset.sig = sig;
  const active = document.activeElement;
  const key = active && box.contains(active) ? active.dataset.focusKey : null;
  box.removeAttribute("aria-busy");
  box.replaceChildren(fine ? render(result.data) : el("p", { class: "form-error", role: "alert" }, describeKeyError(result)));
  if (key === undefined || key === null) return;
  const again = box.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)
    || box.querySelector("[data-focus-key]")
    || box.closest("section").querySelector("h2[tabindex]");
  if (again) again.focus();
}

function table(headings, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, ...headings.map(([text, cls]) => el("th", { scope: "col", class: cls }, text)))),
    el("tbody", {}, ...rows));
}

function sidePill(side) {
  return pill(side === "buy" ? "Buy" : "Sell", side === "buy" ? "buy" : "sell");
}

// ---- The lists

async function loadTradeBalances() {
  const box = part("[data-trade-balances]");
  const run = newRun("balances");
  const result = await tradeGet("/balances", amountParams());
  if (trade.runs.balances !== run) return;
  if (result.ok && Array.isArray(result.data)) trade.balances = result.data;
  reflectAvailable();
  draw(box, result, (rows) => {
    if (rows.length === 0) return el("p", { class: "help" }, "This account holds nothing. Reset it to start over.");
    const { base, quote } = currentMarket();
    return table([["Asset"], ["Available", "num"], ["In orders", "num"]], rows.map((b) => el("tr", { class: b.asset === base || b.asset === quote ? "in-pair" : null },
      el("th", { scope: "row" }, b.asset), el("td", { class: "num" }, amountText(b.free)), el("td", { class: "num" }, amountText(b.locked)))));
  });
}

// "You have 9,900 USDT and 0.00166 BTC available." under the order form.
function reflectAvailable() {
  const { base, quote } = currentMarket();
  const free = (asset) => {
    const found = trade.balances.find((b) => b.asset === asset);
    return found ? found.free : "0";
  };
  const line = part("[data-available]");
  if (!line || !base) return;
  line.replaceChildren("Available: ", amountText(free(quote)), ` ${quote} and `, amountText(free(base)), ` ${base}.`);
}

const STATUS_WORDS = { new: "open", partially_filled: "partly filled", filled: "filled", canceled: "canceled", expired: "expired", rejected: "rejected" };

async function loadOrders() {
  const box = part("[data-trade-orders]");
  const run = newRun("orders");
  const pair = trade.pair;
  const result = await tradeGet("/orders", amountParams({ pair }));
  if (trade.runs.orders !== run) return;
  draw(box, result, (orders) => {
    if (orders.length === 0) return el("p", { class: "help" }, "No open orders. A limit order waits here until the price reaches it.");
    const { base, quote } = currentMarket();
    return table([["Time"], ["Side"], [`Price (${quote})`, "num"], [`Quantity (${base})`, "num"], ["Filled", "num"], ["Status"], [el("span", { class: "visually-hidden" }, "Action")]],
      orders.map((order) => {
        const cancel = el("button", { type: "button", class: "danger small", "data-focus-key": `cancel-${order.id}`,
          "aria-label": `Cancel the ${order.side} order at ${grouped(order.price)} ${quote}` }, "Cancel");
        cancel.addEventListener("click", () => cancelOrder(order, cancel));
        return el("tr", { "data-order": order.id },
          el("td", {}, timeEl(order.updated_at)), el("td", {}, sidePill(order.side)),
          el("td", { class: "num" }, grouped(order.price)), el("td", { class: "num" }, amountText(order.quantity)),
          el("td", { class: "num" }, amountText(order.executed_quantity)),
          el("td", {}, STATUS_WORDS[order.status] || order.status), el("td", { class: "num" }, cancel));
      }));
  });
}

async function cancelOrder(order, button) {
  clearTradeMessages();
  const hadFocus = document.activeElement === button;
  button.disabled = true;
  const { quote } = currentMarket();
  const result = await api("DELETE", tradeUrl(`/orders/${encodeURIComponent(order.id)}`, { pair: order.pair }));
  if (result.ok) {
    say("[data-orders-ok]", `Canceled the ${order.side} order at ${grouped(order.price)} ${quote}.`);
  } else {
    button.disabled = false;
    say("[data-orders-error]", result.status === 404
      ? "This order is no longer open: it filled or was canceled meanwhile."
      : describeKeyError(result));
  }
  await Promise.all([loadOrders(), loadTradeBalances(), loadTrades()]);
  // The keyboard stays in the list: on the next order's Cancel, or on the heading once it is empty.
  if (hadFocus && document.activeElement !== button) {
    const next = button.isConnected ? button : part("[data-trade-orders] [data-focus-key]") || part("#orders-title");
    next.focus();
  }
}

async function loadTrades() {
  const box = part("[data-trade-history]");
  const run = newRun("trades");
  const pair = trade.pair;
  const result = await tradeGet("/trades", amountParams({ pair }));
  if (trade.runs.trades !== run) return;
  draw(box, result, (trades) => {
    if (trades.length === 0) return el("p", { class: "help" }, "No trades on this market yet. Filled orders show here, newest first.");
    const { base, quote } = currentMarket();
    const shown = trades.slice(0, 200);
    return el("div", {},
      table([["Time"], ["Side"], [`Price (${quote})`, "num"], [`Quantity (${base})`, "num"], [`Value (${quote})`, "num"], ["Fee", "num"]],
        shown.map((t) => el("tr", { "data-trade-row": t.id },
          el("td", {}, timeEl(t.time)), el("td", {}, sidePill(t.side)),
          el("td", { class: "num" }, grouped(t.price)), el("td", { class: "num" }, amountText(t.quantity)),
          el("td", { class: "num" }, amountText(t.quote_quantity)),
          el("td", { class: "num", title: t.maker ? "Maker: your order was waiting in the book" : "Taker: your order met a waiting one" },
            amountText(t.fee), ` ${t.fee_asset}`)))),
      trades.length > shown.length && el("p", { class: "help" }, `The latest ${shown.length} of ${trades.length} trades.`));
  });
}

async function loadChart() {
  const run = newRun("chart");
  const img = part("[data-chart]");
  const note = part("[data-chart-note]");
  // Fetched rather than pointed at: the API refuses unknown query parameters, so a cache-busting
  // one cannot be added, and an <img> shown the same address again keeps its first picture.
  let svg = null;
  let problem = null;
  try {
    const res = await fetch(tradeUrl("/chart.svg", { pair: trade.pair, limit: "60" }), { credentials: "same-origin", cache: "no-store" });
    if (res.ok && (res.headers.get("content-type") || "").startsWith("image/svg+xml")) {
      svg = await res.text();
    } else {
      let data = null;
      try { data = await res.json(); } catch (_) { data = null; }
      problem = describeKeyError({ ok: false, status: res.status, data });
    }
  } catch (_) {
    problem = describe({ ok: false, status: 0, data: null });
  }
  if (trade.runs.chart !== run) return;
  if (svg !== null) {
    // An image, not markup: the SVG never becomes part of the page's DOM.
    img.src = `data:image/svg+xml;base64,${base64(svg)}`;
    note.classList.remove("form-error");
    note.textContent = `One-minute candles; the dashed line is the last price. Updated ${new Date().toLocaleTimeString()}, again every 15 seconds.`;
  } else {
    note.classList.add("form-error");
    note.textContent = `The chart could not be loaded: ${problem}`;
  }
}

function refreshAmounts() {
  return Promise.all([loadTradeBalances(), loadOrders(), loadTrades()]);
}

function refreshTrade() {
  return Promise.all([loadChart(), refreshAmounts()]);
}

function stopRefreshing() {
  if (trade.timer) clearInterval(trade.timer);
  trade.timer = null;
}

// ---- Market choice, the reveal control, the order form

function reflectReveal() {
  const hiding = hidingBalances();
  if (!hiding) trade.reveal = false;
  const button = part("[data-trade-reveal]");
  button.hidden = !hiding;
  button.setAttribute("aria-pressed", String(trade.reveal));
  button.textContent = trade.reveal ? "Hide amounts" : "Show amounts";
  const note = part("[data-reveal-note]");
  note.hidden = !hiding;
  note.textContent = trade.reveal
    ? "Shown on this page for now; “Balances: hidden” stays on."
    : "Amounts are hidden (“Balances: hidden”).";
}

function choosePair(pair) {
  trade.pair = pair;
  const market = currentMarket();
  trade.root.querySelectorAll("[data-pair-label]").forEach((n) => { n.textContent = `${market.base}/${market.quote}`; });
  trade.root.querySelectorAll("[data-base-name]").forEach((n) => { n.textContent = market.base; });
  trade.root.querySelectorAll("[data-quote-name]").forEach((n) => { n.textContent = market.quote; });
  const rules = [];
  if (market.min_notional) rules.push(`smallest order ${grouped(market.min_notional)} ${market.quote}`);
  if (market.step_size) rules.push(`quantity in steps of ${market.step_size} ${market.base}`);
  if (market.tick_size) rules.push(`price in steps of ${market.tick_size} ${market.quote}`);
  part("[data-market-rules]").textContent = rules.length ? `This market’s rules: ${rules.join(", ")}. Amounts are rounded down to the step.` : "";
  const img = part("[data-chart]");
  img.alt = `${market.base}/${market.quote} price, one-minute candles`;
  img.removeAttribute("src");
  const url = new URL(window.location.href);
  url.searchParams.set("pair", pair);
  window.history.replaceState(null, "", url);
  for (const box of trade.root.querySelectorAll("[data-trade-orders], [data-trade-history]")) {
    box.dataset.sig = "";
    box.setAttribute("aria-busy", "true");
    box.replaceChildren(el("p", { class: "help" }, "Loading…"));
  }
  part("[data-trade-balances]").dataset.sig = "";
  reflectOrderForm();
  reflectAvailable();
  refreshTrade();
}

const AMOUNT_HELP = {
  "buy quote": (m) => `How much ${m.quote} to spend on ${m.base}.`,
  "buy base": (m) => `How much ${m.base} to buy.`,
  "sell quote": (m) => `How much ${m.quote} to get for the ${m.base} you sell.`,
  "sell base": (m) => `How much ${m.base} to sell.`,
};

function reflectOrderForm() {
  const form = part("[data-order-form]");
  const market = currentMarket();
  const side = form.elements.side.value;
  const type = form.elements.type.value;
  const amountIn = form.elements._amount_in.value || "quote";
  form.querySelectorAll("[data-for-type]").forEach((box) => {
    box.hidden = box.dataset.forType !== type;
    box.querySelectorAll("input").forEach((input) => { input.disabled = box.hidden; });
  });
  part("[data-amount-unit]").textContent = amountIn === "quote" ? market.quote : market.base;
  part("[data-amount-help]").textContent = AMOUNT_HELP[`${side} ${amountIn}`](market);
  part("[data-type-help]").textContent = type === "market"
    ? "Fills at once at the market’s price."
    : "Waits in the open orders until the market reaches your price.";
  part("[data-price-help]").textContent = side === "buy"
    ? "A buy fills at this price or lower."
    : "A sell fills at this price or higher.";
  const submit = part("[data-order-submit]");
  submit.textContent = `${side === "buy" ? "Buy" : "Sell"} ${market.base}`;
  submit.classList.toggle("buy", side === "buy");
  submit.classList.toggle("sell", side === "sell");
}

// Exact sums of decimal strings (fees), so nothing is rounded that the API did not round.
function addDecimals(a, b) {
  const scaleOf = (text) => (text.split(".")[1] || "").length;
  const scale = Math.max(scaleOf(a), scaleOf(b));
  const units = (text) => BigInt(text.replace(".", "") + "0".repeat(scale - scaleOf(text)));
  const digits = (units(a) + units(b)).toString().padStart(scale + 1, "0");
  if (scale === 0) return digits;
  return `${digits.slice(0, -scale)}.${digits.slice(-scale)}`.replace(/0+$/, "").replace(/\.$/, "");
}

// What became of an order just placed, in a sentence.
function describeOrder(order) {
  const market = trade.markets.get(order.pair) || currentMarket();
  const { base, quote } = market;
  const hidden = hidingBalances() && !trade.reveal;
  const amount = (text) => (hidden ? "***" : grouped(text));
  const prices = [...new Set(order.fills.map((f) => f.price))];
  let price = prices.length === 1 ? grouped(prices[0]) : null;
  if (!price && Number(order.executed_quantity) > 0) {
    const decimals = ((market.tick_size || "0.01").split(".")[1] || "").length;
    price = `an average of ${grouped((Number(order.executed_quote) / Number(order.executed_quantity)).toFixed(decimals))}`;
  }
  const fees = {};
  for (const fill of order.fills) fees[fill.fee_asset] = fees[fill.fee_asset] ? addDecimals(fees[fill.fee_asset], fill.fee) : fill.fee;
  const feeText = Object.entries(fees).map(([asset, fee]) => `${amount(fee)} ${asset}`).join(" and ") || "none";
  const did = order.side === "buy" ? "Bought" : "Sold";
  const executed = !isZero(order.executed_quantity);
  if (order.status === "filled") {
    return `${did} ${amount(order.executed_quantity)} ${base} for ${amount(order.executed_quote)} ${quote} at ${price} ${quote}. Fee: ${feeText}.`;
  }
  if (order.status === "new") {
    return `Limit ${order.side} placed: ${amount(order.quantity)} ${base} at ${grouped(order.price)} ${quote}. It waits in the open orders until the market reaches that price.`;
  }
  if (order.status === "partially_filled") {
    return `Partly filled: ${amount(order.executed_quantity)} of ${amount(order.quantity)} ${base} at ${price} ${quote}; the rest waits in the open orders. Fee: ${feeText}.`;
  }
  const status = STATUS_WORDS[order.status] || order.status;
  return executed
    ? `${did} ${amount(order.executed_quantity)} of ${amount(order.quantity)} ${base} at ${price} ${quote}; the rest ${status}. Fee: ${feeText}.`
    : `The order ended ${status} without a fill.`;
}

// The API's field names, as the form's inputs.
function orderField(field, type) {
  if (field === "quote_quantity") return "amount";
  if (field === "quantity") return type === "market" ? "amount" : "quantity";
  if (field === "price") return "price";
  return "_form";
}

async function placeOrder(form) {
  clearMessages(form);
  clearTradeMessages();
  const side = form.elements.side.value;
  const type = form.elements.type.value;
  const body = { pair: trade.pair, side, type };
  const positive = (name, example) => {
    const value = readAmount(form.elements[name].value);
    if (value === null || isZero(value)) {
      showError(form, name, `Write a positive number, such as ${example}.`);
      return null;
    }
    return value;
  };
  if (type === "market") {
    const amountIn = form.elements._amount_in.value;
    const amount = positive("amount", amountIn === "quote" ? "100" : "0.01");
    if (amount === null) return;
    body[amountIn === "quote" ? "quote_quantity" : "quantity"] = amount;
  } else {
    const quantity = positive("quantity", "0.01");
    if (quantity === null) return;
    const price = positive("price", "25000");
    if (price === null) return;
    Object.assign(body, { quantity, price });
  }
  const submit = part("[data-order-submit]");
  submit.disabled = true;
  const result = await api("POST", tradeUrl("/orders"), body);
  submit.disabled = false;
  if (document.activeElement === document.body || document.activeElement === null) submit.focus();
  if (result.ok && result.data) {
    say("[data-order-ok]", describeOrder(result.data));
    ["amount", "quantity"].forEach((name) => { form.elements[name].value = ""; });
    await refreshAmounts();
    return;
  }
  const data = result.data || {};
  if (data.error === "invalid_input" && data.field && orderField(data.field, type) !== "_form") {
    showError(form, orderField(data.field, type), describe(result));
    return;
  }
  // The market's rules or the venue's refusal, word for word.
  part("[data-order-refusal-text]").textContent = describeKeyError(result);
  part("[data-order-refusal]").hidden = false;
}

async function startTrading() {
  const select = part("[data-trade-pair]");
  const form = part("[data-order-form]");
  form.addEventListener("change", reflectOrderForm);
  form.addEventListener("submit", (event) => { event.preventDefault(); placeOrder(form); });
  select.addEventListener("change", () => { clearTradeMessages(); choosePair(select.value); });
  const reveal = part("[data-trade-reveal]");
  reveal.addEventListener("click", async () => {
    trade.reveal = !trade.reveal;
    reflectReveal();
    await refreshAmounts();
  });
  const reset = part("[data-trade-reset]");
  reset.addEventListener("click", async () => {
    clearTradeMessages();
    const done = await askReset(trade.id, trade.name);
    reset.focus();
    if (!done) return;
    say("[data-trade-ok]", `“${trade.name}” starts over with ${done.start}. Its open orders were canceled; the trade history stays.`);
    await refreshAmounts();
  });
  reflectReveal();

  const result = await tradeGet("/markets");
  if (!result.ok || !Array.isArray(result.data) || result.data.length === 0) {
    part("[data-trade-error]").textContent = result.ok ? "The paper market lists no markets right now." : describeKeyError(result);
    select.replaceChildren(el("option", {}, "No markets"));
    return;
  }
  trade.markets = new Map(result.data.map((m) => [m.pair, m]));
  select.replaceChildren(...result.data.map((m) => el("option", { value: m.pair }, `${m.base} / ${m.quote}`)));
  const wanted = new URLSearchParams(window.location.search).get("pair");
  const first = [wanted, "USDT_BTC", result.data[0].pair].find((pair) => trade.markets.has(pair));
  select.value = first;
  select.disabled = false;
  choosePair(first);
  // Prices move every minute: the chart and the lists follow while the page is in view.
  trade.timer = setInterval(() => { if (!document.hidden) refreshTrade(); }, CHART_REFRESH_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden && trade.timer) refreshTrade(); });
}

if (trade) startTrading();
