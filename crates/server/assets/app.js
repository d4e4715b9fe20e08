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
      if (dca) {
        dca.reveal = false;
        reflectDcaReveal();
        if (dca.refresh) dca.refresh();
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

// An SVG chart from the API as text (`svg`), or why it could not be had (`problem`). Fetched
// rather than pointed at by an <img>: the API refuses unknown query parameters, so a cache-busting
// one cannot be added, and an <img> shown the same address again keeps its first picture.
async function fetchChartSvg(url) {
  try {
    const res = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (res.ok && (res.headers.get("content-type") || "").startsWith("image/svg+xml")) {
      return { svg: await res.text(), problem: null };
    }
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    return { svg: null, problem: describeKeyError({ ok: false, status: res.status, data }) };
  } catch (_) {
    return { svg: null, problem: describe({ ok: false, status: 0, data: null }) };
  }
}

async function loadChart() {
  const run = newRun("chart");
  const img = part("[data-chart]");
  const note = part("[data-chart-note]");
  const { svg, problem } = await fetchChartSvg(tradeUrl("/chart.svg", { pair: trade.pair, limit: "60" }));
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

// ---- Bots and deals -------------------------------------------------------------------------

// The pages of DCA bots: the list with the form for a new bot and its live plan preview, one bot,
// the deals, and one deal with its orders and chart. Amounts follow "Balances: hidden", with a
// "Show amounts" for this page view only, as on a paper account's page.
const dcaRoot = document.querySelector("[data-dca]");
const dca = dcaRoot && {
  root: dcaRoot,
  kind: dcaRoot.dataset.dca,
  reveal: false,
  // Redraws the page's amounts (after the reveal or the header toggle changed).
  refresh: null,
  // Per request kind, the number of its latest run: a slower, older answer is dropped.
  runs: {},
};
const BOTS_API = "/api/v1/bots";
const DEALS_API = "/api/v1/deals";
const PREVIEW_DELAY_MS = 350;
const DEAL_REFRESH_MS = 3_000;
const IDLE_REFRESH_MS = 15_000;

function dcaPart(selector) {
  return dca.root.querySelector(selector);
}

function dcaRun(name) {
  dca.runs[name] = (dca.runs[name] || 0) + 1;
  return dca.runs[name];
}

// "?bot_id=…&reveal=true": the page's parameters and the reveal when asked for.
function revealQuery(params) {
  const all = { ...(params || {}), ...(dca.reveal ? { reveal: "true" } : {}) };
  const query = new URLSearchParams(all).toString();
  return query ? `?${query}` : "";
}

function reflectDcaReveal() {
  const hiding = hidingBalances();
  if (!hiding) dca.reveal = false;
  const button = dcaPart("[data-dca-reveal]");
  if (!button) return;
  button.hidden = !hiding;
  button.setAttribute("aria-pressed", String(dca.reveal));
  button.textContent = dca.reveal ? "Hide amounts" : "Show amounts";
  const note = dcaPart("[data-dca-reveal-note]");
  note.hidden = !hiding;
  note.textContent = dca.reveal
    ? "Shown on this page for now; “Balances: hidden” stays on."
    : "Amounts are hidden (“Balances: hidden”).";
}

function bindDcaReveal() {
  const button = dcaPart("[data-dca-reveal]");
  if (!button) return;
  button.addEventListener("click", async () => {
    dca.reveal = !dca.reveal;
    reflectDcaReveal();
    if (dca.refresh) await dca.refresh();
  });
  reflectDcaReveal();
}

// "USDT_BTC" (3Commas: quote first) as its parts and as people read it, "BTC/USDT".
function pairParts(pair) {
  const [quote, ...rest] = String(pair || "").split("_");
  return { quote: quote || "", base: rest.join("_") };
}

function marketName(pair) {
  const { base, quote } = pairParts(pair);
  return base ? `${base}/${quote}` : String(pair);
}

// What a person types as pairs: "USDT_BTC, USDT_ETH", also "BTC/USDT".
function readPairs(text) {
  return String(text).split(/[\s,;]+/).map((p) => p.trim().toUpperCase()).filter(Boolean).map((p) => {
    const slash = /^([A-Z0-9]+)\/([A-Z0-9]+)$/.exec(p);
    return slash ? `${slash[2]}_${slash[1]}` : p;
  });
}

function accountVenue(code) {
  return { binance: "Binance", paper: "Paper trading" }[code] || code;
}

// A deal's status by its 3Commas name, in words, with the pill's tone.
const DEAL_STATUS = {
  created: ["Recorded: the base order is about to be placed.", "ok"],
  base_order_placed: ["The base order is on its way or waiting on the book.", "ok"],
  bought: ["The base order filled: the safety orders and the take profit are working.", "ok"],
  cancel_pending: ["Canceling: the deal’s open orders are being canceled.", "warn"],
  canceled: ["Canceled: its orders were canceled, and what it bought stays in the account.", ""],
  completed: ["Closed by its take profit.", "ok"],
  failed: ["The base order could not be placed.", "danger"],
  panic_sell_pending: ["Closing at market: the deal’s open orders are being canceled.", "warn"],
  panic_sell_order_placed: ["Closing at market: the closing order is sent.", "warn"],
  panic_sold: ["Closed at market.", "warn"],
};
const FINISHED = new Set(["canceled", "completed", "failed", "panic_sold"]);
const CLOSE_REASONS = {
  take_profit: "take profit reached",
  stop_loss: "stop loss",
  closed_at_market: "closed at market",
  canceled: "canceled",
  failed: "the base order failed",
};
// Why Bulwark disabled a bot: the order guard's codes and the rest, in a few words.
const DISABLED_REASONS = {
  pair_not_allowed: "the order guard refused an order on a pair outside the account’s allowlist",
  order_too_large: "the order guard refused an order larger than the account’s limit",
  daily_volume_exceeded: "the order guard refused an order beyond the account’s daily volume",
  too_many_orders: "the order guard refused an order beyond the account’s orders per minute",
  price_too_far: "the order guard refused an order priced too far from the market",
  illiquid_pair: "the order guard refused an order on a pair that trades too little",
  no_reference_price: "the order guard had no market price to check an order against",
  kill_switch: "the kill switch stopped every bot",
};

function statusPill(status) {
  const [words, tone] = DEAL_STATUS[status] || ["", ""];
  const node = pill(status, tone, words || undefined);
  node.dataset.status = status;
  return node;
}

function botStatePill(bot) {
  return bot.enabled ? pill("Enabled", "ok") : pill("Disabled", bot.disabled_reason ? "danger" : null);
}

function disabledReasonText(code) {
  return DISABLED_REASONS[code] || "Bulwark stopped it";
}

// Exact sums of signed decimal strings (profits), so nothing is rounded that the API did not
// round. "***" (hidden) in, "***" out.
function sumDecimals(values) {
  if (values.some((v) => v === "***")) return "***";
  const parsed = values.map((v) => /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(v)));
  if (parsed.some((m) => !m)) return null;
  const scale = Math.max(0, ...parsed.map((m) => (m[3] || "").length));
  let total = 0n;
  for (const m of parsed) {
    const units = BigInt(m[2] + (m[3] || "").padEnd(scale, "0"));
    total += m[1] ? -units : units;
  }
  const negative = total < 0n;
  const digits = (negative ? -total : total).toString().padStart(scale + 1, "0");
  let text = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  if (scale) text = text.replace(/0+$/, "").replace(/\.$/, "");
  return (negative && text !== "0" ? "-" : "") + text;
}

// A profit as shown: grouped with its asset, green or red, or the mask.
function profitEl(value, asset) {
  if (value === null || value === undefined) return el("span", { class: "help" }, "—");
  const tone = value === "***" || isZero(value.replace(/^-/, "")) ? "" : value.startsWith("-") ? "loss" : "gain";
  return el("span", { class: tone || null }, amountText(value), asset ? ` ${asset}` : "");
}

// YYYY-MM-DD of an RFC 3339 time, in the reader's time zone.
function localDay(rfc3339) {
  const when = new Date(rfc3339);
  const pad = (n) => String(n).padStart(2, "0");
  return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}`;
}

// Finished deals' profit by the day they closed (and by quote asset, which cannot be added up).
function profitDaysTable(deals) {
  const days = new Map();
  for (const deal of deals) {
    if (!FINISHED.has(deal.status) || !deal.closed_at || deal.profit_quote === null || deal.profit_quote === undefined) continue;
    const day = localDay(deal.closed_at);
    const { quote } = pairParts(deal.pair);
    const key = `${day} ${quote}`;
    const entry = days.get(key) || { day, quote, profits: [] };
    entry.profits.push(deal.profit_quote);
    days.set(key, entry);
  }
  if (days.size === 0) return el("p", { class: "help" }, "No finished deals yet.");
  const rows = [...days.values()].sort((a, b) => (a.day < b.day ? 1 : a.day > b.day ? -1 : a.quote.localeCompare(b.quote)));
  return table([["Day"], ["Deals closed", "num"], ["Profit", "num"]], rows.map((entry) => el("tr", { "data-day": entry.day },
    el("td", {}, entry.day),
    el("td", { class: "num" }, String(entry.profits.length)),
    el("td", { class: "num" }, profitEl(sumDecimals(entry.profits) ?? "?", entry.quote)))));
}

// Replaces a box's content unless the answer is the one already shown (keeps the reading position
// and the focus while a page refreshes itself).
function drawOnce(box, sig, render) {
  if (box.dataset.sig === sig) return false;
  box.dataset.sig = sig;
  box.replaceChildren(...[].concat(render()).filter(Boolean));
  return true;
}

// The deals table of the bot page and the deals page; `bots` (id → name) adds the bot column.
function dealsTable(deals, bots, empty) {
  if (deals.length === 0) return el("p", { class: "help" }, empty || "No deals yet.");
  const headings = [["Started"], ...(bots ? [["Bot"]] : []), ["Pair"], ["Status"], ["Close reason"], ["Profit", "num"], ["Closed"]];
  return table(headings, deals.map((deal) => {
    const { quote } = pairParts(deal.pair);
    return el("tr", { "data-deal-row": deal.id },
      el("td", {}, timeEl(deal.created_at)),
      bots && el("td", {}, el("a", { href: `/bots/${encodeURIComponent(deal.bot_id)}` }, bots.get(deal.bot_id) || "a bot")),
      el("td", {}, el("a", { href: `/deals/${encodeURIComponent(deal.id)}`, "aria-label": `Deal on ${marketName(deal.pair)}, ${deal.status}` }, marketName(deal.pair))),
      el("td", {}, statusPill(deal.status)),
      el("td", {}, deal.close_reason ? CLOSE_REASONS[deal.close_reason] || deal.close_reason : ""),
      el("td", { class: "num" }, profitEl(deal.profit_quote, quote)),
      el("td", {}, deal.closed_at ? timeEl(deal.closed_at) : ""));
  }));
}

// Schedules `load` again and again, sooner while something moves, while the page is in view.
function keepRefreshing(load, busy) {
  let timer = null;
  const next = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (!document.hidden) await load();
      next();
    }, busy() ? DEAL_REFRESH_MS : IDLE_REFRESH_MS);
  };
  document.addEventListener("visibilitychange", () => { if (!document.hidden) { load(); next(); } });
  next();
}

// ---- The bots page: the list and the form for a new bot

const INTEGER_SETTINGS = ["max_safety_orders", "active_safety_orders_count", "stop_loss_timeout_in_seconds", "cooldown", "max_active_deals"];
const REQUIRED_SETTINGS = ["base_order_volume", "safety_order_volume", "max_safety_orders", "safety_order_step_percentage"];
const OPTIONAL_SETTINGS = ["active_safety_orders_count", "martingale_step_coefficient", "martingale_volume_coefficient",
  "stop_loss_percentage", "cooldown", "max_active_deals"];
const CHOSEN_SETTINGS = ["base_order_volume_type", "safety_order_volume_type", "take_profit_type", "strategy", "start_order_type", "stop_loss_type"];

// A typed number as the API's decimal string; anything else as typed, so the API names the field.
function typedNumber(input) {
  const raw = input.value.trim();
  return readAmount(raw) ?? raw;
}

// The form's DCA settings under their 3Commas names. A value that is not a number is sent as typed,
// so the API names the field in its answer. A signal bot's leave out the ladder (LADDER_SETTINGS) and
// the start condition, which the API refuses for it, and its take profit when the field is empty.
function botSettings(form) {
  const body = {};
  const signal = botKind(form) === "signal";
  const own = (name) => !signal || !LADDER_SETTINGS.includes(name);
  const read = (name) => {
    const raw = form.elements[name].value.trim();
    if (INTEGER_SETTINGS.includes(name)) return /^\d+$/.test(raw) ? Number(raw) : raw;
    return typedNumber(form.elements[name]);
  };
  for (const name of REQUIRED_SETTINGS) if (own(name)) body[name] = read(name);
  for (const name of OPTIONAL_SETTINGS) if (own(name) && form.elements[name].value.trim() !== "") body[name] = read(name);
  for (const name of CHOSEN_SETTINGS) if (own(name)) body[name] = form.elements[name].value;
  // With steps, the last step's profit is the target: take_profit is left out.
  if (form.elements.use_take_profit_steps.checked) {
    body.take_profit_steps = shownSteps(form).map((row) => ({
      amount_percentage: typedNumber(row.querySelector('[name="amount_percentage"]')),
      profit_percentage: typedNumber(row.querySelector('[name="profit_percentage"]')),
    }));
  } else if (!signal || form.elements.take_profit.value.trim() !== "") {
    body.take_profit = read("take_profit");
  }
  if (form.elements.trailing_enabled.checked) {
    body.trailing_enabled = true;
    body.trailing_deviation = read("trailing_deviation");
  }
  if (!signal) body.strategy_list = [{ strategy: form.elements.strategy_list.value }];
  if (form.elements.stop_loss_timeout_enabled.checked) {
    body.stop_loss_timeout_enabled = true;
    body.stop_loss_timeout_in_seconds = read("stop_loss_timeout_in_seconds");
  }
  if (form.elements.tsl_enabled.checked) body.tsl_enabled = true;
  const breakeven = form.elements.sl_to_breakeven_enabled;
  if (breakeven.checked && !breakeven.disabled) body.sl_to_breakeven_enabled = true;
  return { ...body, ...webhookSettings(form, false) };
}

// ---- Webhook settings: the new-bot form and the bot page's settings form

// The address allowlist as typed: one entry a line (commas and spaces separate too).
function readAllowlist(text) {
  return String(text).split(/[\s,;]+/).map((entry) => entry.trim()).filter(Boolean);
}

// The form's webhook settings under their API names. An empty field is left out when a bot is
// created, and sent as null when it is edited (PATCH with null removes a setting). A value that is
// not a whole number is sent as typed, so the API names the field. Signed mode is sent only when it
// changes (true when created with it): the server checks that the secret can sign when it is turned
// on, and a bot whose secret the kill switch revoked must still take its other settings.
function webhookSettings(form, editing) {
  const body = {};
  const list = readAllowlist(form.elements.webhook_ip_allowlist.value);
  if (list.length > 0) body.webhook_ip_allowlist = list;
  else if (editing) body.webhook_ip_allowlist = null;
  const lag = form.elements.webhook_max_lag_seconds.value.trim().replace(/[\s,_]/g, "");
  if (lag !== "") body.webhook_max_lag_seconds = /^\d+$/.test(lag) ? Number(lag) : lag;
  else if (editing) body.webhook_max_lag_seconds = null;
  const signed = form.elements.webhook_require_signature.checked;
  const wasSigned = editing && form.dataset.requireSignature === "true";
  if (signed !== wasSigned) body.webhook_require_signature = signed;
  return body;
}

// The stored webhook settings back in the form's fields.
function fillWebhookFields(form, settings) {
  const list = Array.isArray(settings.webhook_ip_allowlist) ? settings.webhook_ip_allowlist : [];
  form.elements.webhook_ip_allowlist.value = list.join("\n");
  const lag = settings.webhook_max_lag_seconds;
  form.elements.webhook_max_lag_seconds.value = lag === undefined || lag === null ? "" : String(lag);
  const signed = settings.webhook_require_signature === true;
  form.elements.webhook_require_signature.checked = signed;
  form.dataset.requireSignature = String(signed);
}

// "Add TradingView's addresses": the preset `tradingview` joins the list once.
function bindTradingViewPreset(form) {
  form.querySelector("[data-add-tradingview]").addEventListener("click", () => {
    const area = form.elements.webhook_ip_allowlist;
    const list = readAllowlist(area.value);
    if (!list.some((entry) => entry.toLowerCase() === "tradingview")) {
      area.value = [...list, "tradingview"].join("\n");
      area.dispatchEvent(new Event("input", { bubbles: true }));
    }
    area.focus();
  });
}

// The take-profit step rows: all four, and those in use (the others are hidden).
function stepRows(form) {
  return [...form.querySelectorAll("[data-tp-step]")];
}

function shownSteps(form) {
  return stepRows(form).filter((row) => !row.hidden);
}

// "50 % at +1 %, 50 % at +2 %": take-profit steps as people read them.
function stepsText(steps) {
  return steps.map((s) => `${grouped(String(s.amount_percentage))} % at +${grouped(String(s.profit_percentage))} %`).join(", ");
}

// What the exit settings allow: the steps' rows and their total, take_profit (unused with steps),
// the trailing deviation, and "move to breakeven" (two steps or more).
function reflectExits(form) {
  const steps = form.elements.use_take_profit_steps.checked;
  const rows = stepRows(form);
  const shown = rows.filter((row) => !row.hidden);
  form.querySelector("[data-tp-steps]").hidden = !steps;
  for (const row of rows) {
    row.querySelectorAll("input").forEach((input) => { input.disabled = !steps || row.hidden; });
    row.querySelector("[data-remove-step]").disabled = shown.length <= 1;
  }
  form.querySelector("[data-add-step]").disabled = shown.length >= rows.length;
  form.elements.take_profit.disabled = steps;
  form.querySelector("[data-tp-help]").hidden = !steps;
  const described = [botKind(form) === "signal" && "bot-tp-signal-help", steps && "bot-tp-help"].filter(Boolean);
  if (described.length > 0) form.elements.take_profit.setAttribute("aria-describedby", described.join(" "));
  else form.elements.take_profit.removeAttribute("aria-describedby");
  const amounts = shown.map((row) => readAmount(row.querySelector('[name="amount_percentage"]').value));
  const total = amounts.every((a) => a !== null) ? sumDecimals(amounts) : null;
  form.querySelector("[data-steps-total]").textContent = total === null
    ? "Give each step its share, such as 50."
    : total === "100" ? "The shares add up to 100 %." : `The shares add up to ${total} %; they must make 100 %.`;
  const breakeven = form.elements.sl_to_breakeven_enabled;
  breakeven.disabled = !steps || shown.length < 2;
  if (breakeven.disabled) breakeven.checked = false;
  form.elements.trailing_deviation.disabled = !form.elements.trailing_enabled.checked;
}

// One more step row (the first hidden one), its share what the others leave.
function addStep(form) {
  const next = stepRows(form).find((row) => row.hidden);
  if (!next) return;
  const amounts = shownSteps(form).map((row) => readAmount(row.querySelector('[name="amount_percentage"]').value));
  const left = amounts.every((a) => a !== null) ? sumDecimals(["100", ...amounts.map((a) => `-${a}`)]) : null;
  next.querySelectorAll("input").forEach((input) => { input.value = ""; });
  if (left && !left.startsWith("-") && !isZero(left)) next.querySelector('[name="amount_percentage"]').value = left;
  next.hidden = false;
  reflectExits(form);
  next.querySelector('[name="amount_percentage"]').focus();
  schedulePreview(0);
}

// Removes a step: the rows below move up one, so the steps stay numbered 1, 2, ...
function removeStep(form, row) {
  const shown = shownSteps(form);
  const at = shown.indexOf(row);
  if (at < 0 || shown.length <= 1) return;
  const inputs = (r) => [...r.querySelectorAll("input")];
  for (let i = at; i < shown.length - 1; i += 1) {
    inputs(shown[i]).forEach((input, k) => { input.value = inputs(shown[i + 1])[k].value; });
  }
  const last = shown[shown.length - 1];
  inputs(last).forEach((input) => { input.value = ""; input.removeAttribute("aria-invalid"); });
  last.hidden = true;
  reflectExits(form);
  const button = row.hidden ? form.querySelector("[data-add-step]") : row.querySelector("[data-remove-step]");
  (button.disabled ? form.querySelector("[data-add-step]") : button).focus();
  schedulePreview(0);
}

// The form's field for an API error's `field`.
function botField(field) {
  if (field === "pair") return "pairs";
  return field;
}

// The inputs an API field names: by their name, or, for the take-profit steps, every step's input.
function fieldInputs(form, field) {
  return [...form.querySelectorAll(`[name="${CSS.escape(field)}"], [data-field="${CSS.escape(field)}"]`)];
}

// An error next to its field without moving the focus (the preview runs while the person types).
function markField(form, field, message) {
  const slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
  const inputs = fieldInputs(form, field).filter((input) => !input.disabled);
  if (!slot || inputs.length === 0) return false;
  slot.textContent = message;
  inputs.forEach((input) => input.setAttribute("aria-invalid", "true"));
  return true;
}

const botForm = dca && dca.kind === "bots" ? dcaPart("[data-bot-form]") : null;
const newBot = { accounts: new Map(), markets: new Map(), previewTimer: null, prefillTimer: null, priceFor: "", chosen: "" };

function chosenPair(form) {
  return readPairs(form.elements.pairs.value)[0] || "";
}

// "dca" or "signal": the bot type chosen at the top of the form.
function botKind(form) {
  return form.elements.type.value === "signal" ? "signal" : "dca";
}

// The form for the chosen type. A signal bot's form hides the ladder and the start condition
// (disabled too, so they take no focus and no error), and its take profit is optional: the default
// target is taken out when Signal bot is chosen and comes back with DCA bot if the field was left
// empty.
function reflectKind(form) {
  const signal = botKind(form) === "signal";
  form.querySelectorAll("[data-bot-kind]").forEach((part) => {
    part.hidden = part.dataset.botKind !== (signal ? "signal" : "dca");
    part.querySelectorAll("input, select, textarea").forEach((input) => { input.disabled = part.hidden; });
  });
  const tp = form.elements.take_profit;
  if (signal) {
    tp.removeAttribute("required");
    if (tp.value.trim() === tp.defaultValue) tp.value = "";
  } else {
    tp.setAttribute("required", "");
    if (tp.value.trim() === "") tp.value = tp.defaultValue;
  }
  // Errors of the other type's fields go with them.
  form.querySelectorAll("[data-error-for]").forEach((slot) => {
    const inputs = fieldInputs(form, slot.dataset.errorFor);
    if (inputs.length > 0 && inputs.every((input) => input.disabled) && slot.dataset.errorFor !== "take_profit") {
      slot.textContent = "";
      inputs.forEach((input) => input.removeAttribute("aria-invalid"));
    }
  });
  form.querySelector("[data-preview-title]").textContent = signal ? "What one deal will enter with" : "What one deal will trade";
  reflectUnits(form);
  reflectExits(form);
}

function reflectUnits(form) {
  const { base, quote } = pairParts(chosenPair(form));
  form.querySelectorAll("[data-quote-unit]").forEach((n) => { n.textContent = quote || "quote"; });
  // A volume's unit follows its type: the quote asset, or the base asset (the coin bought).
  form.querySelectorAll("[data-volume-unit]").forEach((n) => {
    const inBase = form.elements[n.dataset.volumeUnit].value === "base_currency";
    n.textContent = inBase ? base || "base" : quote || "quote";
  });
  form.querySelectorAll("[data-volume-type]").forEach((select) => {
    select.querySelector('option[value="quote_currency"]').textContent = quote ? `${quote} (quote)` : "the quote currency";
    select.querySelector('option[value="base_currency"]').textContent = base ? `${base} (base)` : "the base currency";
  });
  const short = form.elements.strategy.value === "short";
  form.querySelector("[data-strategy-help]").textContent = botKind(form) === "signal"
    ? (short
      ? "Short: enter_short (or sell) sells to open a deal; exit_short (or buy) buys it back."
      : "Long: enter_long (or buy) buys to open a deal; exit_long (or sell) sells it.")
    : short
      ? "Short: sells first and buys back lower. Safety orders sit above the start price."
      : "Long: buys first and sells higher. Safety orders sit below the start price.";
}

function schedulePreview(delay) {
  clearTimeout(newBot.previewTimer);
  newBot.previewTimer = setTimeout(runPreview, delay === undefined ? PREVIEW_DELAY_MS : delay);
}

async function runPreview() {
  const form = botForm;
  const box = form.querySelector("[data-preview]");
  const run = dcaRun("preview");
  const startPrice = readAmount(form.elements.start_price.value);
  const pair = chosenPair(form);
  const account = form.elements.exchange_account_id.value;
  // The preview's own field errors go; those of a refused create stay until the next try.
  form.querySelectorAll("[data-preview-error]").forEach((slot) => {
    slot.textContent = "";
    slot.removeAttribute("data-preview-error");
    fieldInputs(form, slot.dataset.errorFor).forEach((input) => input.removeAttribute("aria-invalid"));
  });
  if (startPrice === null || isZero(startPrice)) {
    box.replaceChildren(el("p", { class: "help" }, form.elements.start_price.value.trim() === ""
      ? "Give a start price to see the plan."
      : "The start price is a positive number, such as 30000."));
    return;
  }
  const body = { ...botSettings(form), start_price: startPrice };
  // A signal bot's plan: its entry order alone, with its take profit if it has one.
  if (botKind(form) === "signal") body.bot_type = "signal";
  if (account && pair) Object.assign(body, { exchange_account_id: account, pair });
  box.setAttribute("aria-busy", "true");
  const result = await api("POST", `${BOTS_API}/preview`, body);
  if (dca.runs.preview !== run) return;
  box.removeAttribute("aria-busy");
  if (!result.ok) {
    const field = result.data && result.data.field && botField(result.data.field);
    if (field && markField(form, field, describe(result))) {
      form.querySelector(`[data-error-for="${CSS.escape(field)}"]`).setAttribute("data-preview-error", "");
    }
    box.replaceChildren(el("p", { class: "form-error", "data-preview-problem": "", role: "alert" }, describeKeyError(result)));
    return;
  }
  box.replaceChildren(...previewParts(result.data, pair, body).filter(Boolean));
}

// A decimal string rounded half up to `places` decimals, for reading (the exact value goes in a
// tooltip). Trailing zeros go, as the API writes numbers.
function roundDecimal(text, places) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(text));
  if (!m || (m[3] || "").length <= places) return String(text);
  let units = BigInt(m[2] + m[3].slice(0, places));
  if (Number(m[3][places]) >= 5) units += 1n;
  const digits = units.toString().padStart(places + 1, "0");
  const out = places ? `${digits.slice(0, -places)}.${digits.slice(-places)}`.replace(/0+$/, "").replace(/\.$/, "") : digits;
  return `${m[1] && !/^0(\.0*)?$/.test(out) ? "-" : ""}${out}`;
}

// A number cell's text: grouped, rounded to `places` when given, the exact value as its tooltip.
function numberEl(text, places, attrs) {
  const shown = places === undefined ? String(text) : roundDecimal(text, places);
  return el("span", { ...(attrs || {}), title: shown === String(text) ? null : String(text) }, grouped(shown));
}

// Every take-profit target after an order, first to last (one without steps).
function previewTargets(order) {
  if (Array.isArray(order.take_profit_targets) && order.take_profit_targets.length > 0) return order.take_profit_targets;
  return order.take_profit_price ? [order.take_profit_price] : [];
}

function previewParts(plan, pair, settings) {
  if (settings.bot_type === "signal") return signalPreviewParts(plan, pair, settings);
  const strategy = settings.strategy;
  const { base, quote } = pairParts(pair);
  const q = quote || "quote";
  const b = base || "base";
  // Unrounded plans carry every digit of the division; eight decimals are enough to read them.
  // The average and the take profit are shown to the market's price step.
  const places = plan.rounded ? undefined : 8;
  const market = newBot.markets.get(pair);
  const tick = market && market.tick_size ? (String(market.tick_size).split(".")[1] || "").length : 8;
  const sign = strategy === "short" ? "+" : "−";
  // With steps the take-profit cell lists every target, TP1 first.
  const stepped = plan.orders.some((o) => previewTargets(o).length > 1);
  const takeProfitCell = (o) => {
    const targets = previewTargets(o);
    if (targets.length === 0) return "—";
    if (!stepped) return numberEl(targets[0], places ?? tick, { "data-col": "take_profit_price" });
    return el("span", { class: "targets" }, ...targets.map((price, i) => el("span", { class: "target" },
      el("span", { class: "target-step" }, `TP${i + 1}`), " ",
      numberEl(price, places ?? tick, { "data-col": "take_profit_target", "data-step": String(i + 1) }))));
  };
  const rows = [];
  for (const o of plan.orders) {
    const problems = o.problems || [];
    const name = o.kind === "base" ? "Base order" : `Safety order ${o.index}`;
    rows.push(el("tr", { "data-preview-row": o.kind === "base" ? "base" : `safety-${o.index}`, class: problems.length ? "problem" : null },
      el("th", { scope: "row" }, name, o.kind === "base" ? null : el("span", { class: "sub" }, `${sign}${o.deviation_percent} %`)),
      el("td", { class: "num" }, numberEl(o.price, places, { "data-col": "price" })),
      el("td", { class: "num" }, numberEl(o.size_quote, places, { "data-col": "size_quote" }),
        el("span", { class: "sub" }, numberEl(o.size_base, places, { "data-col": "size_base" }), ` ${b}`)),
      el("td", { class: "num" }, numberEl(o.total_quote, places, { "data-col": "total_quote" })),
      el("td", { class: "num" }, o.average_price ? numberEl(o.average_price, places ?? tick, { "data-col": "average_price" }) : "—"),
      el("td", { class: "num" }, takeProfitCell(o))));
    if (problems.length) {
      rows.push(el("tr", { class: "problem-row" }, el("td", { colspan: "6" }, `${name} cannot be placed: ${problems.join("; ")}`)));
    }
  }
  const headings = [["Order"], [`Price (${q})`, "num"], [`Size (${q})`, "num"], [`Total (${q})`, "num"],
    ["Average price", "num"], [stepped ? "Take profit targets" : "Take profit", "num"]];
  const direction = strategy === "short" ? "above" : "below";
  const steps = Array.isArray(settings.take_profit_steps) ? settings.take_profit_steps : [];
  const exits = [];
  if (steps.length > 0) exits.push(`Takes profit in ${steps.length === 1 ? "one step" : `${steps.length} steps`}: ${stepsText(steps)}.`);
  if (settings.trailing_enabled) {
    exits.push(`The ${steps.length > 1 ? "last target" : "take profit"} trails: once reached, it closes when the price ${strategy === "short" ? "rises" : "falls"} back ${grouped(String(settings.trailing_deviation))} % from its peak.`);
  }
  return [
    el("p", { class: "plan-summary", "data-plan-summary": "" },
      "At most ", el("strong", {}, `${grouped(plan.max_funds_per_deal)} ${q}`), " per deal; the last safety order is ",
      el("strong", {}, `${plan.max_deviation_percent} %`), ` ${direction} the start price.`),
    exits.length > 0 && el("p", { class: "help", "data-plan-exits": "" }, exits.join(" ")),
    plan.rounded
      ? el("p", { class: "help" }, "Rounded to the market’s rules: the orders the engine will place.")
      : el("p", { class: "help" }, "Not rounded to a market: choose an exchange account and a pair to see the orders as they will be placed."),
    plan.rounded && plan.placeable === false && el("p", { class: "form-error", role: "alert" },
      "Some orders cannot be placed on this market (see below each): raise their volume or change the steps."),
    el("div", { class: "table-wrap" }, table(headings, rows)),
  ];
}

// A signal bot's preview: the entry order one signal places, and its exits. Without a take profit
// the API plans a nominal one that is never placed; it is not shown.
function signalPreviewParts(plan, pair, settings) {
  const { base, quote } = pairParts(pair);
  const q = quote || "quote";
  const places = plan.rounded ? undefined : 8;
  const market = newBot.markets.get(pair);
  const tick = market && market.tick_size ? (String(market.tick_size).split(".")[1] || "").length : 8;
  const short = settings.strategy === "short";
  const steps = Array.isArray(settings.take_profit_steps) ? settings.take_profit_steps : [];
  const withTarget = settings.take_profit !== undefined || steps.length > 0 || settings.trailing_enabled === true;
  const entry = plan.orders.find((o) => o.kind === "base");
  if (!entry) return [el("p", { class: "help" }, "The plan appears here.")];
  const problems = entry.problems || [];
  const targets = previewTargets(entry);
  const headings = [["Order"], [`Price (${q})`, "num"], [`Size (${q})`, "num"]];
  const cells = [
    el("th", { scope: "row" }, "Entry order", el("span", { class: "sub" }, short ? "sell" : "buy")),
    el("td", { class: "num" }, numberEl(entry.price, places, { "data-col": "price" })),
    el("td", { class: "num" }, numberEl(entry.size_quote, places, { "data-col": "size_quote" }),
      el("span", { class: "sub" }, numberEl(entry.size_base, places, { "data-col": "size_base" }), ` ${base || "base"}`)),
  ];
  if (withTarget) {
    headings.push([targets.length > 1 ? "Take profit targets" : "Take profit", "num"]);
    cells.push(el("td", { class: "num" }, targets.length === 0 ? "—" : el("span", { class: "targets" },
      ...targets.map((price, i) => el("span", { class: "target" },
        targets.length > 1 ? el("span", { class: "target-step" }, `TP${i + 1} `) : null,
        numberEl(price, places ?? tick, { "data-col": targets.length > 1 ? "take_profit_target" : "take_profit_price", "data-step": String(i + 1) }))))));
  }
  const rows = [el("tr", { "data-preview-row": "entry", class: problems.length ? "problem" : null }, ...cells)];
  if (problems.length) {
    rows.push(el("tr", { class: "problem-row" }, el("td", { colspan: String(headings.length) }, `The entry order cannot be placed: ${problems.join("; ")}`)));
  }
  const exit = short ? "exit_short" : "exit_long";
  return [
    el("p", { class: "plan-summary", "data-plan-summary": "" },
      "Each signal to enter opens a deal with one order of ", el("strong", {}, `${grouped(plan.max_funds_per_deal)} ${q}`),
      "; there are no safety orders."),
    el("p", { class: "help", "data-plan-exits": "" }, withTarget
      ? `It closes at its take profit, on an ${exit} signal or at the stop loss.`
      : `No take profit: the deal holds its position until an ${exit} signal, the stop loss or you close it.`),
    plan.rounded
      ? el("p", { class: "help" }, "Rounded to the market’s rules: the order the engine will place.")
      : el("p", { class: "help" }, "Not rounded to a market: choose an exchange account and a pair to see the order as it will be placed."),
    plan.rounded && plan.placeable === false && el("p", { class: "form-error", role: "alert" },
      "The entry order cannot be placed on this market: raise its volume."),
    el("div", { class: "table-wrap" }, table(headings, rows)),
  ];
}

// A market's last price as a decimal string, or null. Read from the chart the account's page draws
// (its root element names the last price).
async function lastPrice(account, pair) {
  try {
    const url = `${ACCOUNTS_API}/${encodeURIComponent(account)}/chart.svg?${new URLSearchParams({ pair, limit: "2" })}`;
    const res = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!res.ok) return null;
    const svg = new DOMParser().parseFromString(await res.text(), "image/svg+xml");
    const price = svg.documentElement.getAttribute("data-last-price");
    return price && readAmount(price) !== null ? price : null;
  } catch (_) {
    return null;
  }
}

// The market's last price as the start price, unless the person typed one.
async function prefillStartPrice() {
  const form = botForm;
  const input = form.elements.start_price;
  const account = form.elements.exchange_account_id.value;
  const pair = chosenPair(form);
  const wanted = `${account} ${pair}`;
  // Another market: its own price, even over one typed for the previous market.
  if (wanted !== newBot.chosen) {
    newBot.chosen = wanted;
    input.dataset.typed = "false";
  }
  const listed = [...form.querySelectorAll("#bot-markets option")].map((o) => o.value);
  if (listed.length > 0 && !listed.includes(pair)) return;
  if (input.dataset.typed === "true" || !account || !/^[A-Z0-9]+_[A-Z0-9]+$/.test(pair) || newBot.priceFor === wanted) return;
  newBot.priceFor = wanted;
  const price = await lastPrice(account, pair);
  if (newBot.priceFor !== wanted || input.dataset.typed === "true") return;
  const help = form.querySelector("[data-start-price-help]");
  if (price && readAmount(price) !== null) {
    input.value = price;
    help.textContent = `The last price of ${marketName(pair)} when the account’s market was asked; change it to see another start.`;
  } else {
    newBot.priceFor = "";
    help.textContent = `The last price of ${marketName(pair)} could not be read; type the price the base order would fill at.`;
  }
  schedulePreview(0);
}

async function loadMarkets(form) {
  const list = form.querySelector("#bot-markets");
  const account = form.elements.exchange_account_id.value;
  list.replaceChildren();
  newBot.markets = new Map();
  if (!account) return;
  const result = await api("GET", `${ACCOUNTS_API}/${encodeURIComponent(account)}/markets`);
  if (form.elements.exchange_account_id.value !== account || !result.ok || !Array.isArray(result.data)) return;
  newBot.markets = new Map(result.data.map((m) => [m.pair, m]));
  list.replaceChildren(...result.data.map((m) => el("option", { value: m.pair }, `${m.base} / ${m.quote}`)));
}

async function loadAccountsForBots(form) {
  const select = form.elements.exchange_account_id;
  const note = form.querySelector("[data-accounts-note]");
  const result = await api("GET", ACCOUNTS_API);
  if (!result.ok || !Array.isArray(result.data)) {
    select.replaceChildren(el("option", { value: "" }, "Could not load the accounts"));
    note.textContent = describeKeyError(result);
    return;
  }
  newBot.accounts = new Map(result.data.map((a) => [String(a.id), a]));
  if (result.data.length === 0) {
    select.replaceChildren(el("option", { value: "" }, "No exchange accounts yet"));
    note.replaceChildren("A bot trades on an exchange account. ", el("a", { href: "/exchange-accounts" }, "Open a paper account or connect a key"), " first.");
    return;
  }
  select.replaceChildren(...result.data.map((a) => el("option", { value: String(a.id) },
    `${a.name} (${accountVenue(a.exchange)}${a.status === "paused" ? ", paused" : ""})`)));
  select.disabled = false;
  note.textContent = "";
}

async function loadBots() {
  const box = dcaPart("[data-bots-list]");
  const status = dcaPart("[data-bots-status]");
  const run = dcaRun("bots");
  const result = await api("GET", `${BOTS_API}${revealQuery()}`);
  if (dca.runs.bots !== run) return;
  const error = dcaPart("[data-bots-error]");
  if (!result.ok || !Array.isArray(result.data)) {
    status.textContent = "";
    error.textContent = describe(result);
    return;
  }
  error.textContent = "";
  status.textContent = result.data.length === 0 ? "No bots yet. Make one with the form below." : "";
  const sig = JSON.stringify([result.data, [...newBot.accounts.keys()]]);
  drawOnce(box, sig, () => (result.data.length === 0 ? [] : table(
    [["Name"], ["Pairs"], ["Account"], ["Status"], ["Active deals", "num"], ["Finished deals", "num"], ["Profit", "num"]],
    result.data.map((bot) => {
      const account = newBot.accounts.get(String(bot.exchange_account_id));
      const quotes = [...new Set(bot.pairs.map((p) => pairParts(p).quote))];
      return el("tr", { "data-bot-row": bot.id },
        el("td", {}, el("a", { href: `/bots/${encodeURIComponent(bot.id)}` }, bot.name)),
        el("td", {}, bot.pairs.map(marketName).join(", ")),
        el("td", {}, account ? account.name : ""),
        el("td", {}, botStatePill(bot), bot.disabled_reason
          ? el("span", { class: "reason", title: disabledReasonText(bot.disabled_reason) }, " ", el("code", {}, bot.disabled_reason))
          : null),
        el("td", { class: "num" }, String(bot.active_deals)),
        el("td", { class: "num" }, String(bot.finished_deals)),
        el("td", { class: "num" }, profitEl(bot.profit_quote, quotes.length === 1 ? quotes[0] : "")));
    }))));
}

async function createBot(form) {
  clearMessages(form);
  const pairs = readPairs(form.elements.pairs.value);
  const body = {
    type: botKind(form),
    name: form.elements.name.value.trim(),
    exchange_account_id: form.elements.exchange_account_id.value,
    pairs,
    enabled: form.elements.enabled.checked,
    ...botSettings(form),
  };
  if (!body.name) { showError(form, "name", "Give the bot a name."); return; }
  if (!body.exchange_account_id) { showError(form, "exchange_account_id", "Choose the exchange account the bot trades on."); return; }
  if (pairs.length === 0) { showError(form, "pairs", "Name at least one pair, such as USDT_BTC."); return; }
  const button = form.querySelector("[data-bot-create]");
  button.disabled = true;
  const result = await api("POST", BOTS_API, body);
  button.disabled = false;
  if (!result.ok) {
    const field = result.data && result.data.field ? botField(result.data.field) : "_form";
    if (markField(form, field, describe(result))) {
      fieldInputs(form, field).find((input) => !input.disabled).focus();
    } else {
      showError(form, "_form", describe(result));
    }
    return;
  }
  const bot = result.data;
  const panel = dcaPart("[data-bot-created]");
  clearMessages(panel);
  panel.querySelector("[data-bot-created-title]").textContent = `“${bot.name}” is created${bot.enabled ? " and enabled" : ", disabled for now"}`;
  panel.querySelector("[data-webhook-secret]").textContent = bot.webhook_secret;
  panel.dataset.botId = bot.id;
  panel.querySelector("[data-bot-link]").href = `/bots/${encodeURIComponent(bot.id)}`;
  panel.hidden = false;
  panel.focus();
  panel.scrollIntoView({ block: "nearest" });
  form.elements.name.value = "";
  await loadBots();
}

function startBotsPage() {
  const form = botForm;
  dca.refresh = loadBots;
  bindDcaReveal();
  // A reload may keep the type chosen before it.
  reflectKind(form);
  form.addEventListener("input", (event) => {
    const name = event.target.name;
    if (name === "start_price") event.target.dataset.typed = String(event.target.value.trim() !== "");
    if (name === "name" || name === "enabled") return;
    if (name === "amount_percentage") reflectExits(form);
    if (name === "pairs") {
      reflectUnits(form);
      clearTimeout(newBot.prefillTimer);
      newBot.prefillTimer = setTimeout(prefillStartPrice, PREVIEW_DELAY_MS);
    }
    schedulePreview();
  });
  form.addEventListener("change", (event) => {
    const name = event.target.name;
    if (name === "type") reflectKind(form);
    if (name === "stop_loss_timeout_enabled") form.elements.stop_loss_timeout_in_seconds.disabled = !event.target.checked;
    if (name === "use_take_profit_steps" || name === "trailing_enabled") reflectExits(form);
    if (name === "exchange_account_id") loadMarkets(form).then(prefillStartPrice);
    if (name === "strategy" || name === "base_order_volume_type" || name === "safety_order_volume_type") reflectUnits(form);
    if (event.target.type === "radio" || event.target.tagName === "SELECT" || event.target.type === "checkbox") schedulePreview(0);
  });
  form.querySelector("[data-add-step]").addEventListener("click", () => addStep(form));
  form.querySelectorAll("[data-remove-step]").forEach((button) => {
    button.addEventListener("click", () => removeStep(form, button.closest("[data-tp-step]")));
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); createBot(form); });
  const panel = dcaPart("[data-bot-created]");
  panel.querySelector("[data-copy-secret]").addEventListener("click", async () => {
    clearMessages(panel);
    try {
      await navigator.clipboard.writeText(panel.querySelector("[data-webhook-secret]").textContent);
      panel.querySelector("[data-copy-ok]").textContent = "Copied. Keep it where you keep passwords.";
    } catch (_) {
      panel.querySelector("[data-copy-error]").textContent = "The browser did not allow copying. Select the secret and copy it by hand.";
    }
  });
  panel.querySelector("[data-open-messages]").addEventListener("click", () => openMessagesWithSecret(panel));
  window.addEventListener("message", answerSecretHandoff);
  bindTradingViewPreset(form);
  // Leaving the page takes the secret with it.
  window.addEventListener("pagehide", () => {
    panel.querySelector("[data-webhook-secret]").textContent = "";
    handoff.secret = "";
    handoff.win = null;
  });
  loadAccountsForBots(form).then(() => {
    loadMarkets(form).then(prefillStartPrice);
    loadBots();
    // Deals start and end meanwhile: the counts and profits follow.
    keepRefreshing(loadBots, () => false);
  });
  schedulePreview(0);
}

// The new bot's page in a new tab, handed the secret from this page's memory (postMessage between
// two pages of this origin; nothing is stored, and nothing goes into an address): its alert
// messages are then ready to paste. The bot's page asks (bulwark:webhook-secret?) once it runs;
// only the tab opened here, asking for this bot, gets an answer, and only one.
const handoff = { win: null, id: "", secret: "" };

function openMessagesWithSecret(panel) {
  clearMessages(panel);
  handoff.id = panel.dataset.botId || "";
  handoff.secret = panel.querySelector("[data-webhook-secret]").textContent;
  handoff.win = window.open(`/bots/${encodeURIComponent(handoff.id)}#webhook-title`, "_blank");
  if (!handoff.win) {
    handoff.secret = "";
    panel.querySelector("[data-copy-error]").textContent = "The browser did not open a new tab. Open the bot and paste the secret into its page instead.";
  }
}

function answerSecretHandoff(event) {
  const data = event.data;
  if (event.origin !== window.location.origin || !handoff.win || event.source !== handoff.win || !handoff.secret) return;
  if (!data || data.type !== "bulwark:webhook-secret?" || data.bot !== handoff.id) return;
  handoff.win.postMessage({ type: "bulwark:webhook-secret", bot: handoff.id, secret: handoff.secret }, window.location.origin);
  handoff.secret = "";
  handoff.win = null;
}

// ---- One bot

// [3Commas name, label, unit]; a volume's unit is the setting holding its type (its asset follows).
const SETTING_LABELS = [
  ["base_order_volume", "Base order volume", "base_order_volume_type"],
  ["base_order_volume_type", "Base order volume in"],
  ["safety_order_volume", "Safety order volume", "safety_order_volume_type"],
  ["safety_order_volume_type", "Safety order volume in"],
  ["max_safety_orders", "Max safety orders"],
  ["active_safety_orders_count", "Active safety orders"],
  ["safety_order_step_percentage", "Price deviation to open safety orders", "%"],
  ["martingale_step_coefficient", "Safety order step scale"],
  ["martingale_volume_coefficient", "Safety order volume scale"],
  ["take_profit", "Target profit", "%"],
  ["take_profit_type", "Take profit of"],
  ["take_profit_steps", "Take profit steps"],
  ["trailing_deviation", "Trailing take profit", "%"],
  ["strategy", "Strategy"],
  ["start_order_type", "Base order type"],
  ["stop_loss_percentage", "Stop loss", "%"],
  ["stop_loss_timeout_in_seconds", "Stop loss timeout", "s"],
  ["stop_loss_type", "When the stop loss fires"],
  ["tsl_enabled", "Trailing stop loss"],
  ["sl_to_breakeven_enabled", "Stop loss to breakeven after a step"],
  ["cooldown", "Cooldown between deals", "s"],
  ["max_active_deals", "Max active deals"],
  ["allowed_deals_on_same_pair", "Deals on the same pair"],
  ["strategy_list", "Deal start condition"],
  ["webhook_ip_allowlist", "Webhook signals from"],
  ["webhook_max_lag_seconds", "Refuse webhook signals older than", "s"],
  ["webhook_require_signature", "Take only signed webhook requests"],
];
const SETTING_DEFAULTS = {
  base_order_volume_type: "quote_currency", safety_order_volume_type: "quote_currency",
  martingale_step_coefficient: "1", martingale_volume_coefficient: "1", take_profit_type: "total", strategy: "long",
  start_order_type: "market", stop_loss_percentage: "0", stop_loss_type: "stop_loss", cooldown: "0", max_active_deals: "1",
  allowed_deals_on_same_pair: "1",
};
// Settings whose values are words, in words.
const SETTING_WORDS = {
  stop_loss_type: { stop_loss: "close the deal", stop_loss_and_disable_bot: "close the deal and disable the bot" },
};
const SWITCH_SETTINGS = ["tsl_enabled", "sl_to_breakeven_enabled", "webhook_require_signature"];
// A signal bot has no ladder: these settings are not its own (their defaults would mislead).
const LADDER_SETTINGS = ["safety_order_volume", "safety_order_volume_type", "max_safety_orders", "active_safety_orders_count",
  "safety_order_step_percentage", "martingale_step_coefficient", "martingale_volume_coefficient"];

// `units` holds the bot's base and quote assets ("" when its pairs differ).
function settingsFacts(settings, units) {
  const facts = [];
  const steps = Array.isArray(settings.take_profit_steps) ? settings.take_profit_steps : [];
  const assetOf = (type) => (type === "base_currency"
    ? units.base || "base"
    : units.quote || "quote");
  const signalBot = settings.bot_type === "signal";
  for (const [name, label, unit] of SETTING_LABELS) {
    if (signalBot && LADDER_SETTINGS.includes(name)) continue;
    let value = settings[name];
    if (name === "active_safety_orders_count" && value === undefined) value = settings.max_safety_orders;
    if (name === "stop_loss_timeout_in_seconds" && !settings.stop_loss_timeout_enabled) value = "off";
    if (name === "trailing_deviation" && !settings.trailing_enabled) value = "off";
    // With steps take_profit may be left out: it is the last step's profit.
    if (name === "take_profit" && (value === undefined || value === null) && steps.length > 0) value = steps[steps.length - 1].profit_percentage;
    // A signal bot without a take profit holds its deals until an exit signal or the stop loss.
    if (name === "take_profit" && (value === undefined || value === null) && signalBot) value = "off";
    if (name === "strategy_list") value = signalBot ? "signals" : Array.isArray(value) && value[0] ? value[0].strategy : "nonstop";
    if (name === "webhook_ip_allowlist") {
      const list = Array.isArray(value) ? value : [];
      value = list.length === 0 ? "any address"
        : list.map((entry) => (String(entry).toLowerCase() === "tradingview" ? "TradingView’s addresses" : String(entry))).join(", ");
    }
    if (name === "webhook_max_lag_seconds" && (value === undefined || value === null)) value = "off";
    if (value === undefined || value === null) value = SETTING_DEFAULTS[name];
    if (SWITCH_SETTINGS.includes(name)) value = value === true ? "on" : "off";
    if (value === undefined) continue;
    let shown;
    if (value === "off" || value === "on" || name === "webhook_ip_allowlist") shown = value;
    else if (name === "take_profit_steps") shown = steps.length > 0 ? stepsText(steps) : "off";
    else if (name.endsWith("_volume_type")) {
      const inBase = value === "base_currency";
      shown = `${assetOf(value)} (${inBase ? "base" : "quote"} currency)`;
    } else if (SETTING_WORDS[name]) shown = SETTING_WORDS[name][value] || String(value);
    else {
      const unitText = unit && unit.endsWith("_volume_type") ? assetOf(settings[unit]) : unit;
      shown = `${grouped(String(value))}${unitText ? ` ${unitText}` : ""}`;
      if (name === "trailing_deviation") shown += " back from the peak";
    }
    facts.push(el("dt", {}, label, " ", el("span", { class: "optional" }, `(${name})`)),
      el("dd", { "data-setting": name, class: name === "take_profit_steps" || name === "webhook_ip_allowlist" ? "wrap" : null }, shown));
  }
  return facts;
}

async function loadBotPage() {
  const id = dca.root.dataset.bot;
  const run = dcaRun("bot");
  const [botResult, dealsResult] = await Promise.all([
    api("GET", `${BOTS_API}/${encodeURIComponent(id)}${revealQuery()}`),
    api("GET", `${DEALS_API}${revealQuery({ bot_id: id, limit: "1000" })}`),
  ]);
  if (dca.runs.bot !== run) return;
  const error = dcaPart("[data-bot-error]");
  if (!botResult.ok || !dealsResult.ok) {
    error.textContent = describe(botResult.ok ? dealsResult : botResult);
    return;
  }
  error.textContent = "";
  const bot = botResult.data;
  dca.bot = bot;
  dca.deals = dealsResult.data;
  renderBot(bot);
  renderWebhook(bot);
  drawOnce(dcaPart("[data-deals-list]"), JSON.stringify(dca.deals), () => dealsTable(dca.deals, null));
  drawOnce(dcaPart("[data-profit-days]"), JSON.stringify(dca.deals.map((d) => [d.status, d.closed_at, d.profit_quote, d.pair])),
    () => profitDaysTable(dca.deals));
}

function renderBot(bot) {
  const quotes = [...new Set(bot.pairs.map((p) => pairParts(p).quote))];
  const quote = quotes.length === 1 ? quotes[0] : "";
  dcaPart("[data-bot-title]").textContent = bot.name;
  dcaPart("[data-bot-state]").replaceChildren(botStatePill(bot));
  const flag = dcaPart("[data-bot-disabled]");
  flag.hidden = bot.enabled || !bot.disabled_reason;
  if (!flag.hidden) {
    dcaPart("[data-bot-disabled-text]").replaceChildren(
      el("strong", {}, "Disabled by Bulwark: "), el("code", {}, bot.disabled_reason), ` (${disabledReasonText(bot.disabled_reason)}). `,
      "It starts no new deal until you enable it again; open deals go on.");
  }
  dcaPart("[data-bot-enable]").hidden = bot.enabled;
  dcaPart("[data-bot-disable]").hidden = !bot.enabled;
  const start = dcaPart("[data-bot-start]");
  start.disabled = !bot.enabled;
  start.title = bot.enabled ? "" : "Enable the bot first";
  const pairBox = dcaPart("[data-start-pair-box]");
  pairBox.hidden = bot.pairs.length < 2;
  const select = dcaPart("[data-start-pair]");
  if (select.dataset.sig !== bot.pairs.join(",")) {
    select.dataset.sig = bot.pairs.join(",");
    select.replaceChildren(...bot.pairs.map((p) => el("option", { value: p }, marketName(p))));
  }
  drawOnce(dcaPart("[data-bot-summary]"), JSON.stringify([bot, dca.accountName || ""]), () => [
    el("dt", {}, "Type"), el("dd", { "data-bot-type": bot.type }, bot.type === "signal" ? "Signal bot (opens and closes on TradingView Signal-bot alerts)" : "DCA bot"),
    el("dt", {}, "Exchange account"), el("dd", {}, el("a", { href: tradeHref(bot.exchange_account_id) }, dca.accountName || "its account")),
    el("dt", {}, "Pairs"), el("dd", {}, bot.pairs.map(marketName).join(", ")),
    el("dt", {}, "Active deals"), el("dd", { "data-active-deals": "" }, String(bot.active_deals)),
    el("dt", {}, "Finished deals"), el("dd", { "data-finished-deals": "" }, String(bot.finished_deals)),
    el("dt", {}, "Profit"), el("dd", { "data-bot-profit": "" }, profitEl(bot.profit_quote, quote)),
    el("dt", {}, "Created"), el("dd", {}, timeEl(bot.created_at)),
  ]);
  const bases = [...new Set(bot.pairs.map((p) => pairParts(p).base))];
  const units = { base: bases.length === 1 ? bases[0] : "", quote };
  drawOnce(dcaPart("[data-bot-settings]"), JSON.stringify([bot.settings, units]), () => settingsFacts(bot.settings || {}, units));
}

async function botCommand(button, path, body, done) {
  const ok = dcaPart("[data-bot-ok]");
  const error = dcaPart("[data-bot-error]");
  ok.textContent = "";
  error.textContent = "";
  button.disabled = true;
  const result = await api("POST", `${BOTS_API}/${encodeURIComponent(dca.root.dataset.bot)}/${path}`, body);
  button.disabled = false;
  if (!result.ok) { error.textContent = describeKeyError(result); return; }
  done(result.data, ok);
  await loadBotPage();
}

async function startBotPage() {
  dca.refresh = () => Promise.all([loadBotPage(), loadSignals()]);
  bindDcaReveal();
  startWebhook();
  dcaPart("[data-bot-enable]").addEventListener("click", (event) => botCommand(event.currentTarget, "enable", undefined, (bot, ok) => {
    ok.textContent = "Enabled: the bot starts deals by its start condition.";
  }));
  dcaPart("[data-bot-disable]").addEventListener("click", (event) => botCommand(event.currentTarget, "disable", undefined, (bot, ok) => {
    ok.textContent = "Disabled: no new deal starts; open deals go on.";
  }));
  dcaPart("[data-bot-start]").addEventListener("click", (event) => {
    const box = dcaPart("[data-start-pair-box]");
    const body = box.hidden ? {} : { pair: dcaPart("[data-start-pair]").value };
    botCommand(event.currentTarget, "start_new_deal", body, (deal, ok) => {
      ok.replaceChildren(`Started a deal on ${marketName(deal.pair)} (${deal.status}). `,
        el("a", { href: `/deals/${encodeURIComponent(deal.id)}`, "data-new-deal": deal.id }, "Open the deal →"));
    });
  });
  await loadBotPage();
  if (dca.bot) {
    const account = await api("GET", `${ACCOUNTS_API}/${encodeURIComponent(dca.bot.exchange_account_id)}`);
    if (account.ok && account.data) {
      dca.accountName = account.data.name;
      renderBot(dca.bot);
    }
  }
  keepRefreshing(loadBotPage, () => (dca.deals || []).some((d) => !FINISHED.has(d.status)));
  await loadSignals();
  // Signals arrive from outside at any time: the log follows every few seconds.
  keepRefreshing(loadSignals, () => true);
}

// ---- One bot's TradingView webhook

// The webhook section of the bot page: the URLs (this page's origin), the alert messages in both
// 3Commas formats, a test signal sent exactly as TradingView sends one, the signal log, rotation and
// the webhook settings. The secret is known only when the person fills it in, or from a rotation
// or the bots page right after creation; it lives in `hook.secret`, this page's memory, and is sent
// nowhere but inside a test signal to the webhook URL.
const hook = { secret: "", settingsFilled: false, pending: new Set() };
const SECRET_PLACEHOLDER = "<webhook secret>";
const SECRET_PATTERN = /^[0-9a-f]{64}$/i;
const DCA_MESSAGES = ["start_deal", "close_at_market_price", "close_at_market_price_all", "add_funds_in_quote", "start_trailing"];
const SIGNAL_ACTIONS = {
  start_deal: "Start a deal",
  close_at_market_price: "Close at market",
  close_at_market_price_all: "Close all at market",
  add_funds_in_quote: "Add funds",
  start_trailing: "Start trailing",
  buy: "Buy",
  sell: "Sell",
  enter_long: "Enter long",
  exit_long: "Exit long",
  enter_short: "Enter short",
  exit_short: "Exit short",
};
const SIGNAL_STATES = { pending: null, done: "ok", refused: "danger", expired: "warn" };

function hookPart(selector) {
  return dcaPart(`[data-webhook] ${selector}`);
}

function webhookUrl(format) {
  const section = dcaPart("[data-webhook]");
  return `${window.location.origin}${format === "signal" ? section.dataset.signalPath : section.dataset.dcaPath}`;
}

// TradingView reaches only ports 80 and 443: a page served elsewhere says so.
function reflectWebhookUrls() {
  for (const format of ["dca", "signal"]) hookPart(`[data-webhook-url="${format}"]`).textContent = webhookUrl(format);
  const note = hookPart("[data-webhook-port-note]");
  const { protocol, port, host } = window.location;
  const https = protocol === "https:" && (port === "" || port === "443");
  const local = /^(localhost|127\.|\[::1\]|10\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.)/.test(host);
  note.hidden = https && !local;
  if (!https) {
    note.textContent = `This page is at ${window.location.origin}, which TradingView cannot post to (${protocol === "https:" ? `port ${port}` : "plain HTTP"}). `
      + "Use the public HTTPS address of this server in the alert instead; a test signal from this page still works.";
  } else if (local) {
    note.textContent = `This page is at ${window.location.origin}, a private address TradingView cannot reach. Use this server’s public HTTPS address in the alert.`;
  }
}

function botDirection(bot) {
  return (bot.settings || {}).strategy === "short" ? "short" : "long";
}

function hookPair(bot) {
  const select = hookPart("[data-webhook-pair]");
  return bot.pairs.includes(select.value) ? select.value : bot.pairs[0];
}

// One message as [name, value, raw] fields; `raw` values are JSON numbers written as typed.
function messageFields(kind, bot, secret) {
  const settings = bot.settings || {};
  const pair = hookPair(bot);
  if (kind === "signal_enter" || kind === "signal_exit") {
    const lag = settings.webhook_max_lag_seconds;
    return [
      ["secret", secret || SECRET_PLACEHOLDER],
      ["bot_uuid", bot.id],
      ["action", `${kind === "signal_enter" ? "enter" : "exit"}_${botDirection(bot)}`],
      ["timestamp", "{{timenow}}"],
      ["max_lag", String(lag === undefined || lag === null ? 300 : lag)],
      ["trigger_price", "{{close}}"],
      ["tv_exchange", "{{exchange}}"],
      ["tv_instrument", "{{ticker}}"],
    ];
  }
  const fields = [
    ["message_type", "bot"],
    ["bot_id", bot.id],
    ["email_token", secret || SECRET_PLACEHOLDER],
    ["delay_seconds", "0", true],
    ["pair", pair],
  ];
  // A bot with a lag refuses DCA-format messages that do not say when they were sent.
  if (settings.webhook_max_lag_seconds !== undefined && settings.webhook_max_lag_seconds !== null) fields.push(["timestamp", "{{timenow}}"]);
  if (kind !== "start_deal") fields.push(["action", kind]);
  if (kind === "add_funds_in_quote") {
    const { quote } = pairParts(pair);
    const volume = readAmount(hookPart("#webhook-volume").value);
    fields.push(volume !== null && !isZero(volume) ? ["volume", volume, true] : ["volume", `<volume in ${quote || "quote"}>`]);
    const price = readAmount(hookPart("#webhook-price").value);
    if (price !== null && !isZero(price)) fields.push(["price", price, true]);
  }
  return fields;
}

function messageText(fields) {
  const lines = fields.map(([name, value, raw]) => `  ${JSON.stringify(name)}: ${raw ? value : JSON.stringify(String(value))}`);
  return `{\n${lines.join(",\n")}\n}`;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// The messages, with the secret when it is known, for the chosen pair.
function renderMessages() {
  const bot = dca.bot;
  if (!bot) return;
  const settings = bot.settings || {};
  const direction = botDirection(bot);
  for (const box of dca.root.querySelectorAll("[data-webhook] [data-message]")) {
    setText(box.querySelector("[data-message-text]"), messageText(messageFields(box.dataset.message, bot, hook.secret)));
  }
  const strategy = Array.isArray(settings.strategy_list) && settings.strategy_list[0] ? settings.strategy_list[0].strategy : "nonstop";
  const startNote = strategy !== "trading_view"
    ? `This bot’s start condition is “${strategy}”, so a start message is recorded and refused: deals start by alert only with the start condition “TradingView” (trading_view).`
    : bot.enabled
      ? `Starts a deal on ${marketName(hookPair(bot))}, within the bot’s limits (max active deals, deals on the same pair).`
      : "The bot is disabled: a start message is refused until you enable it.";
  setText(hookPart('[data-message="start_deal"] [data-message-note]'), startNote);
  setText(hookPart('[data-message="start_trailing"] [data-message-note]'), settings.trailing_enabled
    ? "Starts trailing the take profit of the open deal on the pair from the current price, when the trailing exit from there is still above the average price."
    : "This bot has no trailing take profit (trailing_enabled), so this message is refused.");
  const enter = `enter_${direction}`;
  const exit = `exit_${direction}`;
  setText(hookPart('[data-message="signal_enter"] [data-message-title]'), `Signal bot: ${enter}`);
  setText(hookPart('[data-message="signal_exit"] [data-message-title]'), `Signal bot: ${exit}`);
  const enterNote = bot.type === "signal"
    ? `Opens a position: a deal of the bot’s base order size on the chart’s pair${bot.enabled ? "" : " (refused while the bot is disabled)"}.`
    : strategy === "trading_view"
      ? "Starts a deal, like “Start a deal”."
      : "Starts a deal like “Start a deal”; refused while the start condition is not TradingView.";
  setText(hookPart('[data-message="signal_enter"] [data-message-note]'), enterNote);
  setText(hookPart('[data-message="signal_exit"] [data-message-note]'), "Closes the bot’s open deals on the chart’s pair at market.");
  // Both pickers (test signal, signed examples) come from one template: name their entries alike.
  dca.root.querySelectorAll('[data-webhook] option[value="signal_enter"]').forEach((n) => setText(n, `Signal bot: ${enter}`));
  dca.root.querySelectorAll('[data-webhook] option[value="signal_exit"]').forEach((n) => setText(n, `Signal bot: ${exit}`));
  const { quote } = pairParts(hookPair(bot));
  dca.root.querySelectorAll("[data-webhook-quote]").forEach((n) => setText(n, quote || "quote"));
  hookPart("[data-signed-only]").hidden = settings.webhook_require_signature !== true;
  renderSigned(bot);
}

// ---- Signed requests (WH-4): examples for the person's own senders

// The body a signed example posts: the chosen message without its secret (the signature stands in
// for it), compact. The chart's placeholders a script has no chart for are filled in as the test
// signal fills them (trigger_price is optional and left out); {{timenow}} stays, for the script to
// fill in when it runs, as TradingView does when an alert fires.
function signedBody(kind, bot) {
  const { base, quote } = pairParts(hookPair(bot));
  const filled = { "{{exchange}}": "BINANCE", "{{ticker}}": `${base}${quote}` };
  const fields = messageFields(kind, bot, "")
    .filter(([name, value]) => name !== "email_token" && name !== "secret" && value !== "{{close}}")
    .map(([name, value, raw]) => [name, Object.hasOwn(filled, value) ? filled[value] : value, raw]);
  return `{${fields.map(([name, value, raw]) => `${JSON.stringify(name)}:${raw ? value : JSON.stringify(String(value))}`).join(",")}}`;
}

// A POSIX shell word holding `text` as is.
function shellQuoted(text) {
  return `'${String(text).replace(/'/g, "'\\''")}'`;
}

// A Python string literal holding `text` as is.
function pythonQuoted(text) {
  return `'${String(text).replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function signedShell(url, secret, body) {
  const dated = body.includes("{{timenow}}");
  return [
    "#!/bin/sh",
    "# Signs the message and posts it with a Bulwark-Signature header (needs openssl and curl).",
    `url=${shellQuoted(url)}`,
    `secret=${shellQuoted(secret)}`,
    `body=${shellQuoted(body)}`,
    ...(dated ? [
      "# {{timenow}}: the time it is sent, as TradingView fills it in.",
      "body=$(printf '%s' \"$body\" | sed \"s/{{timenow}}/$(date -u +%Y-%m-%dT%H:%M:%SZ)/\")",
    ] : []),
    "t=$(date +%s)",
    "sig=$(printf '%s.%s' \"$t\" \"$body\" | openssl dgst -sha256 -hmac \"$secret\" | sed 's/^.* //')",
    "curl -sS -w '\\nHTTP %{http_code}\\n' \"$url\" \\",
    "  -H 'Content-Type: application/json' \\",
    "  -H \"Bulwark-Signature: t=$t,v1=$sig\" \\",
    "  --data-binary \"$body\"",
  ].join("\n");
}

function signedPython(url, secret, body) {
  const dated = body.includes("{{timenow}}");
  return [
    "#!/usr/bin/env python3",
    "# Signs the message and posts it with a Bulwark-Signature header.",
    "import hashlib",
    "import hmac",
    "import time",
    "import urllib.error",
    "import urllib.request",
    "",
    `url = ${pythonQuoted(url)}`,
    `secret = ${pythonQuoted(secret)}`,
    ...(dated ? [
      `body = ${pythonQuoted(body)}`,
      "# {{timenow}}: the time it is sent, as TradingView fills it in.",
      "body = body.replace(\"{{timenow}}\", time.strftime(\"%Y-%m-%dT%H:%M:%SZ\", time.gmtime())).encode()",
    ] : [`body = ${pythonQuoted(body)}.encode()`]),
    "t = str(int(time.time()))",
    "sig = hmac.new(secret.encode(), t.encode() + b\".\" + body, hashlib.sha256).hexdigest()",
    "request = urllib.request.Request(url, data=body, method=\"POST\", headers={",
    "    \"Content-Type\": \"application/json\",",
    "    \"Bulwark-Signature\": f\"t={t},v1={sig}\",",
    "})",
    "try:",
    "    with urllib.request.urlopen(request, timeout=10) as response:",
    "        print(response.status, response.read().decode())",
    "except urllib.error.HTTPError as error:",
    "    print(error.code, error.read().decode())",
  ].join("\n");
}

// The examples for the chosen message, with the secret when it is known.
function renderSigned(bot) {
  const kind = hookPart("[data-signed-message]").value;
  const url = webhookUrl(kind.startsWith("signal_") ? "signal" : "dca");
  const body = signedBody(kind, bot);
  const secret = hook.secret || SECRET_PLACEHOLDER;
  setText(hookPart('[data-signed-example="sh"] [data-signed-text]'), signedShell(url, secret, body));
  setText(hookPart('[data-signed-example="python"] [data-signed-text]'), signedPython(url, secret, body));
}

// A signal bot takes the Signal-bot message only: the DCA-bot format's URL, messages and test
// choices are not offered for it.
function reflectBotType(bot) {
  const signalBot = bot.type === "signal";
  dca.root.querySelectorAll('[data-webhook] [data-format="dca"]').forEach((node) => {
    node.hidden = signalBot;
    if (node.tagName === "OPTION") node.disabled = signalBot;
  });
  for (const select of [hookPart("#test-message"), hookPart("[data-signed-message]")]) {
    if (signalBot && select.selectedOptions[0] && select.selectedOptions[0].disabled) select.value = "signal_enter";
  }
  setText(hookPart("[data-webhook-pair-label]"), signalBot ? "Pair of the test signals" : "Pair of the DCA-bot messages and test signals");
  setText(hookPart("[data-signal-intro]"), signalBot
    ? "A signal bot takes 3Commas’ Signal-bot format (to the Signal-bot URL): TradingView fills in the {{…}} placeholders when the alert fires, and the pair is the one of the chart the alert is made on."
    : "3Commas’ Signal-bot format (to the second URL): TradingView fills in the {{…}} placeholders when the alert fires, and the pair is the one of the chart the alert is made on.");
}

function renderWebhook(bot) {
  reflectBotType(bot);
  const box = hookPart("[data-webhook-pair-box]");
  box.hidden = bot.pairs.length < 2;
  const select = hookPart("[data-webhook-pair]");
  if (select.dataset.sig !== bot.pairs.join(",")) {
    const chosen = select.value;
    select.dataset.sig = bot.pairs.join(",");
    select.replaceChildren(...bot.pairs.map((p) => el("option", { value: p }, marketName(p))));
    if (bot.pairs.includes(chosen)) select.value = chosen;
  }
  const volume = hookPart("#webhook-volume");
  const settings = bot.settings || {};
  if (!volume.dataset.filled && settings.base_order_volume && settings.base_order_volume_type !== "base_currency") {
    volume.dataset.filled = "true";
    volume.value = String(settings.base_order_volume);
  }
  const form = dcaPart("[data-webhook-settings]");
  if (!hook.settingsFilled) {
    hook.settingsFilled = true;
    fillWebhookFields(form, settings);
  }
  renderMessages();
}

// The secret for the messages: from the field, a rotation, or the bots page right after creation.
function useSecret(secret, said) {
  hook.secret = secret;
  const form = hookPart("[data-secret-form]");
  clearMessages(form);
  form.elements.webhook_secret.value = secret;
  hookPart("[data-secret-ok]").textContent = said;
  renderMessages();
}

// The field as typed: a whole secret fills the messages at once; `strict` (on "Fill in") also says
// what is wrong with anything else.
function readSecretField(strict) {
  const form = hookPart("[data-secret-form]");
  const input = form.elements.webhook_secret;
  const value = input.value.trim();
  clearMessages(form);
  hookPart("[data-secret-ok]").textContent = "";
  if (SECRET_PATTERN.test(value)) {
    hook.secret = value.toLowerCase();
    hookPart("[data-secret-ok]").textContent = "The messages below carry your secret now. It stays in this page only.";
  } else {
    hook.secret = "";
    if (strict) {
      showError(form, "webhook_secret", value === ""
        ? "Paste the bot’s webhook secret first."
        : "That is not a webhook secret: it is 64 characters, 0–9 and a–f, as shown when the bot was created or its secret rotated.");
    }
  }
  renderMessages();
}

function forgetSecret() {
  hook.secret = "";
  const form = hookPart("[data-secret-form]");
  form.elements.webhook_secret.value = "";
  clearMessages(form);
  hookPart("[data-secret-ok]").textContent = "";
  renderMessages();
}

async function copyText(text, said, slots) {
  const ok = hookPart(slots ? slots.ok : "[data-copy-ok]");
  const error = hookPart(slots ? slots.error : "[data-copy-error]");
  ok.textContent = "";
  error.textContent = "";
  try {
    await navigator.clipboard.writeText(text);
    ok.textContent = said;
  } catch (_) {
    error.textContent = "The browser did not allow copying. Select the text and copy it by hand.";
  }
}

// What a test signal will do, asked before it is sent: it acts for real.
function testQuestion(kind, bot) {
  const market = marketName(hookPair(bot));
  const account = dca.accountName ? `“${dca.accountName}”` : "the bot’s exchange account";
  const { quote } = pairParts(hookPair(bot));
  const volume = readAmount(hookPart("#webhook-volume").value);
  const price = readAmount(hookPart("#webhook-price").value);
  const enter = kind === "start_deal" || kind === "signal_enter";
  const what = {
    close_at_market_price: `Bulwark closes this bot’s open deals on ${market} at the market price.`,
    close_at_market_price_all: "Bulwark closes every open deal of this bot at the market price.",
    add_funds_in_quote: `Bulwark adds ${grouped(volume || "0")} ${quote} to the open deal on ${market}${price ? `, as a limit order at ${grouped(price)}` : " at market"}.`,
    start_trailing: `Bulwark starts trailing the take profit of the open deal on ${market}.`,
    signal_exit: `Bulwark closes this bot’s open deals on ${market} at the market price.`,
  }[kind];
  const effect = enter
    ? `Bulwark starts a deal on ${market} and places its orders on ${account}.`
    : what;
  return `Send this test signal for real? ${effect} It is sent as TradingView would send it; only the secret makes it count.`;
}

// The message as TradingView sends it: placeholders filled in (the time, the pair's last price,
// the exchange and the ticker of the chosen pair). A price that cannot be read leaves trigger_price out.
async function testBody(kind, bot) {
  const pair = hookPair(bot);
  const { base, quote } = pairParts(pair);
  const needsPrice = messageFields(kind, bot, hook.secret).some(([, value]) => value === "{{close}}");
  const price = needsPrice ? await lastPrice(bot.exchange_account_id, pair) : null;
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const filled = {
    "{{timenow}}": now,
    "{{close}}": price,
    // Bulwark trades Binance's spot markets (the paper market copies them).
    "{{exchange}}": "BINANCE",
    "{{ticker}}": `${base}${quote}`,
  };
  const fields = messageFields(kind, bot, hook.secret)
    .map(([name, value, raw]) => [name, Object.hasOwn(filled, value) ? filled[value] : value, raw])
    .filter(([, value]) => value !== null);
  return messageText(fields);
}

async function sendTestSignal(form) {
  const ok = hookPart("[data-test-ok]");
  const error = hookPart("[data-test-error]");
  ok.textContent = "";
  error.textContent = "";
  const bot = dca.bot;
  if (!bot) return;
  const kind = form.elements.message.value;
  if ((bot.settings || {}).webhook_require_signature === true) {
    error.textContent = "This bot takes only signed requests, and a test signal is sent unsigned, as TradingView sends it: it would be refused (401 invalid_signature). "
      + "Use a signed example below, or turn “Take only signed requests” off in the webhook settings.";
    return;
  }
  if (!hook.secret) {
    error.textContent = "Fill in your secret first: a signal without it is refused (401 invalid_token), and nothing happens.";
    hookPart("#webhook-secret").focus();
    return;
  }
  const volume = readAmount(hookPart("#webhook-volume").value);
  if (kind === "add_funds_in_quote" && (volume === null || isZero(volume))) {
    error.textContent = "Write the volume to add in the “Add funds” message first, such as 25.";
    hookPart("#webhook-volume").focus();
    return;
  }
  if (!window.confirm(testQuestion(kind, bot))) return;
  const button = form.querySelector("[data-test-send]");
  button.disabled = true;
  const format = kind.startsWith("signal_") ? "signal" : "dca";
  let status = 0;
  let data = null;
  try {
    const res = await fetch(webhookUrl(format), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: await testBody(kind, bot),
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
      referrerPolicy: "no-referrer",
    });
    status = res.status;
    try { data = await res.json(); } catch (_) { data = null; }
  } catch (_) {
    status = 0;
  }
  button.disabled = false;
  if (status === 202 && data && data.signal_id) {
    ok.replaceChildren(`Accepted (202): signal `, el("code", { "data-test-signal": data.signal_id }, data.signal_id),
      ". Bulwark acts on it in a moment; the log below shows what came of it.");
    hook.pending.add(data.signal_id);
  } else if (status === 0) {
    error.textContent = "The webhook URL could not be reached from this browser.";
  } else {
    const code = data && data.error ? ` ${data.error}` : "";
    error.textContent = `Refused (${status}${code}): ${data && data.message ? data.message : "no explanation came with the answer."}`;
  }
  await loadSignals();
}

function signalActionCell(signal) {
  const params = signal.params || {};
  const { quote } = pairParts(signal.pair || "");
  const extra = [];
  if (params.volume !== undefined && params.volume !== null) extra.push(" +", amountText(params.volume), quote ? ` ${quote}` : "");
  if (params.price !== undefined && params.price !== null) extra.push(` at ${grouped(params.price)}`);
  if (params.order && params.order.amount !== undefined) {
    extra.push(" order ", amountText(params.order.amount), params.order.currency_type ? ` (${params.order.currency_type})` : "");
  }
  return el("td", {}, SIGNAL_ACTIONS[signal.action] || signal.action, ...extra, el("span", { class: "sub" }, signal.action));
}

function signalsTable(signals) {
  if (signals.length === 0) return el("p", { class: "help" }, "No signals yet. Send a test signal above, or set up an alert.");
  return table([["Received"], ["Action"], ["Pair"], ["State"], ["Outcome"], ["From"]], signals.map((signal) => {
    const delayed = signal.state === "pending" && signal.due_at && signal.due_at !== signal.received_at;
    return el("tr", { "data-signal-row": signal.id, "data-signal-state": signal.state },
      el("td", {}, timeEl(signal.received_at)),
      signalActionCell(signal),
      el("td", {}, signal.pair ? marketName(signal.pair) : "—"),
      el("td", { "data-col": "state" }, pill(signal.state, SIGNAL_STATES[signal.state])),
      el("td", { class: "signal-outcome", "data-col": "outcome" }, signal.outcome
        || (delayed ? el("span", {}, "Waits until ", timeEl(signal.due_at), " (delay_seconds).") : signal.state === "pending" ? "Being acted on." : "")),
      el("td", { class: "mono" }, signal.source_ip));
  }));
}

async function loadSignals() {
  const run = dcaRun("signals");
  const result = await api("GET", `${BOTS_API}/${encodeURIComponent(dca.root.dataset.bot)}/signals${revealQuery()}`);
  if (dca.runs.signals !== run) return;
  const box = dcaPart("[data-signals-list]");
  if (!result.ok || !Array.isArray(result.data)) {
    drawOnce(box, `error ${result.status} ${describe(result)}`, () => el("p", { class: "form-error", role: "alert" }, describe(result)));
    return;
  }
  drawOnce(box, JSON.stringify(result.data), () => signalsTable(result.data));
  // A signal acted on may have started, closed or added to a deal: the deals follow at once.
  const pending = new Set(result.data.filter((s) => s.state === "pending").map((s) => s.id));
  const settled = [...hook.pending].some((id) => !pending.has(id));
  hook.pending = pending;
  if (settled) await loadBotPage();
}

async function rotateSecret(button) {
  const error = dcaPart("[data-rotate-error]");
  error.textContent = "";
  const name = dca.bot ? dca.bot.name : dca.root.dataset.botName;
  if (!window.confirm(`Make a new webhook secret for “${name}”? The current one keeps working for 24 hours, so you can update your alerts; after that it is refused.`)) return;
  button.disabled = true;
  const result = await api("POST", `${BOTS_API}/${encodeURIComponent(dca.root.dataset.bot)}/rotate_webhook_secret`);
  button.disabled = false;
  if (!result.ok || !result.data || !result.data.webhook_secret) {
    error.textContent = describe(result);
    return;
  }
  const panel = dcaPart("[data-rotated]");
  clearMessages(panel);
  panel.querySelectorAll("[data-rotated-copy-ok], [data-rotated-copy-error]").forEach((n) => { n.textContent = ""; });
  panel.querySelector("[data-rotated-secret]").textContent = result.data.webhook_secret;
  panel.querySelector("[data-rotated-grace]").replaceChildren(
    el("strong", {}, "The previous secret keeps working until "), timeEl(result.data.previous_valid_until),
    el("strong", {}, " (24 hours)"), ": update your alerts before then; after that, alerts still carrying it are refused. ",
    "A secret the kill switch revoked stays revoked.");
  panel.hidden = false;
  panel.focus();
  useSecret(result.data.webhook_secret, "The messages below carry the new secret.");
}

async function saveWebhookSettings(form) {
  clearMessages(form);
  const ok = form.querySelector("[data-webhook-settings-ok]");
  ok.textContent = "";
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  const result = await api("PATCH", `${BOTS_API}/${encodeURIComponent(dca.root.dataset.bot)}`, webhookSettings(form, true));
  button.disabled = false;
  if (!result.ok) {
    const field = result.data && result.data.field ? result.data.field : "_form";
    if (markField(form, field, describe(result))) fieldInputs(form, field)[0].focus();
    else showError(form, "_form", describe(result));
    return;
  }
  fillWebhookFields(form, result.data.settings || {});
  ok.textContent = "Saved. The alert messages above follow the new settings.";
  await loadBotPage();
}

// Right after creation, the bots page that opened this tab hands over the secret it still shows.
function askOpenerForSecret() {
  const opener = window.opener;
  if (!opener || opener === window) return;
  const bot = dca.root.dataset.bot;
  const answer = (event) => {
    const data = event.data;
    if (event.origin !== window.location.origin || event.source !== opener) return;
    if (!data || data.type !== "bulwark:webhook-secret" || data.bot !== bot || !SECRET_PATTERN.test(String(data.secret))) return;
    window.removeEventListener("message", answer);
    useSecret(data.secret, "The messages below carry the secret the bots page showed when the bot was created.");
  };
  window.addEventListener("message", answer);
  opener.postMessage({ type: "bulwark:webhook-secret?", bot }, window.location.origin);
}

function startWebhook() {
  reflectWebhookUrls();
  for (const format of ["dca", "signal"]) {
    hookPart(`[data-copy-url="${format}"]`).addEventListener("click", () => copyText(webhookUrl(format), "Copied the webhook URL."));
  }
  dca.root.querySelectorAll("[data-webhook] [data-message]").forEach((box) => {
    box.querySelector("[data-copy-message]").addEventListener("click", () => {
      const title = box.querySelector("h4").textContent;
      const text = box.querySelector("[data-message-text]").textContent;
      copyText(text, hook.secret
        ? `Copied the “${title}” message, with your secret.`
        : `Copied the “${title}” message. It holds ${SECRET_PLACEHOLDER}: fill in your secret above first, or replace it in the alert.`);
    });
  });
  const secretForm = hookPart("[data-secret-form]");
  secretForm.addEventListener("submit", (event) => { event.preventDefault(); readSecretField(true); });
  secretForm.elements.webhook_secret.addEventListener("input", () => readSecretField(false));
  hookPart("[data-secret-forget]").addEventListener("click", forgetSecret);
  hookPart("[data-webhook-pair]").addEventListener("change", renderMessages);
  hookPart("[data-signed-message]").addEventListener("change", () => { if (dca.bot) renderSigned(dca.bot); });
  dca.root.querySelectorAll("[data-webhook] [data-signed-example]").forEach((box) => {
    box.querySelector("[data-copy-signed]").addEventListener("click", () => {
      const what = box.dataset.signedExample === "sh" ? "shell" : "Python";
      copyText(box.querySelector("[data-signed-text]").textContent, hook.secret
        ? `Copied the ${what} example, with your secret.`
        : `Copied the ${what} example. It holds ${SECRET_PLACEHOLDER}: fill in your secret above first, or replace it in the script.`,
      { ok: "[data-signed-copy-ok]", error: "[data-signed-copy-error]" });
    });
  });
  dca.root.querySelectorAll("[data-webhook] [data-message-field]").forEach((input) => input.addEventListener("input", renderMessages));
  const testForm = hookPart("[data-test-form]");
  testForm.addEventListener("submit", (event) => { event.preventDefault(); sendTestSignal(testForm); });
  dcaPart("[data-rotate-secret]").addEventListener("click", (event) => rotateSecret(event.currentTarget));
  const rotated = dcaPart("[data-rotated]");
  rotated.querySelector("[data-copy-rotated]").addEventListener("click", async () => {
    rotated.querySelectorAll("[data-rotated-copy-ok], [data-rotated-copy-error]").forEach((n) => { n.textContent = ""; });
    try {
      await navigator.clipboard.writeText(rotated.querySelector("[data-rotated-secret]").textContent);
      rotated.querySelector("[data-rotated-copy-ok]").textContent = "Copied. Keep it where you keep passwords.";
    } catch (_) {
      rotated.querySelector("[data-rotated-copy-error]").textContent = "The browser did not allow copying. Select the secret and copy it by hand.";
    }
  });
  const settingsForm = dcaPart("[data-webhook-settings]");
  bindTradingViewPreset(settingsForm);
  settingsForm.addEventListener("submit", (event) => { event.preventDefault(); saveWebhookSettings(settingsForm); });
  // Leaving the page (or it going into the back-forward cache) takes the secret with it.
  window.addEventListener("pagehide", () => {
    forgetSecret();
    rotated.querySelector("[data-rotated-secret]").textContent = "";
    rotated.hidden = true;
  });
  askOpenerForSecret();
}

// ---- The deals page

async function loadDealsPage() {
  const form = dcaPart("[data-deal-filters]");
  const params = {};
  if (form.elements.bot_id.value) params.bot_id = form.elements.bot_id.value;
  if (form.elements.status.value) params.status = form.elements.status.value;
  const run = dcaRun("deals");
  const result = await api("GET", `${DEALS_API}${revealQuery(params)}`);
  if (dca.runs.deals !== run) return;
  const box = dcaPart("[data-deals-list]");
  if (!result.ok || !Array.isArray(result.data)) {
    box.dataset.sig = "";
    box.replaceChildren(el("p", { class: "form-error", role: "alert" }, describe(result)));
    return;
  }
  dca.deals = result.data;
  drawOnce(box, JSON.stringify([result.data, [...dca.botNames.entries()]]), () => [
    dealsTable(result.data, dca.botNames, Object.keys(params).length ? "No deal matches these filters." : null),
    result.data.length >= 100 && el("p", { class: "help" }, "The newest 100 deals; choose a bot or a status to see others."),
  ]);
  drawOnce(dcaPart("[data-profit-days]"), JSON.stringify(result.data.map((d) => [d.status, d.closed_at, d.profit_quote, d.pair])),
    () => profitDaysTable(result.data));
}

async function startDealsPage() {
  const form = dcaPart("[data-deal-filters]");
  dca.refresh = loadDealsPage;
  dca.botNames = new Map();
  bindDcaReveal();
  const wanted = new URLSearchParams(window.location.search);
  const bots = await api("GET", BOTS_API);
  if (bots.ok && Array.isArray(bots.data)) {
    dca.botNames = new Map(bots.data.map((b) => [b.id, b.name]));
    form.elements.bot_id.append(...bots.data.map((b) => el("option", { value: b.id }, b.name)));
  }
  for (const name of ["bot_id", "status"]) {
    const value = wanted.get(name);
    if (value && [...form.elements[name].options].some((o) => o.value === value)) form.elements[name].value = value;
  }
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("change", () => {
    const url = new URL(window.location.href);
    for (const name of ["bot_id", "status"]) {
      if (form.elements[name].value) url.searchParams.set(name, form.elements[name].value);
      else url.searchParams.delete(name);
    }
    window.history.replaceState(null, "", url);
    loadDealsPage();
  });
  await loadDealsPage();
  keepRefreshing(loadDealsPage, () => (dca.deals || []).some((d) => !FINISHED.has(d.status)));
}

// ---- One deal

const ORDER_ROLES = { base: "Base order", take_profit: "Take profit", close: "Close", add_funds: "Add funds", manual: "Manual" };

// A take profit's safety_index is its step (1-based; orders from before steps carry 0, step 1).
function takeProfitStep(order) {
  return Math.max(1, Number(order.safety_index) || 0);
}

// Whether the deal takes profit in more than one step.
function steppedDeal(deal) {
  return (deal.take_profit_targets || []).length > 1 || deal.orders.some((o) => o.role === "take_profit" && takeProfitStep(o) > 1);
}

function orderRole(order, stepped) {
  if (order.role === "safety") return `Safety order ${order.safety_index}`;
  if (order.role === "take_profit" && stepped) return `Take profit ${takeProfitStep(order)}`;
  return ORDER_ROLES[order.role] || order.role;
}

// "0.001 BTC and 0.02 USDT", leaving out zero fees; the mask when hidden.
function feesEl(order, base, quote) {
  const parts = [[order.fee_base, base], [order.fee_quote, quote]].filter(([v]) => v === "***" || !isZero(v));
  if (parts.length === 0) return "0";
  const out = [];
  parts.forEach(([value, asset], i) => { if (i) out.push(" + "); out.push(amountText(value), ` ${asset}`); });
  return el("span", {}, ...out);
}

function dealOrdersTable(deal) {
  const { base, quote } = pairParts(deal.pair);
  if (deal.orders.length === 0) return el("p", { class: "help" }, "No orders yet.");
  const errors = deal.orders.some((o) => o.error);
  const stepped = steppedDeal(deal);
  return table([["Role"], ["Side"], ["Type"], [`Price (${quote})`, "num"], ["Quantity", "num"], ["State"],
    [`Filled (${base})`, "num"], [`Value (${quote})`, "num"], ["Fees", "num"], ...(errors ? [["Error"]] : [])],
  deal.orders.map((o) => el("tr", { "data-order-role": o.role, "data-order-state": o.state, class: o.error ? "problem" : null },
    el("td", {}, orderRole(o, stepped)),
    el("td", {}, sidePill(o.side)),
    el("td", {}, o.type),
    el("td", { class: "num", title: o.type === "market" ? "A market order: the price it was checked against" : null }, grouped(o.price)),
    el("td", { class: "num" }, o.quantity !== null && o.quantity !== undefined
      ? el("span", {}, amountText(o.quantity), ` ${base}`)
      : o.quote_amount !== null && o.quote_amount !== undefined ? el("span", {}, amountText(o.quote_amount), ` ${quote}`) : ""),
    el("td", {}, o.state, o.cancel_requested && !["canceled", "filled"].includes(o.state) ? " (cancel asked)" : ""),
    el("td", { class: "num", "data-col": "executed_quantity" }, amountText(o.executed_quantity)),
    el("td", { class: "num", "data-col": "executed_quote" }, amountText(o.executed_quote)),
    el("td", { class: "num" }, feesEl(o, base, quote)),
    errors && el("td", { class: "error-cell" }, o.error || ""))));
}

// The decimals of the deal's market's price step, to show computed prices (the average, the
// take profit) as the market would; 8 until the market is known.
async function loadDealMarket(deal) {
  const result = await api("GET", `${ACCOUNTS_API}/${encodeURIComponent(deal.exchange_account_id)}/markets`);
  const market = result.ok && Array.isArray(result.data) ? result.data.find((m) => m.pair === deal.pair) : null;
  if (!market || !market.tick_size) return;
  dca.pricePlaces = (String(market.tick_size).split(".")[1] || "").length;
  renderDeal(dca.deal);
}

async function loadDealChart() {
  const run = dcaRun("chart");
  dca.chartAt = Date.now();
  const img = dcaPart("[data-chart]");
  const note = dcaPart("[data-chart-note]");
  const { svg, problem } = await fetchChartSvg(`${DEALS_API}/${encodeURIComponent(dca.root.dataset.deal)}/chart.svg`);
  if (dca.runs.chart !== run) return;
  if (svg !== null) {
    // An image, not markup: the SVG never becomes part of the page's DOM.
    img.src = `data:image/svg+xml;base64,${base64(svg)}`;
    note.classList.remove("form-error");
    note.textContent = `One-minute candles. Filled triangles are orders that traded, hollow ones with a dashed line wait on the book. Updated ${new Date().toLocaleTimeString()}.`;
  } else {
    note.classList.add("form-error");
    note.textContent = `The chart could not be loaded: ${problem}`;
  }
}

async function loadDeal() {
  const run = dcaRun("deal");
  const result = await api("GET", `${DEALS_API}/${encodeURIComponent(dca.root.dataset.deal)}${revealQuery()}`);
  if (dca.runs.deal !== run) return;
  const error = dcaPart("[data-deal-error]");
  if (!result.ok || !result.data) {
    error.textContent = describe(result);
    error.dataset.fromLoad = "true";
    return;
  }
  if (error.dataset.fromLoad === "true") { error.textContent = ""; error.dataset.fromLoad = ""; }
  const deal = result.data;
  const before = dca.deal;
  dca.deal = deal;
  renderDeal(deal);
  const moved = !before || JSON.stringify(before.orders.map((o) => [o.state, o.price])) !== JSON.stringify(deal.orders.map((o) => [o.state, o.price]));
  if (moved || !dca.chartAt || Date.now() - dca.chartAt >= IDLE_REFRESH_MS) await loadDealChart();
}

// Where one take-profit step stands, from its orders (the latest last): [key, words, pill tone].
function targetState(deal, orders, last, price) {
  const latest = orders[orders.length - 1];
  const partly = orders.some((o) => o.executed_quantity && o.executed_quantity !== "***" && !isZero(o.executed_quantity));
  if (orders.some((o) => o.state === "filled")) return ["filled", "filled", "ok"];
  if (latest && latest.state === "open") return ["open", partly ? "partly filled, on the book" : "on the book", null];
  if (latest && latest.state === "pending") return ["pending", "being placed", null];
  const finished = FINISHED.has(deal.status);
  if (last && deal.trailing_peak && !finished) return ["trailing", ["trailing from ", price(deal.trailing_peak)], "warn"];
  if (latest && latest.state === "rejected") return ["rejected", "refused by the exchange", "danger"];
  if (finished) return [partly ? "partly_filled" : "not_reached", partly ? "partly filled" : "not reached", null];
  if (latest && latest.state === "canceled") return ["replacing", "being placed again", null];
  if (last && deal.trailing_deviation) return ["trails", "trails once reached (closes at market)", null];
  return ["waiting", "not on the book", null];
}

// The deal's take-profit targets (one without steps): share, profit, price, its order's quantity
// (masked like every amount), and whether it is done.
function dealTargetsTable(deal, price) {
  const { base, quote } = pairParts(deal.pair);
  const targets = deal.take_profit_targets || [];
  if (targets.length === 0) {
    return el("p", { class: "help" }, FINISHED.has(deal.status)
      ? "None: the deal ended before it bought."
      : "The targets are set once the base order fills.");
  }
  const lastStep = targets[targets.length - 1].step;
  return table([["Step"], ["Share", "num"], ["Profit", "num"], [`Price (${quote})`, "num"], [`Quantity (${base})`, "num"], ["State"]],
    targets.map((t) => {
      const orders = deal.orders.filter((o) => o.role === "take_profit" && takeProfitStep(o) === t.step);
      const latest = orders[orders.length - 1];
      const [key, words, tone] = targetState(deal, orders, t.step === lastStep, price);
      return el("tr", { "data-target-step": String(t.step), "data-step-state": key },
        el("td", {}, `TP${t.step}`),
        el("td", { class: "num", "data-col": "amount_percentage" }, `${grouped(t.amount_percentage)} %`),
        el("td", { class: "num", "data-col": "profit_percentage" }, `+${grouped(t.profit_percentage)} %`),
        el("td", { class: "num", "data-col": "price" }, numberEl(t.price, dca.pricePlaces ?? 8)),
        el("td", { class: "num", "data-col": "quantity" }, latest && latest.quantity !== null && latest.quantity !== undefined ? amountText(latest.quantity) : "—"),
        el("td", { "data-col": "state" }, el("span", {
          class: tone ? `pill ${tone}` : null,
          "data-trailing-peak": key === "trailing" ? deal.trailing_peak : null,
        }, ...[].concat(words))));
    }));
}

function dealBusy(deal) {
  return Boolean(deal) && (!FINISHED.has(deal.status) || deal.orders.some((o) => o.state === "open" || o.state === "pending"));
}

function renderDeal(deal) {
  const { base, quote } = pairParts(deal.pair);
  const finished = FINISHED.has(deal.status);
  dcaPart("[data-deal-status]").replaceChildren(statusPill(deal.status));
  dcaPart("[data-deal-status-text]").textContent = (DEAL_STATUS[deal.status] || [""])[0];
  dcaPart("[data-deal-actions]").hidden = finished;
  dca.root.querySelectorAll("[data-quote-unit]").forEach((n) => { n.textContent = quote; });
  const price = (value) => (value ? el("span", {}, numberEl(value, dca.pricePlaces ?? 8), ` ${quote}`) : "—");
  drawOnce(dcaPart("[data-deal-facts]"), JSON.stringify([{ ...deal, orders: null }, dca.pricePlaces]), () => [
    el("dt", {}, "Status"), el("dd", { "data-fact": "status" }, deal.status),
    el("dt", {}, "Close reason"), el("dd", { "data-fact": "close_reason" }, deal.close_reason ? CLOSE_REASONS[deal.close_reason] || deal.close_reason : "none yet"),
    el("dt", {}, "Strategy"), el("dd", {}, deal.strategy),
    el("dt", {}, "Base order price"), el("dd", {}, price(deal.base_price)),
    el("dt", {}, "Average price"), el("dd", { "data-fact": "average_price" }, price(deal.average_price)),
    el("dt", {}, (deal.take_profit_targets || []).length > 1 ? "First take profit price" : "Take profit price"),
    el("dd", { "data-fact": "take_profit_price" }, price(deal.take_profit_price)),
    el("dt", {}, "Stop loss price"), el("dd", { "data-fact": "stop_loss_price" }, deal.stop_loss_price ? price(deal.stop_loss_price) : "none"),
    el("dt", {}, "Position"), el("dd", { "data-fact": "position" }, amountText(deal.position_base), ` ${base}`),
    el("dt", {}, "Profit"), el("dd", { "data-fact": "profit" }, finished ? profitEl(deal.profit_quote, quote) : "when the deal closes"),
    el("dt", {}, "Started"), el("dd", {}, timeEl(deal.created_at)),
    el("dt", {}, "Closed"), el("dd", {}, deal.closed_at ? timeEl(deal.closed_at) : "not yet"),
  ]);
  drawOnce(dcaPart("[data-deal-targets]"), JSON.stringify([deal.take_profit_targets, deal.trailing_peak, deal.status, deal.orders, dca.pricePlaces]),
    () => dealTargetsTable(deal, price));
  drawOnce(dcaPart("[data-deal-orders]"), JSON.stringify(deal.orders), () => dealOrdersTable(deal));
}

async function dealCommand(button, path, body, question, said) {
  const ok = dcaPart("[data-deal-ok]");
  const error = dcaPart("[data-deal-error]");
  ok.textContent = "";
  error.textContent = "";
  if (question && !window.confirm(question)) return false;
  button.disabled = true;
  const result = await api("POST", `${DEALS_API}/${encodeURIComponent(dca.root.dataset.deal)}/${path}`, body);
  button.disabled = false;
  if (!result.ok) { error.textContent = describeKeyError(result); return false; }
  ok.textContent = said;
  // The answer holds the amounts unmasked; the page asks again with its own reveal.
  await loadDeal();
  return true;
}

async function startDealPage() {
  dca.refresh = loadDeal;
  bindDcaReveal();
  dcaPart("[data-deal-close]").addEventListener("click", (event) => dealCommand(event.currentTarget, "close_at_market", {},
    "Close this deal at market? Its open orders are canceled and its position is sold (or bought back) at the market price.",
    "Closing at market: the open orders are canceled, then the position is sold at the market price."));
  dcaPart("[data-deal-cancel]").addEventListener("click", (event) => dealCommand(event.currentTarget, "cancel", {},
    "Cancel this deal? Its open orders are canceled; what it bought stays in the account.",
    "Canceling: the open orders are canceled; the position stays in the account."));
  const funds = dcaPart("[data-add-funds]");
  funds.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = funds.elements.quantity_quote;
    const amount = readAmount(input.value);
    const { quote } = pairParts(dca.deal ? dca.deal.pair : "");
    if (amount === null || isZero(amount)) {
      dcaPart("[data-deal-ok]").textContent = "";
      dcaPart("[data-deal-error]").textContent = `Write the amount of ${quote || "the quote asset"} to add, such as 25.`;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    const done = await dealCommand(funds.querySelector("button"), "add_funds", { quantity_quote: amount }, null,
      `Adding ${grouped(amount)} ${quote} at market.`);
    if (done) input.value = "";
  });
  await loadDeal();
  if (dca.deal) loadDealMarket(dca.deal);
  keepRefreshing(loadDeal, () => dealBusy(dca.deal));
}

if (dca) {
  const start = { bots: startBotsPage, bot: startBotPage, deals: startDealsPage, deal: startDealPage }[dca.kind];
  if (start) start();
}
