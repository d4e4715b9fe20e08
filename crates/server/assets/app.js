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

// What a form's data-hook adds to the generic handling: body() adds fields to the request,
// sending() runs once the body is built (before any step-up dialog), ok() replaces the default
// success handling, error() may claim an error (returning true) before it is shown next to a field.
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
  async "remove-account"(button) {
    const item = button.closest("[data-account]");
    clearMessages(item);
    const name = item.dataset.name;
    if (!window.confirm(`Remove “${name}” from Bulwark? Its sealed secret is destroyed. The key itself stays on the exchange until you delete it there.`)) return;
    const result = await api("DELETE", `${ACCOUNTS_API}/${encodeURIComponent(button.dataset.id)}`);
    if (!result.ok) { showError(item, "account", describe(result)); return; }
    item.remove();
    reflectAccountCount(`Removed “${name}”. If no other service uses its key, delete the key on the exchange as well.`);
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

function accountItem(account) {
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
    el("p", { class: "form-ok", "data-ok-for": "account", role: "status" }),
    el("p", { class: "form-error", "data-error-for": "account", role: "alert" }),
    el("div", { class: "balances", id: panelId, "data-balances": id, hidden: true, "aria-label": `Balances of ${account.name}` }));
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
  const amount = (text) => (text === "***" ? el("span", { class: "masked", title: "Hidden" }, text) : text);
  const parts = [];
  if (result.data.length === 0) {
    parts.push(el("p", { class: "help" }, "This account holds nothing yet."));
  } else {
    parts.push(el("table", {},
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Asset"),
        el("th", { scope: "col", class: "num" }, "Available"), el("th", { scope: "col", class: "num" }, "In orders"))),
      el("tbody", {}, ...result.data.map((b) => el("tr", {},
        el("th", { scope: "row" }, b.asset), el("td", { class: "num" }, amount(b.free)), el("td", { class: "num" }, amount(b.locked)))))));
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
