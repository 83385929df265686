// Client-side field decryption (see docs/encryption-and-redaction.md).
//
// An encrypted value is an envelope {"$enc": "aes256gcm", "kid", "nonce", "ct", "bidx"?}:
// AES-256-GCM over the JSON text of the value, the 16-byte tag appended to `ct`, the field
// path (e.g. "context.ip_address") as associated data, and the AES key derived with
// HKDF-SHA256(K, salt = empty, info = "plexichat-log/v1 aes-256-gcm").
//
// Keys the user pastes live only in this module's memory (non-extractable CryptoKeys by key
// id); they are never stored and never sent anywhere.

import { h, icon } from "./dom.js";

const ALGORITHM = "aes256gcm";
const enc = new TextEncoder();
const KID_LABEL = enc.encode("plexichat-log/v1 key-id");
const AES_INFO = enc.encode("plexichat-log/v1 aes-256-gcm");

/** key id -> AES-GCM CryptoKey (decrypt only, not extractable). */
const keys = new Map();
const chips = new Set();

/** Whether `value` is an encryption envelope. */
export function isEnvelope(value) {
  return (
    value !== null && typeof value === "object" && !Array.isArray(value) && value.$enc === ALGORITHM
  );
}

/** Whether any value inside `value` (at any depth) is an envelope. */
export function containsEnvelope(value, depth = 0) {
  if (isEnvelope(value)) return true;
  if (depth > 64 || value === null || typeof value !== "object") return false;
  return Object.values(value).some((v) => containsEnvelope(v, depth + 1));
}

/** Whether this browser can decrypt (WebCrypto needs https or localhost). */
export function cryptoAvailable() {
  return Boolean(window.isSecureContext && window.crypto && window.crypto.subtle);
}

/** Base64 (standard or URL-safe alphabet, padding optional) to bytes; throws on bad text. */
function base64ToBytes(text) {
  const clean = text.replace(/\s+/g, "").replace(/-/g, "+").replace(/_/g, "/");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) throw new Error("not base64");
  const padded = clean.replace(/=+$/, "") + "=".repeat((4 - (clean.replace(/=+$/, "").length % 4)) % 4);
  const binary = atob(padded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");

async function keyId(raw) {
  const data = new Uint8Array(KID_LABEL.length + raw.length);
  data.set(KID_LABEL, 0);
  data.set(raw, KID_LABEL.length);
  return hex(await crypto.subtle.digest("SHA-256", data)).slice(0, 16);
}

async function aesKey(raw) {
  const master = await crypto.subtle.importKey("raw", raw, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: AES_INFO },
    master,
    { name: "AES-GCM", length: 256 },
    false,
    ["decrypt"],
  );
}

/**
 * Replace the keys in memory by the base64 keys in `text` (separated by spaces, commas or
 * new lines). Returns their key ids; throws Error with a message for the user.
 */
export async function setKeys(text) {
  if (!cryptoAvailable()) {
    throw new Error("this page is not a secure context (https or localhost): the browser offers no WebCrypto");
  }
  const parts = String(text).split(/[\s,;]+/).filter(Boolean);
  if (!parts.length) throw new Error("paste a base64 key first");
  const loaded = new Map();
  for (const [index, part] of parts.entries()) {
    let raw;
    try {
      raw = base64ToBytes(part);
    } catch {
      raw = new Uint8Array(0);
    }
    if (raw.length !== 32) {
      throw new Error(`key ${index + 1} is not a base64 32-byte key (got ${raw.length} bytes)`);
    }
    const kid = await keyId(raw);
    loaded.set(kid, await aesKey(raw));
    raw.fill(0);
  }
  keys.clear();
  for (const [kid, key] of loaded) keys.set(kid, key);
  refreshChips();
  return [...loaded.keys()];
}

/** Forget every key (chips lock again). */
export function forgetKeys() {
  keys.clear();
  refreshChips();
}

/** The ids of the keys in memory. */
export function keyIds() {
  return [...keys.keys()];
}

/**
 * Decrypt an envelope found at `path`. Returns {ok: true, value} or {ok: false, reason}.
 */
export async function decryptEnvelope(envelope, path) {
  const key = keys.get(envelope.kid);
  if (!key) return { ok: false, reason: `no key with id ${String(envelope.kid)}` };
  let nonce;
  let ct;
  try {
    nonce = base64ToBytes(String(envelope.nonce));
    ct = base64ToBytes(String(envelope.ct));
  } catch {
    return { ok: false, reason: "malformed envelope" };
  }
  if (nonce.length !== 12) return { ok: false, reason: `nonce is ${nonce.length} bytes, not 12` };
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: nonce, additionalData: enc.encode(path), tagLength: 128 },
      key,
      ct,
    );
    return { ok: true, value: JSON.parse(new TextDecoder().decode(plain)) };
  } catch {
    return { ok: false, reason: `authentication failed at ${path} (tampered ciphertext, moved value or wrong key)` };
  }
}

/**
 * A chip standing for an encrypted value at `path`: locked (a lock and the key id) until a key with
 * that id is in memory, then the plaintext rendered by `renderValue(value, path)`.
 */
export function encryptedChip(envelope, path, renderValue) {
  const holder = h("span", { class: "enc", dataset: { path } });
  const chip = { holder, envelope, path, renderValue, shown: null };
  chips.add(chip);
  updateChip(chip);
  return holder;
}

function lockedChip(chip, reason) {
  const kid = String(chip.envelope.kid ?? "?");
  const label = reason ? `encrypted (key ${kid}): ${reason}` : `encrypted (key ${kid})`;
  const title = reason
    ? reason
    : "Encrypted field. Paste the key under “Decryption key” to read it here (it never leaves this page).";
  return h("span", { class: reason ? "chip chip-locked chip-failed" : "chip chip-locked", title }, icon("lock"), " ", label);
}

async function updateChip(chip) {
  const { holder } = chip;
  if (!keys.size || !keys.has(chip.envelope.kid)) {
    const reason = keys.size ? `no key with id ${String(chip.envelope.kid)}` : "";
    holder.replaceChildren(lockedChip(chip, reason));
    holder.dataset.state = "locked";
    return;
  }
  const result = await decryptEnvelope(chip.envelope, chip.path);
  if (!holder.isConnected && !chips.has(chip)) return;
  if (!result.ok) {
    holder.replaceChildren(lockedChip(chip, result.reason));
    holder.dataset.state = "failed";
    return;
  }
  const shown = h(
    "span",
    { class: "chip chip-unlocked", title: `decrypted in this page with key ${chip.envelope.kid}` },
    icon("unlock", "decrypted"),
    " ",
    chip.renderValue(result.value, chip.path),
  );
  holder.replaceChildren(shown);
  holder.dataset.state = "decrypted";
}

/** Re-render every chip still on the page (after keys changed); forget detached ones. */
function refreshChips() {
  for (const chip of [...chips]) {
    if (!chip.holder.isConnected) {
      chips.delete(chip);
      continue;
    }
    updateChip(chip);
  }
}

/** Drop chips whose element left the page (called when lists are trimmed). */
export function pruneChips() {
  for (const chip of [...chips]) if (!chip.holder.isConnected) chips.delete(chip);
}
