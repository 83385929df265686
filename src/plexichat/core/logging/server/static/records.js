// One log record as a list row: a summary line (time, level, category, logger, message) that
// expands into its details (context, metadata, performance data, exception, source) rendered
// as formatted JSON. Encrypted values show as chips (crypto.js). Everything is text nodes.

import { containsEnvelope, encryptedChip, isEnvelope } from "./crypto.js";
import { formatTime, h, icon, levelClass } from "./dom.js";

/** Fields of the stream protocol that are not part of the record itself. */
const PROTOCOL_FIELDS = new Set(["type", "cursor"]);

/** The record without the stream's protocol fields. */
export function recordOf(message) {
  const out = {};
  for (const [key, value] of Object.entries(message || {})) {
    if (!PROTOCOL_FIELDS.has(key)) out[key] = value;
  }
  return out;
}

/**
 * Formatted JSON of `value` as DOM nodes (like JSON.stringify(value, null, 2)), with every
 * envelope replaced by an encrypted chip. `path` is the field path of `value` (the
 * envelope's associated data: "context", "context.user.email"; list items keep the path).
 */
const MAX_DEPTH = 64;

export function renderJson(value, path = "", indent = 0) {
  if (indent > MAX_DEPTH) return h("span", { class: "j-null", text: "… (nested too deep to show)" });
  if (isEnvelope(value)) return encryptedChip(value, path, (plain, p) => renderJson(plain, p, indent));
  if (value === null) return h("span", { class: "j-null", text: "null" });
  if (typeof value === "string") return h("span", { class: "j-str", text: JSON.stringify(value) });
  if (typeof value === "number") return h("span", { class: "j-num", text: String(value) });
  if (typeof value === "boolean") return h("span", { class: "j-bool", text: String(value) });
  const pad = "  ".repeat(indent + 1);
  const close = "  ".repeat(indent);
  const frag = document.createDocumentFragment();
  if (Array.isArray(value)) {
    if (!value.length) return h("span", { text: "[]" });
    frag.append("[\n");
    value.forEach((item, i) => {
      frag.append(pad, renderJson(item, path, indent + 1), i < value.length - 1 ? ",\n" : "\n");
    });
    frag.append(`${close}]`);
    return frag;
  }
  if (typeof value === "object") {
    const entries = Object.entries(value);
    if (!entries.length) return h("span", { text: "{}" });
    frag.append("{\n");
    entries.forEach(([key, item], i) => {
      const child = path ? `${path}.${key}` : key;
      frag.append(
        pad,
        h("span", { class: "j-key", text: JSON.stringify(key) }),
        ": ",
        renderJson(item, child, indent + 1),
        i < entries.length - 1 ? ",\n" : "\n",
      );
    });
    frag.append(`${close}}`);
    return frag;
  }
  return h("span", { text: String(value) });
}

function jsonBlock(title, value, path) {
  return h(
    "section",
    { class: "detail-block" },
    h("h3", { text: title }),
    h("pre", { class: "json", tabindex: "0" }, renderJson(value, path)),
  );
}

function exceptionBlock(exc) {
  if (exc === null || typeof exc !== "object") return jsonBlock("Exception", exc, "exception");
  const type = exc.type ?? exc.exc_type ?? "Exception";
  const message = exc.message ?? exc.value ?? "";
  const parts = [h("h3", { text: "Exception" }), h("p", { class: "exc-head", text: `${type}: ${message}` })];
  const tb = exc.traceback ?? exc.stack ?? exc.text;
  if (typeof tb === "string" && tb) {
    parts.push(h("pre", { class: "traceback", tabindex: "0", text: tb }));
  } else if (Array.isArray(tb) && tb.every((line) => typeof line === "string")) {
    // The logger keeps one line per item (no line ends); older writers kept format_exception chunks.
    parts.push(h("pre", { class: "traceback", tabindex: "0", text: tb.map((l) => l.replace(/\n$/, "")).join("\n") }));
  }
  const frames = Array.isArray(exc.frames) ? exc.frames : Array.isArray(tb) && !tb.every((l) => typeof l === "string") ? tb : null;
  if (frames) {
    const list = h("ol", { class: "frames" });
    for (const f of frames) {
      if (f && typeof f === "object") {
        const where = `${f.filename ?? f.file ?? "?"}:${f.lineno ?? f.line ?? "?"} in ${f.name ?? f.function ?? "?"}`;
        list.append(h("li", {}, h("code", { text: where }), f.code || f.source_line ? h("pre", { text: String(f.code ?? f.source_line) }) : null));
      } else {
        list.append(h("li", { text: String(f) }));
      }
    }
    parts.push(list);
  }
  parts.push(h("details", {}, h("summary", { text: "Exception as JSON" }), h("pre", { class: "json" }, renderJson(exc, "exception"))));
  return h("section", { class: "detail-block exception" }, parts);
}

/** The expanded part of a record row. */
export function renderDetails(record) {
  const box = h("div", { class: "rec-details" });
  const source = [record.module, record.function, record.line].some((v) => v !== undefined && v !== null)
    ? `${record.module ?? "?"}.${record.function ?? "?"}:${record.line ?? "?"}`
    : null;
  const facts = [
    ["Time", record.timestamp],
    ["Logger", record.logger],
    ["Source", source],
    ["Stream", record.stream !== undefined ? `${record.stream} #${record.seq ?? "?"}` : null],
    ["Tag", record.tag],
  ].filter(([, v]) => v !== undefined && v !== null && v !== "");
  const dl = h("dl", { class: "facts" });
  for (const [name, value] of facts) dl.append(h("dt", { text: name }), h("dd", { text: String(value) }));
  box.append(dl);
  for (const [field, title] of [
    ["context", "Context"],
    ["metadata", "Metadata"],
    ["performance_data", "Performance data"],
  ]) {
    if (record[field] !== undefined && record[field] !== null) box.append(jsonBlock(title, record[field], field));
  }
  if (record.exception !== undefined && record.exception !== null) box.append(exceptionBlock(record.exception));
  box.append(
    h("details", { class: "raw" }, h("summary", { text: "Whole record (JSON)" }), h("pre", { class: "json" }, renderJson(record, ""))),
  );
  return box;
}

let rowCounter = 0;

/**
 * A list item for `record`: a toggle button with the summary and lazily built details.
 * `options.withDate` shows the date too (search results).
 */
export function renderRecord(record, options = {}) {
  rowCounter += 1;
  const id = `rec-${rowCounter}`;
  const level = String(record.level ?? "");
  const encrypted = ["context", "metadata", "performance_data"].some((f) => containsEnvelope(record[f]));
  const summary = h(
    "button",
    { type: "button", class: "rec-summary", attrs: { "aria-expanded": "false", "aria-controls": id } },
    h("time", { class: "rec-time", datetime: String(record.timestamp ?? ""), title: String(record.timestamp ?? ""), text: formatTime(record.timestamp, options.withDate) }),
    h("span", { class: levelClass(level), text: level || "?" }),
    h("span", { class: "rec-cat", text: String(record.category ?? "") }),
    h("span", { class: "rec-logger", title: String(record.logger ?? ""), text: String(record.logger ?? "") }),
    h("span", { class: "rec-msg", text: String(record.message ?? "") }),
    record.exception ? h("span", { class: "rec-flag", title: "has an exception" }, icon("warn", "has an exception")) : null,
    encrypted ? h("span", { class: "rec-flag", title: "has encrypted fields" }, icon("lock", "has encrypted fields")) : null,
  );
  const details = h("div", { id, class: "rec-body", hidden: true });
  const item = h("li", { class: `rec rec-${level.toLowerCase()}`, dataset: { level } }, summary, details);
  summary.addEventListener("click", () => {
    const open = summary.getAttribute("aria-expanded") === "true";
    if (!open && !details.firstChild) details.append(renderDetails(record));
    summary.setAttribute("aria-expanded", String(!open));
    details.hidden = open;
    item.classList.toggle("open", !open);
  });
  return item;
}

/** A notice row in a record list (dropped records, filter changes, reconnects). */
export function renderNotice(text, kind = "info") {
  return h("li", { class: `notice-row notice-${kind}`, attrs: { role: "note" } }, h("span", { text }));
}
