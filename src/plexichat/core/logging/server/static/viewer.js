// PlexiChat Logs web viewer: sign-in, tabs, theme and the decryption key box.
// The page holds no data of its own: everything comes from the API with the user's token.

import { ApiError, apiFetch, describeError, onRole, onUnauthorized, session } from "./api.js";
import { cryptoAvailable, forgetKeys, keyIds, setKeys } from "./crypto.js";
import { byId, showError } from "./dom.js";
import { initMetrics, setMetricsActive } from "./metrics.js";
import { initSearch, resetSearch, showSearch, showSecurity } from "./search.js";
import { initStats, refreshStats, resetStats, setStatsActive } from "./stats.js";
import { initTail, startTail, stopTail } from "./tail.js";

const VIEWS = ["tail", "search", "security", "metrics", "stats"];
const BADGE_REFRESH_MS = 60000;
const THEMES = ["auto", "light", "dark"];
const THEME_KEY = "plexichat-logs.theme";

let current = null;
let badgeTimer = null;
let signedIn = false;

function selectView(view, focus = false) {
  if (!VIEWS.includes(view)) view = "tail";
  if (current === view) return;
  const previous = current;
  current = view;
  for (const name of VIEWS) {
    const tab = byId(`tab-${name}`);
    const panel = byId(`panel-${name}`);
    const selected = name === view;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    panel.hidden = !selected;
  }
  if (focus) byId(`tab-${view}`).focus();
  if (previous === "metrics") setMetricsActive(false);
  if (previous === "stats") setStatsActive(false);
  if (view === "search") showSearch();
  if (view === "security") showSecurity();
  if (view === "metrics") setMetricsActive(true);
  if (view === "stats") setStatsActive(true);
  if (window.location.hash !== `#${view}`) history.replaceState(null, "", `#${view}`);
}

function initTabs() {
  const tabs = VIEWS.map((name) => byId(`tab-${name}`));
  for (const tab of tabs) tab.addEventListener("click", () => selectView(tab.dataset.view));
  byId("tabs").addEventListener("keydown", (event) => {
    const index = VIEWS.indexOf(current);
    let next = null;
    if (event.key === "ArrowRight") next = VIEWS[(index + 1) % VIEWS.length];
    if (event.key === "ArrowLeft") next = VIEWS[(index - 1 + VIEWS.length) % VIEWS.length];
    if (event.key === "Home") next = VIEWS[0];
    if (event.key === "End") next = VIEWS[VIEWS.length - 1];
    if (next) {
      event.preventDefault();
      selectView(next, true);
    }
  });
  window.addEventListener("hashchange", () => {
    if (signedIn) selectView(window.location.hash.slice(1));
  });
}

function showLogin(message = "") {
  signedIn = false;
  clearInterval(badgeTimer);
  stopTail();
  resetSearch();
  resetStats();
  setMetricsActive(false);
  forgetKeys();
  byId("key-input").value = "";
  byId("key-status").textContent = "";
  current = null;
  for (const name of VIEWS) byId(`panel-${name}`).hidden = true;
  for (const id of ["tabs", "sign-out", "key-toggle", "role-badge", "key-panel"]) byId(id).hidden = true;
  byId("key-toggle").setAttribute("aria-expanded", "false");
  byId("login").hidden = false;
  showError(byId("login-error"), message);
  const input = byId("token-input");
  input.value = "";
  input.focus();
}

function showApp() {
  signedIn = true;
  byId("login").hidden = true;
  for (const id of ["tabs", "sign-out", "key-toggle"]) byId(id).hidden = false;
  selectView(window.location.hash.slice(1) || "tail");
  startTail();
  refreshStats({ quiet: true }).catch(() => {});
  clearInterval(badgeTimer);
  badgeTimer = setInterval(() => refreshStats({ quiet: true }).catch(() => {}), BADGE_REFRESH_MS);
}

/** Ask the server who the token is (sets the role); false when the token was refused. */
async function identify() {
  try {
    const me = await apiFetch("/whoami");
    if (me && me.role) session.setRole(String(me.role));
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return false; // the form is back
    if (err instanceof ApiError && err.status === 404) {
      // A server without /whoami: any viewer route proves the token (the role comes
      // with the live tail's "subscribed" message).
      try {
        await apiFetch("/stats");
        return true;
      } catch (inner) {
        if (inner instanceof ApiError && inner.status === 401) return false;
        throw inner;
      }
    }
    throw err;
  }
}

async function signIn(token) {
  session.setToken(token);
  try {
    if (!(await identify())) return;
  } catch (err) {
    session.clear();
    showLogin(describeError(err));
    return;
  }
  showApp();
}

function initLogin() {
  byId("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = byId("token-input").value.trim();
    if (token) signIn(token);
  });
  byId("sign-out").addEventListener("click", () => {
    session.clear();
    showLogin("Signed out.");
  });
  onUnauthorized((message) => {
    if (!signedIn && !session.token) return;
    session.clear();
    showLogin(message || "The server refused the token.");
  });
  onRole((role) => {
    const badge = byId("role-badge");
    badge.textContent = role ? `role: ${role}` : "";
    badge.hidden = !role;
    badge.dataset.role = role || "";
  });
}

function initKeyBox() {
  const toggle = byId("key-toggle");
  const panel = byId("key-panel");
  const input = byId("key-input");
  const status = byId("key-status");
  const describe = () => {
    const ids = keyIds();
    status.textContent = ids.length
      ? `Key${ids.length > 1 ? "s" : ""} in memory: ${ids.join(", ")}. Encrypted fields with ${ids.length > 1 ? "these ids" : "this id"} are shown decrypted.`
      : cryptoAvailable()
        ? "No key in memory: encrypted fields stay locked."
        : "Decryption needs a secure context (https, or http on localhost).";
    toggle.classList.toggle("has-key", ids.length > 0);
  };
  toggle.addEventListener("click", () => {
    const open = panel.hidden;
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) input.focus();
    describe();
  });
  byId("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await setKeys(input.value);
      input.value = "";
      describe();
    } catch (err) {
      input.value = "";
      status.textContent = `Key not used: ${err.message}`;
    }
  });
  byId("key-forget").addEventListener("click", () => {
    forgetKeys();
    input.value = "";
    describe();
  });
  describe();
}

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  byId("theme-label").textContent = theme[0].toUpperCase() + theme.slice(1);
}

function initTheme() {
  let theme = "auto";
  try {
    theme = localStorage.getItem(THEME_KEY) || "auto";
  } catch {
    /* storage disabled */
  }
  applyTheme(THEMES.includes(theme) ? theme : "auto");
  byId("theme-toggle").addEventListener("click", () => {
    const next = THEMES[(THEMES.indexOf(document.documentElement.dataset.theme) + 1) % THEMES.length];
    applyTheme(next);
    try {
      localStorage.setItem(THEME_KEY, next);
    } catch {
      /* not kept */
    }
  });
}

function main() {
  initTheme();
  initTabs();
  initLogin();
  initKeyBox();
  initTail();
  initSearch();
  initMetrics();
  initStats();
  if (session.token) {
    showApp(); // a reload: the token of this tab is still valid unless the server says 401
    identify().catch(() => {});
  } else {
    showLogin();
  }
  document.body.dataset.ready = "true";
}

main();
