// The stats overview (/stats): counts by level and category, error rate, top patterns,
// ingestion lag, records over time, and the integrity badge in the top bar.

import { ApiError, apiFetch, describeError, onRole } from "./api.js";
import { barChart } from "./charts.js";
import { byId, clear, formatBytes, formatNumber, formatTime, h, levelClass, showError } from "./dom.js";
import { renderJson } from "./records.js";

const REFRESH_MS = 30000;
let els = null;
let timer = null;
let active = false;

/** Update the integrity badge from /stats `integrity` (or /integrity): status ok, failed,
 * error or not_checked, with when it was checked and what was found in its tooltip. */
export function setIntegrity(integrity) {
  const badge = els.badge;
  const info = integrity && typeof integrity === "object" ? integrity : {};
  const status = String(info.status || "unknown");
  const labels = {
    ok: ["Integrity OK", "badge-ok"],
    failed: ["Integrity FAILED", "badge-bad"],
    error: ["Integrity check error", "badge-bad"],
    not_checked: ["Integrity not checked", "badge-muted"],
  };
  const [text, cls] = labels[status] || [`Integrity: ${status}`, "badge-muted"];
  badge.textContent = text;
  badge.className = `badge ${cls}`;
  badge.dataset.status = status;
  const facts = [text];
  if (info.checked_at) facts.push(`checked ${formatTime(info.checked_at, true)}`);
  if (info.findings !== undefined) facts.push(`${info.findings} finding${info.findings === 1 ? "" : "s"}`);
  if (info.records !== undefined) facts.push(`${formatNumber(info.records)} records`);
  if (info.error) facts.push(String(info.error));
  if (status === "not_checked") facts.push("an admin can run a check from the Stats page");
  badge.title = facts.join(" · ");
  badge.hidden = false;
}

async function verifyIntegrity(button) {
  button.disabled = true;
  showError(els.error, "");
  els.updated.textContent = "Verifying the log directory…";
  try {
    setIntegrity(await apiFetch("/integrity", { params: { refresh: "true" } }));
    await refreshStats();
  } catch (err) {
    els.updated.textContent = "";
    const forbidden = err instanceof ApiError && err.status === 403;
    showError(els.error, forbidden ? `Verifying needs a token with role admin. ${err.message}` : describeError(err));
  } finally {
    button.disabled = false;
  }
}

function tile(label, value, note = "") {
  return h("div", { class: "tile" }, h("div", { class: "tile-value", text: value }), h("div", { class: "tile-label", text: label }), note ? h("div", { class: "tile-note muted", text: note }) : null);
}

function bars(container, counts, classOf = () => "") {
  clear(container);
  const entries = Object.entries(counts || {}).sort((a, b) => Number(b[1]) - Number(a[1]));
  if (!entries.length) {
    container.append(h("p", { class: "muted", text: "No records." }));
    return;
  }
  const max = Math.max(...entries.map(([, n]) => Number(n) || 0), 1);
  for (const [name, n] of entries) {
    const fill = h("span", { class: `bar-fill ${classOf(name)}` });
    fill.style.width = `${Math.max(1, (Number(n) / max) * 100)}%`; // CSSOM: allowed by the CSP
    container.append(
      h("div", { class: "bar-row" }, h("span", { class: "bar-label", text: name }), h("span", { class: "bar-track" }, fill), h("span", { class: "bar-count", text: formatNumber(n) })),
    );
  }
}

function patterns(container, list) {
  clear(container);
  if (!Array.isArray(list) || !list.length) {
    container.append(h("p", { class: "muted", text: "No repeated messages in the window." }));
    return;
  }
  const body = h("tbody");
  for (const p of list) {
    body.append(
      h("tr", {}, h("td", {}, h("span", { class: levelClass(p.level), text: String(p.level ?? "") })), h("td", { class: "pattern", text: String(p.pattern ?? "") }), h("td", { class: "num", text: formatNumber(p.count) })),
    );
  }
  container.append(
    h("table", { class: "table" }, h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Level" }), h("th", { scope: "col", text: "Pattern" }), h("th", { scope: "col", text: "Count" }))), body),
  );
}

const BUCKET_SECONDS = { minute: 60, hour: 3600, day: 86400 };

/** Every bucket of the window, the empty ones too (the API sends only non-empty ones). */
function fullBuckets(win) {
  const given = win.buckets || {};
  const size = BUCKET_SECONDS[win.bucket];
  const start = Date.parse(win.start) / 1000;
  const end = Date.parse(win.end) / 1000;
  if (!size || !Number.isFinite(start) || !Number.isFinite(end) || (end - start) / size > 2000) return given;
  const counts = new Map(Object.entries(given).map(([iso, n]) => [Math.floor(Date.parse(iso) / 1000), Number(n) || 0]));
  const out = {};
  for (let b = Math.floor(start / size) * size; b <= end; b += size) out[new Date(b * 1000).toISOString()] = counts.get(b) || 0;
  return out;
}

function draw(stats) {
  const store = stats.store || {};
  const win = stats.window || {};
  setIntegrity(stats.integrity);
  const rate = Number(win.error_rate);
  const lag = Number(win.ingestion_lag_seconds ?? (stats.indexer || {}).ingestion_lag_seconds);
  // `errors` per the API contract; older servers only send the rate.
  const errors = win.errors ?? (Number.isFinite(rate) && Number.isFinite(Number(win.records)) ? Math.round(rate * Number(win.records)) : null);
  clear(els.tiles).append(
    tile("Records stored", formatNumber(store.records), store.first ? `since ${formatTime(store.first, true)}` : ""),
    tile("Records in window", formatNumber(win.records)),
    tile("Errors in window", formatNumber(errors)),
    tile("Error rate", Number.isFinite(rate) ? `${formatNumber(rate * 100, 2)} %` : "–"),
    tile("Ingestion lag", Number.isFinite(lag) ? `${formatNumber(lag, 2)} s` : "–"),
    tile("Storage", store.storage_bytes !== undefined ? formatBytes(store.storage_bytes) : "–"),
  );
  bars(els.levels, win.levels || store.levels, (name) => `fill-${String(name).toLowerCase()}`);
  bars(els.categories, win.categories || store.categories);
  const dayBuckets = win.bucket === "day";
  barChart(els.buckets, {
    title: `Records per ${win.bucket || "bucket"}`,
    buckets: fullBuckets(win),
    labelOf: (iso) => formatTime(iso, true).slice(0, dayBuckets ? 10 : 16),
  });
  patterns(els.patterns, win.top_patterns);
  clear(els.raw);
  for (const key of ["store", "pipeline", "indexer", "integrity"]) {
    if (stats[key] === undefined) continue;
    els.raw.append(h("details", {}, h("summary", { text: key }), h("pre", { class: "json" }, renderJson(stats[key], ""))));
  }
}

/** Fetch /stats and redraw (also refreshes the integrity badge). Throws ApiError. */
export async function refreshStats({ quiet = false } = {}) {
  try {
    const [window, bucket] = String(els.window.value || "86400:hour").split(":");
    const stats = await apiFetch("/stats", { params: { window, bucket } });
    showError(els.error, "");
    draw(stats);
    els.updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    return stats;
  } catch (err) {
    if (!quiet) showError(els.error, describeError(err));
    throw err;
  }
}

/** Wire the stats page (once). */
export function initStats() {
  els = {
    badge: byId("integrity-badge"),
    tiles: byId("stats-tiles"),
    levels: byId("stats-levels"),
    categories: byId("stats-categories"),
    buckets: byId("stats-buckets"),
    patterns: byId("stats-patterns"),
    raw: byId("stats-raw"),
    error: byId("stats-error"),
    updated: byId("stats-updated"),
    window: byId("stats-window"),
  };
  els.window.addEventListener("change", () => refreshStats().catch(() => {}));
  byId("stats-refresh").addEventListener("click", () => refreshStats().catch(() => {}));
  const verify = byId("integrity-verify");
  verify.addEventListener("click", () => verifyIntegrity(verify));
  onRole((role) => {
    verify.hidden = Boolean(role) && role !== "admin";
  });
}

/** The page became visible (true) or hidden (false). */
export function setStatsActive(value) {
  active = value;
  clearInterval(timer);
  timer = null;
  if (active) {
    refreshStats().catch(() => {});
    timer = setInterval(() => refreshStats().catch(() => {}), REFRESH_MS);
  }
}

/** Hide the badge and forget the figures (sign-out). */
export function resetStats() {
  setStatsActive(false);
  if (!els) return;
  els.badge.hidden = true;
  for (const key of ["tiles", "levels", "categories", "buckets", "patterns", "raw"]) clear(els[key]);
  els.updated.textContent = "";
}
