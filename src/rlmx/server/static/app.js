// The rlmx viewer: a hash router over the runs list, one run, and the new-run form.

import { getToken, setToken, whenAuthNeeded } from "./api.js";
import { runView, setSupportedVersion } from "./run.js";
import { newRunView, runsView } from "./runs.js";

const view = document.getElementById("view");
const conn = document.getElementById("conn");
const banner = document.getElementById("banner");
const tokenButton = document.getElementById("token-button");
const tokenDialog = document.getElementById("token-dialog");
const tokenInput = document.getElementById("token-input");
let dispose = () => {};

function setConn(state, message) {
  conn.dataset.state = state;
  conn.title = message || { ok: "connected", live: "live", reconnecting: "reconnecting…", error: "error" }[state] || state;
}

function warn(message) {
  banner.textContent = message;
  banner.hidden = false;
}

function route() {
  dispose();
  banner.hidden = true;
  window.scrollTo(0, 0);
  const hash = location.hash.replace(/^#/, "") || "/";
  const match = hash.match(/^\/runs\/([^/?]+)/);
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.remove("current"));
  if (match) {
    dispose = runView(view, decodeURIComponent(match[1]), setConn, warn);
  } else if (hash === "/new") {
    document.querySelector('[data-nav="new"]').classList.add("current");
    dispose = newRunView(view);
  } else {
    document.querySelector('[data-nav="runs"]').classList.add("current");
    dispose = runsView(view, setConn);
  }
}

whenAuthNeeded(() => {
  tokenButton.hidden = false;
  if (!tokenDialog.open) {
    tokenInput.value = getToken();
    tokenDialog.showModal();
  }
});
tokenButton.addEventListener("click", () => { tokenInput.value = getToken(); tokenDialog.showModal(); });
tokenDialog.addEventListener("close", () => {
  if (tokenDialog.returnValue === "ok") {
    setToken(tokenInput.value.trim());
    route();
  }
});
if (getToken()) tokenButton.hidden = false;

fetch("/static/events.schema.json").then((r) => r.json())
  .then((schema) => setSupportedVersion(schema.schema_version || 1)).catch(() => {});
window.addEventListener("hashchange", route);
route();
