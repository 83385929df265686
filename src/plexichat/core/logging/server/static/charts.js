// Small inline-SVG charts: time-series lines (with point markers and tooltips) and bars.
// No third-party code: scales, ticks and paths are computed here.

import { clear, h, svg } from "./dom.js";

const WIDTH = 640;
const HEIGHT = 220;
const M = { top: 12, right: 16, bottom: 28, left: 58 };

/** "Nice" tick values covering [min, max] (about `count` of them). */
export function niceTicks(min, max, count = 4) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (min === max) {
    const pad = Math.abs(min) * 0.1 || 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => raw <= s) || 10 * magnitude;
  const ticks = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toFixed(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

const pad2 = (n) => String(n).padStart(2, "0");

function timeLabel(seconds, span) {
  const d = new Date(seconds * 1000);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  if (span > 2 * 86400) return `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${hm}`;
  if (span < 600) return `${hm}:${pad2(d.getSeconds())}`;
  return hm;
}

function emptyChart(body, message) {
  clear(body);
  body.append(h("p", { class: "chart-empty", text: message }));
}

/**
 * Draw a line chart into `body`.
 * series: [{name, points: [[epochSeconds, value|null], ...]}]; format(value) labels the y axis.
 * Returns the <svg> (or null when there is nothing to draw).
 */
export function lineChart(body, { title, series, format = String, start = null, end = null }) {
  const drawn = series.map((s) => ({ ...s, points: s.points.filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v)) }));
  const all = drawn.flatMap((s) => s.points);
  if (!all.length) {
    emptyChart(body, "No data in this range yet.");
    return null;
  }
  let t0 = Math.min(...all.map((p) => p[0]));
  let t1 = Math.max(...all.map((p) => p[0]));
  if (start !== null && end !== null && end > start) {
    t0 = Math.min(t0, start);
    t1 = Math.max(t1, end);
  }
  if (t0 === t1) {
    t0 -= 30;
    t1 += 30;
  }
  const values = all.map((p) => p[1]);
  const ticks = niceTicks(Math.min(0, ...values), Math.max(...values));
  const v0 = ticks[0];
  const v1 = ticks[ticks.length - 1];
  const iw = WIDTH - M.left - M.right;
  const ih = HEIGHT - M.top - M.bottom;
  const x = (t) => M.left + ((t - t0) / (t1 - t0)) * iw;
  const y = (v) => M.top + ih - ((v - v0) / (v1 - v0 || 1)) * ih;

  const last = drawn
    .filter((s) => s.points.length)
    .map((s) => `${s.name} ${format(s.points[s.points.length - 1][1])}`)
    .join(", ");
  const root = svg("svg", {
    class: "chart-svg",
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    attrs: { "aria-label": `${title}: latest ${last}` },
  });
  root.append(svg("title", { text: `${title} (latest: ${last})` }));

  const grid = svg("g", { class: "grid" });
  for (const tick of ticks) {
    const ty = y(tick);
    grid.append(
      svg("line", { x1: M.left, x2: WIDTH - M.right, y1: ty, y2: ty }),
      svg("text", { class: "tick", x: M.left - 6, y: ty + 4, "text-anchor": "end", text: format(tick) }),
    );
  }
  const span = t1 - t0;
  for (let i = 0; i <= 4; i += 1) {
    const t = t0 + (span * i) / 4;
    grid.append(
      svg("text", {
        class: "tick",
        x: x(t),
        y: HEIGHT - 8,
        "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle",
        text: timeLabel(t, span),
      }),
    );
  }
  root.append(grid);

  drawn.forEach((s, index) => {
    if (!s.points.length) return;
    const cls = `series series-${(index % 6) + 1}`;
    const d = s.points.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const group = svg("g", { class: cls, dataset: { series: s.name } });
    group.append(svg("path", { class: "line", d }));
    for (const [t, v] of s.points) {
      group.append(
        svg("circle", { class: "dot", cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2.5 }, svg("title", { text: `${timeLabel(t, 0)} · ${s.name} ${format(v)}` })),
      );
    }
    root.append(group);
  });

  clear(body);
  body.append(root);
  if (drawn.length > 1 || drawn[0].name) {
    const legend = h("ul", { class: "legend" });
    drawn.forEach((s, index) => {
      legend.append(h("li", { class: `series-${(index % 6) + 1}` }, h("span", { class: "swatch", attrs: { "aria-hidden": "true" } }), s.name));
    });
    body.append(legend);
  }
  return root;
}

/** A bar chart of {label: count} (e.g. records per time bucket) into `body`. */
export function barChart(body, { title, buckets, labelOf = String }) {
  const entries = Object.entries(buckets || {});
  if (!entries.length) {
    emptyChart(body, "No records in the window.");
    return null;
  }
  const max = Math.max(...entries.map(([, n]) => Number(n) || 0), 1);
  const iw = WIDTH - M.left - M.right;
  const ih = HEIGHT - M.top - M.bottom;
  const bw = iw / entries.length;
  const root = svg("svg", {
    class: "chart-svg",
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    attrs: { "aria-label": `${title}: ${entries.length} buckets, at most ${max}` },
  });
  root.append(svg("title", { text: title }));
  const ticks = niceTicks(0, max, 3);
  const top = ticks[ticks.length - 1];
  const grid = svg("g", { class: "grid" });
  for (const tick of ticks) {
    const ty = M.top + ih - (tick / top) * ih;
    grid.append(
      svg("line", { x1: M.left, x2: WIDTH - M.right, y1: ty, y2: ty }),
      svg("text", { class: "tick", x: M.left - 6, y: ty + 4, "text-anchor": "end", text: String(tick) }),
    );
  }
  root.append(grid);
  const bars = svg("g", { class: "bars series-1" });
  entries.forEach(([label, n], i) => {
    const bh = ((Number(n) || 0) / top) * ih;
    bars.append(
      svg(
        "rect",
        { x: (M.left + i * bw + 1).toFixed(1), y: (M.top + ih - bh).toFixed(1), width: Math.max(1, bw - 2).toFixed(1), height: bh.toFixed(1) },
        svg("title", { text: `${labelOf(label)}: ${n}` }),
      ),
    );
  });
  root.append(bars);
  const first = entries[0][0];
  const lastLabel = entries[entries.length - 1][0];
  root.append(
    svg("text", { class: "tick", x: M.left, y: HEIGHT - 8, text: labelOf(first) }),
    svg("text", { class: "tick", x: WIDTH - M.right, y: HEIGHT - 8, "text-anchor": "end", text: labelOf(lastLabel) }),
  );
  clear(body);
  body.append(root);
  return root;
}
