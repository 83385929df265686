// Live tail over the WebSocket /stream.
//
// Filters are sent as {"type": "update_filter"} on the open socket (no reconnect). After a
// drop the socket reconnects with ?after=<last cursor>, so no record is missed. While paused,
// records are buffered (up to PAUSE_BUFFER; the oldest are discarded beyond that, counted).

import { onUnauthorized, session, unauthorized, wsUrl } from "./api.js";
import { pruneChips } from "./crypto.js";
import { CATEGORIES, LEVELS, byId, debounce, fillSelect, showError } from "./dom.js";
import { recordOf, renderNotice, renderRecord } from "./records.js";

const MAX_ROWS = 1000;
const PAUSE_BUFFER = 2000;
const FLUSH_MS = 100;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const RATE_LIMIT_WAIT_MS = 20000;

const state = {
  ws: null,
  wanted: false, // whether the tail should be connected (signed in)
  cursor: null, // the last record's cursor: resume point after a drop
  filter: { level: "", category: "", search_query: "" },
  paused: false,
  buffer: [],
  discarded: 0,
  shown: 0,
  attempts: 0,
  retryTimer: null,
  watchdog: null,
  heartbeatMs: 30000,
  lastMessage: 0,
  subscribed: false,
  connectedFilter: "", // the filter (JSON) the open socket was asked for
  lastErrorField: null, // the field the server named in its last error message
  pending: [], // rows waiting to be drawn: {message} or {node}
  flushTimer: null,
};

let els = null;

function setStatus(text, kind) {
  els.status.textContent = text;
  els.status.className = `conn conn-${kind}`;
  els.status.dataset.state = kind;
}

function currentFilter() {
  const filter = {};
  for (const [key, value] of Object.entries(state.filter)) if (value) filter[key] = value;
  return filter;
}

function describeFilter(filter) {
  const parts = [];
  if (filter.level) parts.push(`level ≥ ${filter.level}`);
  if (filter.category) parts.push(`category = ${filter.category}`);
  if (filter.search_query) parts.push(`search “${filter.search_query}”`);
  return parts.length ? parts.join(", ") : "everything";
}

/** Draw the queued rows at once (newest on top); a burst costs one DOM update. */
function flushRows() {
  state.flushTimer = null;
  const items = state.pending.splice(0, state.pending.length).slice(-MAX_ROWS);
  if (!items.length) return;
  const fragment = document.createDocumentFragment();
  for (let i = items.length - 1; i >= 0; i -= 1) {
    const item = items[i];
    fragment.append(item.node || renderRecord(recordOf(item.message)));
  }
  els.list.prepend(fragment);
  let trimmed = false;
  while (els.list.childElementCount > MAX_ROWS) {
    els.list.lastElementChild.remove();
    trimmed = true;
  }
  if (trimmed) pruneChips();
  els.empty.hidden = true;
  els.count.textContent = `${state.shown} record${state.shown === 1 ? "" : "s"} received`;
}

function queueRow(item) {
  state.pending.push(item);
  if (state.pending.length > 2 * MAX_ROWS) state.pending.splice(0, state.pending.length - MAX_ROWS);
  if (state.flushTimer === null) state.flushTimer = setTimeout(flushRows, FLUSH_MS);
}

function addRow(node) {
  queueRow({ node });
}

function showRecord(message) {
  state.shown += 1;
  queueRow({ message });
}

function updatePausedNote() {
  if (!state.paused) {
    els.paused.hidden = true;
    return;
  }
  const extra = state.discarded ? ` (${state.discarded} older discarded: buffer full)` : "";
  els.paused.textContent = `Paused: ${state.buffer.length} new record${state.buffer.length === 1 ? "" : "s"} buffered${extra}`;
  els.paused.hidden = false;
}

function onEntry(message) {
  if (message.cursor !== undefined && message.cursor !== null) state.cursor = String(message.cursor);
  if (state.paused) {
    state.buffer.push(message);
    if (state.buffer.length > PAUSE_BUFFER) {
      state.buffer.shift();
      state.discarded += 1;
    }
    updatePausedNote();
    return;
  }
  showRecord(message);
}

function onMessage(event) {
  state.lastMessage = Date.now();
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    return;
  }
  if (!message || typeof message !== "object") return;
  switch (message.type) {
    case "entry":
      onEntry(message);
      break;
    case "subscribed":
      state.subscribed = true;
      state.attempts = 0;
      state.lastErrorField = null;
      if (message.role) session.setRole(String(message.role));
      if (Number(message.heartbeat_seconds) > 0) state.heartbeatMs = Number(message.heartbeat_seconds) * 1000;
      setStatus("Live", "live");
      showError(els.filterError, "");
      if (JSON.stringify(currentFilter()) !== state.connectedFilter) sendFilter(); // changed while connecting
      break;
    case "filter_updated":
      showError(els.filterError, "");
      addRow(renderNotice(`Filter changed: ${describeFilter(message.filter || currentFilter())}`, "filter"));
      els.list.dataset.filter = JSON.stringify(message.filter || {});
      setStatus("Live", "live");
      break;
    case "error":
      state.lastErrorField = message.field ?? null;
      showError(els.filterError, `${message.field ? `${message.field}: ` : ""}${message.error ?? message.message ?? "error"}`);
      break;
    case "dropped":
      addRow(renderNotice(`${message.count} record${Number(message.count) === 1 ? "" : "s"} dropped: the viewer fell behind the server (search to see them)`, "warn"));
      break;
    case "heartbeat":
      break;
    default:
      break;
  }
}

function scheduleReconnect(delay, why) {
  clearTimeout(state.retryTimer);
  const seconds = Math.max(1, Math.round(delay / 1000));
  setStatus(`${why}: reconnecting in ${seconds} s`, "retry");
  state.retryTimer = setTimeout(connect, delay);
}

function onClose(event) {
  const ws = event.target;
  if (ws !== state.ws) return;
  state.ws = null;
  clearInterval(state.watchdog);
  if (!state.wanted) {
    setStatus("Not connected", "off");
    return;
  }
  if (event.code === 4401) {
    unauthorized(event.reason || "the server refused the token");
    return;
  }
  if (event.code === 4400 && state.lastErrorField === "after") {
    // The resume point is unknown to the server (e.g. a new store): go on with new records.
    state.cursor = null;
    state.lastErrorField = null;
    showError(els.filterError, "");
    addRow(renderNotice("Could not resume after the last record shown: showing new records from now on", "warn"));
    scheduleReconnect(BACKOFF_MS[0], "Resume refused");
    return;
  }
  if (event.code === 4400) {
    showError(els.filterError, event.reason || "the server refused the filter");
    setStatus("Filter refused: change it to reconnect", "error");
    return;
  }
  if (event.code === 4429) {
    scheduleReconnect(RATE_LIMIT_WAIT_MS, "Rate limited");
    return;
  }
  if (state.subscribed) {
    addRow(renderNotice("Connection lost: reconnecting and resuming after the last record", "warn"));
  }
  state.subscribed = false;
  const delay = BACKOFF_MS[Math.min(state.attempts, BACKOFF_MS.length - 1)];
  state.attempts += 1;
  scheduleReconnect(delay, "Disconnected");
}

function connect() {
  clearTimeout(state.retryTimer);
  if (!state.wanted || state.ws) return;
  const params = { ...currentFilter() };
  if (state.cursor) params.after = state.cursor;
  let ws;
  try {
    // the token travels as a subprotocol: never in a URL (access logs, proxies, history)
    ws = new WebSocket(wsUrl("/stream", params), ["plexichat-logs", `bearer.${session.token}`]);
  } catch (err) {
    scheduleReconnect(5000, `Cannot connect (${err.message})`);
    return;
  }
  state.ws = ws;
  state.subscribed = false;
  state.connectedFilter = JSON.stringify(currentFilter());
  setStatus("Connecting…", "connecting");
  ws.addEventListener("message", onMessage);
  ws.addEventListener("close", onClose);
  ws.addEventListener("open", () => {
    state.lastMessage = Date.now();
  });
  clearInterval(state.watchdog);
  state.watchdog = setInterval(() => {
    // No message (not even a heartbeat) for three heartbeats: the connection is dead.
    if (state.ws === ws && state.lastMessage && Date.now() - state.lastMessage > 3 * state.heartbeatMs) {
      ws.close(4000, "no heartbeat");
      onClose({ target: ws, code: 1006, reason: "no heartbeat" });
    }
  }, 5000);
}

function sendFilter() {
  const ws = state.ws;
  if (ws && ws.readyState === WebSocket.OPEN && state.subscribed) {
    setStatus("Applying filter…", "connecting");
    state.connectedFilter = JSON.stringify(currentFilter());
    ws.send(JSON.stringify({ type: "update_filter", filter: currentFilter() }));
  } else if (state.wanted && !ws) {
    connect(); // a refused filter closed the socket: try again with the new one
  }
}

function readFilters() {
  state.filter = {
    level: els.level.value,
    category: els.category.value,
    search_query: els.search.value.trim(),
  };
}

function setPaused(paused) {
  state.paused = paused;
  els.pause.setAttribute("aria-pressed", String(paused));
  els.pause.textContent = paused ? "Resume" : "Pause";
  if (!paused) {
    const pending = state.buffer;
    state.buffer = [];
    if (state.discarded) {
      addRow(renderNotice(`${state.discarded} records were discarded while paused (buffer full)`, "warn"));
    }
    state.discarded = 0;
    for (const message of pending) showRecord(message);
  }
  updatePausedNote();
}

/** Wire the tail's controls (once). */
export function initTail() {
  els = {
    list: byId("tail-list"),
    status: byId("tail-status"),
    paused: byId("tail-paused"),
    count: byId("tail-count"),
    level: byId("tail-level"),
    category: byId("tail-category"),
    search: byId("tail-search"),
    pause: byId("tail-pause"),
    clear: byId("tail-clear"),
    filterError: byId("tail-filter-error"),
    empty: byId("tail-empty"),
    form: byId("tail-filters"),
  };
  fillSelect(els.level, LEVELS, "any level");
  fillSelect(els.category, CATEGORIES, "any category");
  const changed = () => {
    readFilters();
    sendFilter();
  };
  els.level.addEventListener("change", changed);
  els.category.addEventListener("change", changed);
  els.search.addEventListener("input", debounce(changed, 400));
  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    changed();
  });
  els.pause.addEventListener("click", () => setPaused(!state.paused));
  els.clear.addEventListener("click", () => {
    state.pending = [];
    els.list.replaceChildren();
    els.empty.hidden = false;
    state.shown = 0;
    els.count.textContent = "";
    pruneChips();
  });
  onUnauthorized(() => stopTail());
}

/** Connect (after sign-in). */
export function startTail() {
  state.wanted = true;
  state.attempts = 0;
  readFilters();
  connect();
}

/** Disconnect and forget the session's records (sign-out). */
export function stopTail() {
  state.wanted = false;
  clearTimeout(state.retryTimer);
  clearInterval(state.watchdog);
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close(1000, "signed out");
  state.cursor = null;
  state.buffer = [];
  state.discarded = 0;
  state.shown = 0;
  state.pending = [];
  clearTimeout(state.flushTimer);
  state.flushTimer = null;
  if (els) {
    showError(els.filterError, "");
    els.list.replaceChildren();
    els.empty.hidden = false;
    els.count.textContent = "";
    setPaused(false);
    setStatus("Not connected", "off");
  }
}
