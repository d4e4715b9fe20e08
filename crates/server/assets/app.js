// Bulwark's page script. No inline script anywhere (the CSP forbids it): every form that talks
// to the API carries data-api, and buttons carry data-action. Errors are shown next to the field
// the API names.
"use strict";

async function api(method, url, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url, init);
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch (_) { data = null; }
  }
  return { ok: res.ok, status: res.status, data };
}

function showError(scope, field, message) {
  const slot = scope.querySelector(`[data-error-for="${field}"]`) || scope.querySelector('[data-error-for="_form"]');
  if (slot) slot.textContent = message;
  const input = scope.querySelector(`[name="${field}"]`);
  if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
}

function clearMessages(scope) {
  scope.querySelectorAll("[data-error-for], [data-ok]").forEach((el) => { el.textContent = ""; });
  scope.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
}

function describe(result) {
  if (result.data && result.data.message) return result.data.message;
  if (result.status === 0) return "Bulwark could not be reached. Check your connection.";
  return "Something went wrong. Try again.";
}

document.querySelectorAll("form[data-api]").forEach((form) => {
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
    const button = form.querySelector('button[type="submit"]');
    if (button) button.disabled = true;
    let result;
    try {
      result = await api(form.dataset.method || "POST", form.dataset.api, body);
    } catch (_) {
      result = { ok: false, status: 0, data: null };
    }
    if (button) button.disabled = false;
    if (result.ok) {
      if (form.dataset.next) { window.location.assign(form.dataset.next); return; }
      if (form.hasAttribute("data-reset")) form.reset();
      const ok = form.querySelector("[data-ok]");
      if (ok) ok.textContent = form.dataset.success || "Done.";
      return;
    }
    showError(form, (result.data && result.data.field) || "_form", describe(result));
  });
});

const actions = {
  async logout() {
    await api("POST", "/api/v1/auth/logout");
    window.location.assign("/");
  },
  async "logout-all"(button) {
    if (!window.confirm("Sign out of every browser, this one included?")) return;
    const result = await api("POST", "/api/v1/auth/logout-all");
    if (result.ok) window.location.assign("/");
    else showError(document, "sessions", describe(result));
    button.disabled = false;
  },
  async "revoke-session"(button) {
    const result = await api("DELETE", `/api/v1/sessions/${encodeURIComponent(button.dataset.id)}`);
    if (result.ok) window.location.reload();
    else { showError(document, "sessions", describe(result)); button.disabled = false; }
  },
  async "resend-verification"(button) {
    const result = await api("POST", "/api/v1/auth/verify-email/resend");
    const ok = document.querySelector('[data-ok-for="resend-verification"]');
    if (result.ok) { if (ok) ok.textContent = "A new link is on its way."; }
    else showError(document, "resend-verification", describe(result));
    button.disabled = false;
  },
};

document.querySelectorAll("[data-action]").forEach((button) => {
  button.addEventListener("click", () => {
    const action = actions[button.dataset.action];
    if (!action) return;
    button.disabled = true;
    action(button).catch(() => { button.disabled = false; });
  });
});

// Times arrive as RFC 3339 in UTC; show them in the reader's own time zone.
document.querySelectorAll("time[datetime]").forEach((el) => {
  const when = new Date(el.getAttribute("datetime"));
  if (!Number.isNaN(when.getTime())) el.textContent = when.toLocaleString();
});
