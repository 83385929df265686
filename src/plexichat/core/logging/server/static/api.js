// API access: the base path, the token (sessionStorage), fetch and WebSocket URLs, errors.
//
// The token is sent only as `Authorization: Bearer` to this origin's API (and as the
// subprotocol "bearer.<token>" on the WebSocket, which cannot carry headers from a browser;
// never in a URL). A 401 anywhere signs out and brings back the sign-in form with the
// server's message.

const meta = document.querySelector('meta[name="plexichat-api-base"]');
const injected = meta ? meta.getAttribute("content") || "" : "";

/** The API's base path, e.g. "/api/v2/logs" (injected by the server into the page). */
export const API_BASE = injected && !injected.startsWith("__") ? injected : "/api/v2/logs";

const TOKEN_KEY = "plexichat-logs.token";

/** An HTTP error from the API: status and the server's message. */
export class ApiError extends Error {
  constructor(status, message, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

const unauthorizedHandlers = new Set();
const roleHandlers = new Set();

/** The session: token and the role learned from the server. */
export const session = {
  role: null,

  get token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch {
      return "";
    }
  },

  setToken(token) {
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      /* storage disabled: the token lives only as long as this call chain */
    }
  },

  clear() {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      /* nothing stored */
    }
    this.setRole(null);
  },

  setRole(role) {
    if (role === this.role) return;
    this.role = role;
    for (const fn of roleHandlers) fn(role);
  },

  /** Whether the known role includes `needed` (unknown role: null). */
  allows(needed) {
    const order = ["viewer", "security", "admin"];
    if (!this.role) return null;
    return order.indexOf(this.role) >= order.indexOf(needed);
  },
};

/** Call `fn(message)` when the server rejects the token (HTTP 401 or WebSocket 4401). */
export function onUnauthorized(fn) {
  unauthorizedHandlers.add(fn);
}

/** Call `fn(role)` whenever the session's role becomes known or changes. */
export function onRole(fn) {
  roleHandlers.add(fn);
}

/** Report a rejected token to every handler (signs out). */
export function unauthorized(message) {
  for (const fn of unauthorizedHandlers) fn(message);
}

/** The text of an error response: FastAPI's `detail` (text or validation list) or the body. */
async function errorMessage(res) {
  let text = "";
  try {
    text = await res.text();
    const body = JSON.parse(text);
    const detail = body && (body.detail ?? body.error ?? body.message);
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail
        .map((d) => {
          const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "query" && p !== "body").join(".") : "";
          return where ? `${where}: ${d.msg}` : String(d.msg ?? JSON.stringify(d));
        })
        .join("; ");
    }
    if (detail !== undefined) return JSON.stringify(detail);
  } catch {
    /* not JSON */
  }
  return text.trim().slice(0, 300) || `${res.status} ${res.statusText}`;
}

/** An absolute URL of an API path with query parameters (empty values are left out). */
export function apiUrl(path, params = {}) {
  const url = new URL(API_BASE + path, window.location.href);
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) {
      if (value.length) url.searchParams.set(name, value.join(","));
    } else {
      url.searchParams.set(name, String(value));
    }
  }
  return url;
}

/** The WebSocket URL of an API path (ws: or wss: following the page). */
export function wsUrl(path, params = {}) {
  const url = apiUrl(path, params);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

/**
 * Call the API. Returns the parsed JSON (or the Response with `raw: true`).
 * Throws ApiError; a 401 also signs out.
 */
export async function apiFetch(path, { params = {}, method = "GET", body, raw = false, signal } = {}) {
  const headers = { Accept: "application/json" };
  const token = session.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(apiUrl(path, params), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "same-origin",
      referrerPolicy: "no-referrer",
      signal,
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, `cannot reach the log server (${err && err.message ? err.message : err})`);
  }
  if (!res.ok) {
    const message = await errorMessage(res);
    if (res.status === 401) unauthorized(message);
    const retry = res.headers.get("Retry-After");
    throw new ApiError(res.status, message, retry ? Number(retry) : null);
  }
  if (raw) return res;
  return res.json();
}

/** A user-facing sentence for an error (role and rate-limit errors get a hint). */
export function describeError(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  if (err.status === 403) return `Not allowed: ${err.message}`;
  if (err.status === 429) {
    const wait = err.retryAfter ? ` Retry in ${err.retryAfter} s.` : "";
    return `Too many requests: ${err.message}.${wait}`;
  }
  if (err.status === 0) return err.message;
  return `Error ${err.status}: ${err.message}`;
}
