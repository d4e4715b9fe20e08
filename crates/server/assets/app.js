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
// ok() replaces the default success handling, error() may claim an error (returning true)
// before it is shown next to a field.
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
    if (result.ok) reflectBalances(button, result.data.hide_balances);
    else showError(document, "toggle-balances", describe(result));
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
};

document.querySelectorAll("[data-action]").forEach((button) => {
  button.addEventListener("click", async () => {
    const name = button.dataset.action;
    const action = actions[name];
    if (!action) return;
    // Messages from this action's previous run go away.
    document.querySelectorAll(`[data-error-for="${name}"], [data-ok-for="${name}"]`).forEach((el) => { el.textContent = ""; });
    button.disabled = true;
    try { await action(button); } finally { button.disabled = false; }
  });
});

// Times arrive as RFC 3339 in UTC; show them in the reader's own time zone.
document.querySelectorAll("time[datetime]").forEach((el) => {
  const when = new Date(el.getAttribute("datetime"));
  if (!Number.isNaN(when.getTime())) el.textContent = when.toLocaleString();
});
