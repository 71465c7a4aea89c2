// The runs list (#/) and the new-run form (#/new).

import { getJSON, sendJSON, uploadContext } from "./api.js";
import { ACTIVE, ago, badge, clip, cost, el, seconds, tokens } from "./format.js";

const REFRESH_MS = 1000;

export function runsView(root, setConn) {
  let stopped = false;
  let timer = null;
  const search = el("input", { type: "search", placeholder: "Filter by query or id", "aria-label": "filter" });
  const status = el("select", { "aria-label": "status" },
    ["", "running", "queued", "completed", "max_iterations", "stalled", "budget_exceeded", "timeout", "error",
      "cancelled", "interrupted"].map((s) => el("option", { value: s, text: s || "any status" })));
  const body = el("tbody");
  const empty = el("p", { class: "empty", hidden: true },
    "No runs yet. Start one with ", el("code", { text: "rlmx run QUERY --context FILE" }),
    ", from the ", el("a", { href: "#/new", text: "New run" }), " form, or with ",
    el("code", { text: "POST /v1/runs" }), ".");
  const table = el("table", { class: "runs", "data-testid": "runs-table" },
    el("thead", {}, el("tr", {},
      ["Status", "Run", "Query", "Model", "Iter.", "Sub-calls", "Tokens", "Cost", "Time", "Started"]
        .map((h) => el("th", { text: h })))),
    body);
  root.replaceChildren(
    el("section", { class: "toolbar" }, el("h1", { text: "Runs" }), el("span", { class: "spacer" }),
      search, status),
    table, empty);

  async function refresh() {
    if (stopped) return;
    const params = new URLSearchParams({ limit: "200" });
    if (search.value.trim()) params.set("q", search.value.trim());
    if (status.value) params.set("status", status.value);
    try {
      const data = await getJSON(`/v1/runs?${params}`);
      if (stopped) return;
      setConn("ok");
      render(data.runs);
    } catch (error) {
      setConn("error", error.message);
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }

  function render(runs) {
    empty.hidden = runs.length > 0 || Boolean(search.value || status.value);
    body.replaceChildren(...runs.map((run) => {
      const href = `#/runs/${encodeURIComponent(run.id)}`;
      const row = el("tr", { "data-testid": "run-row", "data-run-id": run.id, "data-status": run.status,
        class: ACTIVE.has(run.status) ? "active" : "", onclick: () => { location.hash = href; } },
        el("td", {}, badge(run.status)),
        el("td", { class: "mono" }, el("a", { href, text: run.id })),
        el("td", { class: "query", title: run.query, text: clip(run.query, 90) }),
        el("td", { class: "mono small", title: run.root_model || "", text: clip(run.root_model || "–", 32) }),
        el("td", { class: "num", text: String(run.iterations) }),
        el("td", { class: "num", text: String(run.sub_calls) }),
        el("td", { class: "num", "data-testid": "run-tokens", text: tokens(run.total_tokens) }),
        el("td", { class: "num", text: cost(run.cost_usd) }),
        el("td", { class: "num", text: seconds(run.elapsed_s) }),
        el("td", { class: "small muted", title: new Date(run.created_at * 1000).toLocaleString(),
          text: ago(run.created_at) }));
      return row;
    }));
  }

  let debounce = null;
  search.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => { clearTimeout(timer); refresh(); }, 250); });
  status.addEventListener("change", () => { clearTimeout(timer); refresh(); });
  refresh();
  return () => { stopped = true; clearTimeout(timer); clearTimeout(debounce); };
}

export function newRunView(root) {
  const error = el("p", { class: "error-text", hidden: true });
  const info = el("p", { class: "muted small" });
  const form = el("form", { class: "new-run", "data-testid": "new-run-form" });
  const query = el("textarea", { name: "query", rows: 3, required: true, placeholder: "What do you want to know about the context?" });
  const files = el("input", { type: "file", name: "files", multiple: true });
  const text = el("textarea", { name: "text", rows: 5, placeholder: "…or paste the context here" });
  const paths = el("input", { name: "paths", placeholder: "server-side paths, comma-separated" });
  const model = el("input", { name: "model", placeholder: "default", class: "mono" });
  const subModel = el("input", { name: "sub_model", placeholder: "same as the root", class: "mono" });
  const maxIter = el("input", { name: "max_iterations", type: "number", min: 1, max: 1000, placeholder: "30" });
  const maxDepth = el("input", { name: "max_depth", type: "number", min: 0, max: 8, placeholder: "1" });
  const timeout = el("input", { name: "timeout_s", type: "number", min: 1, placeholder: "none" });
  const submit = el("button", { type: "submit", text: "Start run" });
  const pathsRow = el("label", { hidden: true }, "Server-side paths", paths);
  form.append(
    el("label", {}, "Query", query),
    el("fieldset", {}, el("legend", { text: "Context" }), el("label", {}, "Files", files), text, pathsRow),
    el("div", { class: "row" },
      el("label", {}, "Root model", model), el("label", {}, "Sub-model", subModel)),
    el("div", { class: "row" },
      el("label", {}, "Max iterations", maxIter), el("label", {}, "Max depth", maxDepth),
      el("label", {}, "Timeout (s)", timeout)),
    el("div", { class: "row" }, submit, info), error);
  root.replaceChildren(el("h1", { text: "New run" }), form);

  getJSON("/v1/info").then((server) => {
    if (server.model) model.placeholder = server.model;
    pathsRow.hidden = !server.server_paths;
    info.textContent = `uploads up to ${(server.max_upload_bytes / 1048576).toFixed(0)} MiB · sandbox ${server.sandbox}`;
  }).catch(() => {});

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      const ids = [];
      for (const file of files.files) {
        submit.textContent = `Uploading ${file.name}…`;
        ids.push((await uploadContext(file)).id);
      }
      const limits = {};
      for (const [input, key] of [[maxIter, "max_iterations"], [maxDepth, "max_depth"], [timeout, "timeout_s"]]) {
        if (input.value !== "") limits[key] = Number(input.value);
      }
      const body = { query: query.value, context_ids: ids, limits };
      if (text.value) body.text = text.value;
      const pathList = paths.value.split(",").map((p) => p.trim()).filter(Boolean);
      if (pathList.length) body.paths = pathList;
      if (model.value.trim()) body.model = model.value.trim();
      if (subModel.value.trim()) body.sub_model = subModel.value.trim();
      submit.textContent = "Starting…";
      const run = await sendJSON("POST", "/v1/runs", body);
      location.hash = `#/runs/${encodeURIComponent(run.id)}`;
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
      submit.textContent = "Start run";
    }
  });
  return () => {};
}
