// The search page (/entries with cursor paging and "Load more"), the security events page
// (/security/events, role security or higher) and export (POST /export, admin).

import { ApiError, apiFetch, describeError, onRole, session } from "./api.js";
import { pruneChips } from "./crypto.js";
import { CATEGORIES, LEVELS, byId, fillSelect, h, localInputToIso, showError } from "./dom.js";
import { renderRecord } from "./records.js";

/**
 * A result list fed page by page from an API route that answers {<key>: [...],
 * next_cursor}. `load(params)` starts over; "Load more" asks for the next page.
 */
class PagedList {
  constructor({ path, key, list, more, summary, error, onError }) {
    Object.assign(this, { path, key, list, more, summary, error, onError });
    this.params = null;
    this.cursor = null;
    this.count = 0;
    this.busy = false;
    this.generation = 0;
    more.addEventListener("click", () => this.next());
  }

  async load(params) {
    this.params = params;
    this.cursor = null;
    this.count = 0;
    this.generation += 1;
    this.list.replaceChildren();
    pruneChips();
    this.more.hidden = true;
    await this.fetchPage(this.generation);
  }

  async next() {
    if (this.cursor && !this.busy) await this.fetchPage(this.generation);
  }

  reset() {
    this.generation += 1;
    this.params = null;
    this.cursor = null;
    this.count = 0;
    this.list.replaceChildren();
    this.more.hidden = true;
    this.summary.textContent = "";
    showError(this.error, "");
  }

  async fetchPage(generation) {
    this.busy = true;
    this.more.disabled = true;
    this.summary.textContent = "Loading…";
    showError(this.error, "");
    try {
      const params = { ...this.params };
      if (this.cursor) params.cursor = this.cursor;
      const body = await apiFetch(this.path, { params });
      if (generation !== this.generation) return;
      const items = Array.isArray(body[this.key]) ? body[this.key] : [];
      for (const record of items) this.list.append(renderRecord(record, { withDate: true }));
      this.count += items.length;
      this.cursor = body.next_cursor || null;
      this.more.hidden = !this.cursor;
      this.summary.textContent = this.count
        ? `${this.count} record${this.count === 1 ? "" : "s"} shown${this.cursor ? " (more available)" : ""}`
        : "No records match.";
    } catch (err) {
      if (generation !== this.generation) return;
      this.summary.textContent = "";
      if (this.onError && this.onError(err)) return;
      showError(this.error, describeError(err));
    } finally {
      if (generation === this.generation) {
        this.busy = false;
        this.more.disabled = false;
      }
    }
  }
}

/** The "k=v, k2=v2" context filter as {"context.k": "v"}; throws on a malformed part. */
function contextParams(text) {
  const out = {};
  for (const part of String(text).split(",").map((p) => p.trim()).filter(Boolean)) {
    const at = part.indexOf("=");
    if (at <= 0) throw new Error(`context filter “${part}”: write key=value (several separated by commas)`);
    const key = part.slice(0, at).trim().replace(/^context\./, "");
    out[`context.${key}`] = part.slice(at + 1).trim();
  }
  return out;
}

/** Read a filter form into API parameters (times to ISO UTC, context to context.k). */
function formParams(form) {
  const data = new FormData(form);
  const params = {};
  for (const [name, value] of data.entries()) {
    const text = String(value).trim();
    if (!text) continue;
    if (name === "start_time" || name === "end_time") params[name] = localInputToIso(text);
    else if (name === "context") Object.assign(params, contextParams(text));
    else params[name] = text;
  }
  return params;
}

let searchList = null;
let securityList = null;
let securityEls = null;

function showSecurityDenied(message) {
  securityEls.denied.textContent = message;
  securityEls.denied.hidden = !message;
  securityEls.form.hidden = Boolean(message);
  if (message) securityList.reset();
}

function securityRoleChanged(role) {
  if (!securityEls) return;
  if (role === "viewer") {
    showSecurityDenied(
      "Security events need a token with role security or admin; this token has role viewer " +
        "(security records are also left out of the live tail and the search for it).",
    );
  } else {
    showSecurityDenied("");
  }
}

async function exportRecords(form, button, errorEl) {
  let params;
  try {
    params = formParams(form);
  } catch (err) {
    showError(errorEl, err.message);
    return;
  }
  delete params.limit;
  const format = byId("export-format").value;
  const body = { format };
  for (const [key, value] of Object.entries(params)) {
    if (key.startsWith("context.")) {
      body.where = body.where || {};
      body.where[key] = value; // equality filters: {"context.user_id": "u1"}
    } else {
      body[key] = value;
    }
  }
  button.disabled = true;
  showError(errorEl, "");
  try {
    const res = await apiFetch("/export", { method: "POST", body, raw: true });
    const blob = await res.blob();
    const disposition = res.headers.get("Content-Disposition") || "";
    const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
    const name = match ? decodeURIComponent(match[1]) : `plexichat-logs.${format}`;
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: name.replace(/[\\/]/g, "_") });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      showError(errorEl, `Export needs a token with role admin. ${err.message}`);
    } else {
      showError(errorEl, describeError(err));
    }
  } finally {
    button.disabled = false;
  }
}

/** Wire the search and security pages (once). */
export function initSearch() {
  const form = byId("search-form");
  fillSelect(byId("search-level"), LEVELS, "any level");
  fillSelect(byId("search-category"), CATEGORIES, "any category");
  const error = byId("search-error");
  searchList = new PagedList({
    path: "/entries",
    key: "entries",
    list: byId("search-list"),
    more: byId("search-more"),
    summary: byId("search-summary"),
    error,
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      searchList.load(formParams(form));
    } catch (err) {
      showError(error, err.message);
    }
  });
  const exportButton = byId("export-button");
  exportButton.addEventListener("click", () => exportRecords(form, exportButton, error));

  securityEls = { form: byId("security-form"), denied: byId("security-denied") };
  securityList = new PagedList({
    path: "/security/events",
    key: "events",
    list: byId("security-list"),
    more: byId("security-more"),
    summary: byId("security-summary"),
    error: byId("security-error"),
    onError: (err) => {
      if (err instanceof ApiError && err.status === 403) {
        showSecurityDenied(`Security events need a token with role security or admin. ${err.message}`);
        return true;
      }
      return false;
    },
  });
  securityEls.form.addEventListener("submit", (event) => {
    event.preventDefault();
    securityList.load(formParams(securityEls.form));
  });
  onRole(securityRoleChanged);
}

/** First visit of the search page: run the empty search once. */
export function showSearch() {
  if (!searchList || searchList.params !== null) return;
  try {
    searchList.load(formParams(byId("search-form")));
  } catch (err) {
    showError(byId("search-error"), err.message);
  }
}

/** First visit of the security page: load the newest events (unless the role is too low). */
export function showSecurity() {
  if (!securityList || securityList.params !== null) return;
  if (session.allows("security") === false) {
    securityRoleChanged(session.role);
    return;
  }
  securityList.load(formParams(securityEls.form));
}

/** Forget the results (sign-out). */
export function resetSearch() {
  if (searchList) searchList.reset();
  if (securityList) securityList.reset();
  if (securityEls) showSecurityDenied("");
}
