// The metrics page: CPU, memory, response-time percentiles and one custom metric, from
// /performance/metrics (the metric history kept in the store), refreshed periodically.

import { apiFetch, describeError } from "./api.js";
import { lineChart } from "./charts.js";
import { byId, clear, formatBytes, formatNumber, h, showError } from "./dom.js";

const REFRESH_MS = 15000;
const CPU = ["cpu_usage", "process_cpu_percent"];
const MEMORY = ["memory_usage", "process_rss_bytes"];
const LATENCY = ["http_request_duration_seconds", "http_request_duration", "response_time"];

let els = null;
let timer = null;
let active = false;
let inFlight = null;
let chosen = "";

/** A value formatter for a unit ("seconds" shown in ms below 1 s, bytes, percent). */
function formatterFor(unit) {
  const u = String(unit || "").toLowerCase();
  if (u === "seconds" || u === "s") {
    return (v) => (Math.abs(v) < 1 ? `${formatNumber(v * 1000, 1)} ms` : `${formatNumber(v, 2)} s`);
  }
  if (u === "ms" || u === "milliseconds") return (v) => `${formatNumber(v, 1)} ms`;
  if (u === "percent" || u === "%") return (v) => `${formatNumber(v, 1)} %`;
  if (u === "bytes") return (v) => formatBytes(v);
  if (u === "bytes_per_second") return (v) => `${formatBytes(v)}/s`;
  if (u === "count" || u === "") return (v) => formatNumber(v, 2);
  return (v) => `${formatNumber(v, 2)}${u ? ` ${u}` : ""}`;
}

const pick = (metrics, names) => names.find((name) => metrics[name] && Array.isArray(metrics[name].points));

const points = (metric, field) => metric.points.map((p) => [Number(p.timestamp), p[field] === null ? NaN : Number(p[field])]);

/** The lines that describe a metric: percentiles for distributions, the sum for counters. */
function seriesOf(metric) {
  if (metric.kind === "counter") return [{ name: "sum", points: points(metric, "sum") }];
  if (metric.kind === "gauge") {
    return [
      { name: "mean", points: points(metric, "mean") },
      { name: "max", points: points(metric, "max") },
    ];
  }
  return ["p50", "p95", "p99"].map((field) => ({ name: field, points: points(metric, field) }));
}

function chart(figureId, title, metric, series, range) {
  const figure = byId(figureId);
  const caption = figure.querySelector("figcaption");
  const body = figure.querySelector(".chart-body");
  if (caption) caption.textContent = title;
  if (!metric) {
    clear(body);
    body.append(h("p", { class: "chart-empty", text: "Not recorded in this range." }));
    figure.dataset.metric = "";
    return;
  }
  figure.dataset.metric = metric.name;
  lineChart(body, { title, series, format: formatterFor(metric.unit), start: range.start, end: range.end });
  const summary = metric.summary || {};
  const trend = metric.trend || {};
  const fmt = formatterFor(metric.unit);
  const facts = [];
  if (summary.count !== undefined) facts.push(`${formatNumber(summary.count)} values`);
  if (Number.isFinite(Number(summary.mean))) facts.push(`mean ${fmt(Number(summary.mean))}`);
  if (Number.isFinite(Number(summary.max))) facts.push(`max ${fmt(Number(summary.max))}`);
  if (trend.direction) facts.push(`trend ${trend.direction}`);
  if (facts.length) body.append(h("p", { class: "chart-facts muted", text: facts.join(" · ") }));
}

function fillCustom(names) {
  const select = els.custom;
  const previous = chosen || select.value;
  clear(select);
  select.append(h("option", { value: "", text: "(choose a metric)" }));
  for (const name of names) select.append(h("option", { value: name, text: name }));
  select.value = names.includes(previous) ? previous : "";
}

function draw(body, range) {
  const metrics = body && typeof body.metrics === "object" && body.metrics ? body.metrics : {};
  const names = Object.keys(metrics).sort();
  for (const name of names) metrics[name].name = name;
  fillCustom(names);

  const cpu = pick(metrics, CPU);
  chart("chart-cpu", cpu ? `CPU usage (${cpu})` : "CPU usage", cpu && metrics[cpu], cpu ? [{ name: "mean", points: points(metrics[cpu], "mean") }, { name: "max", points: points(metrics[cpu], "max") }] : [], range);
  const mem = pick(metrics, MEMORY);
  chart("chart-memory", mem ? `Memory usage (${mem})` : "Memory usage", mem && metrics[mem], mem ? [{ name: "mean", points: points(metrics[mem], "mean") }, { name: "max", points: points(metrics[mem], "max") }] : [], range);
  const lat = pick(metrics, LATENCY);
  chart(
    "chart-latency",
    lat ? `Response time p50 / p95 / p99 (${lat})` : "Response time (p50 / p95 / p99)",
    lat && metrics[lat],
    lat ? ["p50", "p95", "p99"].map((f) => ({ name: f, points: points(metrics[lat], f) })) : [],
    range,
  );
  const custom = els.custom.value;
  if (custom && metrics[custom]) {
    chart("chart-custom", `${custom}${metrics[custom].kind ? ` (${metrics[custom].kind})` : ""}`, metrics[custom], seriesOf(metrics[custom]), range);
  } else {
    const body2 = byId("chart-custom").querySelector(".chart-body");
    clear(body2);
    body2.append(h("p", { class: "chart-empty", text: names.length ? "Choose a metric above." : "No metrics recorded in this range." }));
  }
}

/** Fetch the metrics of the chosen range and redraw every chart. */
export async function refreshMetrics() {
  if (!els) return;
  if (inFlight) inFlight.abort();
  const controller = new AbortController();
  inFlight = controller;
  const seconds = Number(els.range.value) || 3600;
  const end = Date.now() / 1000;
  const start = end - seconds;
  const interval = Math.max(1, Math.round(seconds / 60));
  try {
    const body = await apiFetch("/performance/metrics", {
      params: {
        start_time: new Date(start * 1000).toISOString(),
        end_time: new Date(end * 1000).toISOString(),
        interval,
      },
      signal: controller.signal,
    });
    showError(els.error, "");
    draw(body, { start, end });
    els.updated.textContent = `Updated ${new Date().toLocaleTimeString()} · one point per ${interval} s`;
  } catch (err) {
    if (err && err.name === "AbortError") return;
    showError(els.error, describeError(err));
  } finally {
    if (inFlight === controller) inFlight = null;
  }
}

function schedule() {
  clearInterval(timer);
  timer = null;
  if (active && els.auto.checked) timer = setInterval(refreshMetrics, REFRESH_MS);
}

/** Wire the metrics page (once). */
export function initMetrics() {
  els = {
    range: byId("metrics-range"),
    custom: byId("metrics-custom"),
    auto: byId("metrics-auto"),
    refresh: byId("metrics-refresh"),
    error: byId("metrics-error"),
    updated: byId("metrics-updated"),
  };
  els.range.addEventListener("change", refreshMetrics);
  els.custom.addEventListener("change", () => {
    chosen = els.custom.value;
    refreshMetrics();
  });
  els.auto.addEventListener("change", schedule);
  els.refresh.addEventListener("click", refreshMetrics);
}

/** The page became visible (true) or hidden (false): refresh now and periodically. */
export function setMetricsActive(value) {
  active = value;
  if (active) refreshMetrics();
  schedule();
}
