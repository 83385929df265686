// Small DOM helpers. Record data is attacker-controlled: it only ever becomes text nodes or
// attribute values set through the DOM API, never markup (no innerHTML anywhere).

/**
 * Create an element. `props`: class, text, title, hidden, attrs {name: value},
 * dataset {k: v}, on {event: handler}; children: nodes, strings (as text), arrays, null.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  applyProps(el, props);
  append(el, children);
  return el;
}

/** Create an SVG element (same props as `h`). */
export function svg(tag, props = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  applyProps(el, props);
  append(el, children);
  return el;
}

function applyProps(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = String(value);
    else if (key === "hidden") el.hidden = true;
    else if (key === "attrs") {
      for (const [n, v] of Object.entries(value)) {
        if (/^on/i.test(n)) throw new Error(`event handler attribute ${n} refused`);
        el.setAttribute(n, String(v));
      }
    }
    else if (key === "dataset") for (const [n, v] of Object.entries(value)) el.dataset[n] = String(v);
    else if (key === "on") for (const [n, fn] of Object.entries(value)) el.addEventListener(n, fn);
    else if (/^on/i.test(key)) throw new Error(`use "on: {...}" for event handlers, not the attribute ${key}`);
    else el.setAttribute(key, String(value));
  }
}

/** Append children (strings become text nodes). */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Remove every child of `el`. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** `document.getElementById` that fails loudly on a missing element. */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no element #${id}`);
  return el;
}

/** Show `message` in an error element (or hide it with an empty message). */
export function showError(el, message) {
  el.textContent = message || "";
  el.hidden = !message;
}

export const LEVELS = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "SECURITY", "AUDIT"];
export const CATEGORIES = [
  "system", "security", "performance", "api", "database", "auth", "plugin", "backup",
  "clustering", "monitoring", "user", "audit", "network", "cache",
];

/** Fill a <select> with "any" plus `values`. */
export function fillSelect(select, values, anyLabel = "any", selected = "") {
  clear(select);
  select.append(h("option", { value: "", text: anyLabel }));
  for (const value of values) {
    const option = h("option", { value, text: value });
    if (value === selected) option.selected = true;
    select.append(option);
  }
}

/** The CSS class of a level badge (unknown levels get a neutral one). */
export function levelClass(level) {
  const name = String(level || "").toUpperCase();
  return LEVELS.includes(name) ? `lvl lvl-${name.toLowerCase()}` : "lvl";
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** A record timestamp (ISO text or epoch seconds) as local time; with the date if `withDate`. */
export function formatTime(value, withDate = false) {
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(String(value));
  if (Number.isNaN(date.getTime())) return String(value ?? "");
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
  if (!withDate) return time;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}

/** A `datetime-local` input's value as ISO-8601 UTC ("" stays ""). */
export function localInputToIso(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/** A number for people: 1234567 -> "1,234,567"; fractions keep `digits`. */
export function formatNumber(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
  const n = Number(value);
  return n.toLocaleString(undefined, { maximumFractionDigits: Number.isInteger(n) ? 0 : digits });
}

/** Bytes as B / KiB / MiB / GiB. */
export function formatBytes(value) {
  let n = Number(value);
  if (!Number.isFinite(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toLocaleString(undefined, { maximumFractionDigits: i ? 1 : 0 })} ${units[i]}`;
}

/** Call `fn` once `ms` have passed without another call. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

const ICONS = {
  lock: [["rect", { x: 3, y: 7, width: 10, height: 8, rx: 1.5, class: "icon-fill" }], ["path", { d: "M5 7V5a3 3 0 0 1 6 0v2" }]],
  unlock: [["rect", { x: 3, y: 7, width: 10, height: 8, rx: 1.5, class: "icon-fill" }], ["path", { d: "M5 7V5a3 3 0 0 1 5.8-1.1" }]],
  key: [["circle", { cx: 5, cy: 8, r: 3 }], ["path", { d: "M8 8h7M12 8v3M14.5 8v2" }]],
  warn: [["path", { d: "M8 2 15 14H1Z" }], ["path", { d: "M8 6v4M8 11.5v.5" }]],
};

/** A small inline SVG icon (lock, unlock, key, warn) drawn in the current text colour. */
export function icon(name, label = "") {
  const root = svg("svg", { class: `icon icon-${name}`, viewBox: "0 0 16 16", width: 14, height: 14, attrs: label ? { role: "img", "aria-label": label } : { "aria-hidden": "true" } });
  if (label) root.append(svg("title", { text: label }));
  for (const [tag, props] of ICONS[name] || []) root.append(svg(tag, props));
  return root;
}
