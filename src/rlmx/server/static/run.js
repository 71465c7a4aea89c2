// One run (#/runs/ID): header with totals, the answer, and the tree, live over SSE.

import { download, followEvents, getJSON, sendJSON } from "./api.js";
import { ACTIVE, badge, cost, el, seconds, tokens } from "./format.js";
import { RunNode, nestedBlock, textBlock, usageTokens } from "./tree.js";

let SUPPORTED_VERSION = 1;
export function setSupportedVersion(version) { SUPPORTED_VERSION = version; }

class RunPage {
  constructor(root, runId, setConn, warn) {
    this.runId = runId;
    this.setConn = setConn;
    this.warn = warn;
    this.runs = new Map();
    this.rootRun = null;
    this.nested = new Map();
    this.events = [];
    this.unknown = new Set();
    this.totals = { tokens: 0, prompt: 0, completion: 0, cost: 0, costKnown: true, subCalls: 0, iterations: 0 };
    this.status = "running";
    this.build(root);
  }

  build(root) {
    this.statusEl = el("span");
    this.cancelButton = el("button", { type: "button", class: "danger", hidden: true, text: "Cancel run",
      "data-testid": "cancel", onclick: () => this.cancel() });
    this.follow = el("input", { type: "checkbox", checked: true });
    this.queryEl = el("pre", { class: "query-text" });
    this.metaEl = el("div", { class: "meta small muted" });
    this.stat = {};
    const stats = el("div", { class: "stat-row" }, ...["iterations", "sub-calls", "tokens", "cost", "time"].map((name) => {
      this.stat[name] = el("div", { class: "stat-value", "data-testid": `stat-${name}`, text: "–" });
      return el("div", { class: "stat" }, el("div", { class: "stat-label", text: name }), this.stat[name]);
    }));
    this.answerEl = el("div", { class: "answer-box", hidden: true, "data-testid": "final-answer" });
    this.errorEl = el("div", { class: "error-box", hidden: true, "data-testid": "run-error" });
    this.treeEl = el("div", { class: "tree", "data-testid": "tree" }, el("p", { class: "muted", text: "Waiting for events…" }));
    this.rawCount = el("span", { text: "Raw events (0)" });
    this.rawEl = el("details", { class: "raw" }, el("summary", {}, this.rawCount));
    this.rawEl.addEventListener("toggle", () => this.renderRaw());
    const expand = (open) => () => this.treeEl.querySelectorAll("details").forEach((d) => {
      if (d.open !== open) { d.open = open; d.dispatchEvent(new Event("toggle")); }
    });
    root.replaceChildren(
      el("section", { class: "toolbar" },
        el("a", { href: "#/", class: "back", text: "← Runs" }),
        el("h1", { class: "mono", text: this.runId }), this.statusEl,
        el("span", { class: "spacer" }),
        el("label", { class: "small" }, this.follow, " follow"),
        el("button", { type: "button", class: "secondary", text: "Expand all", onclick: expand(true) }),
        el("button", { type: "button", class: "secondary", text: "Collapse all", onclick: expand(false) }),
        el("button", { type: "button", class: "secondary", text: "Download trace",
          onclick: () => download(`/v1/runs/${encodeURIComponent(this.runId)}/trace`, `rlmx-${this.runId}.jsonl`) }),
        this.cancelButton),
      this.queryEl, this.metaEl, stats, this.answerEl, this.errorEl, this.treeEl, this.rawEl);
  }

  async start() {
    try {
      this.summary = await getJSON(`/v1/runs/${encodeURIComponent(this.runId)}`);
      this.applySummary();
    } catch (error) {
      this.treeEl.replaceChildren(el("p", { class: "error-text", text: error.message }));
      return;
    }
    this.stop = followEvents(this.runId, {
      onEvents: (batch) => this.onEvents(batch),
      onEnd: (status) => this.onEnd(status),
      onState: (state, message) => this.setConn(state === "live" ? "ok" : state, message),
    });
    this.ticker = setInterval(() => this.renderTime(), 1000);
  }

  dispose() {
    if (this.stop) this.stop();
    clearInterval(this.ticker);
  }

  setStatus(status) {
    this.status = status;
    this.statusEl.replaceChildren(badge(status));
    this.cancelButton.hidden = !(ACTIVE.has(status) && this.summary && this.summary.live);
  }

  applySummary() {
    const s = this.summary;
    this.queryEl.textContent = s.query || "(no query recorded)";
    this.startedAt = s.started_at || s.created_at;
    this.finishedAt = s.finished_at;
    this.wall = s.wall_s;
    this.setStatus(s.status);
    this.renderMeta(s.root_model, s.sub_model, s.context);
    if (!this.events.length || !ACTIVE.has(s.status)) {
      Object.assign(this.totals, { tokens: s.total_tokens, prompt: s.prompt_tokens, completion: s.completion_tokens,
        cost: s.cost_usd ?? 0, costKnown: s.cost_usd !== null, subCalls: s.sub_calls, iterations: s.iterations });
    }
    if (s.answer !== null && s.answer !== undefined) this.showAnswer(s.answer);
    if (s.error) this.showError(s.status, s.error);
    this.renderTotals();
  }

  renderMeta(root, sub, context) {
    const parts = [];
    if (root) parts.push(`root ${root}`);
    if (sub && sub !== root) parts.push(`sub ${sub}`);
    if (context && (context.chars !== undefined || context.bytes !== undefined)) {
      const n = (x) => Number(x || 0).toLocaleString("en-US");
      const shape = context.kind === "directory" ? `directory of ${n(context.parts)} files`
        : context.kind !== "text" || (context.parts || 1) > 1 ? `${n(context.parts)} documents`
        : (context.form || "text");
      const size = context.chars === null || context.chars === undefined
        ? `${n(context.bytes)} bytes` : `${n(context.chars)} chars${context.lines !== undefined ? `, ${n(context.lines)} lines` : ""}`;
      parts.push(`context: ${shape}, ${size}`);
    }
    this.metaEl.textContent = parts.join(" · ");
  }

  renderTotals() {
    const t = this.totals;
    this.stat.iterations.textContent = String(t.iterations);
    this.stat["sub-calls"].textContent = String(t.subCalls);
    this.stat.tokens.textContent = tokens(t.tokens);
    this.stat.tokens.title = `prompt ${t.prompt.toLocaleString("en-US")} · completion ${t.completion.toLocaleString("en-US")}`;
    this.stat.cost.textContent = t.costKnown ? cost(t.cost) : "unknown";
    this.renderTime();
  }

  renderTime() {
    let time = this.wall;
    if (time === null || time === undefined) {
      if (!this.startedAt) return;
      time = (this.finishedAt || Date.now() / 1000) - this.startedAt;
    }
    this.stat.time.textContent = seconds(time);
  }

  showAnswer(answer) {
    this.answerEl.hidden = false;
    this.answerEl.replaceChildren(el("div", { class: "label", text: "Answer" }), el("pre", { class: "text", text: answer }));
  }

  showError(status, error) {
    this.errorEl.hidden = false;
    this.errorEl.replaceChildren(el("div", { class: "label", text: status }), el("pre", { class: "text", text: error }));
  }

  runFor(event) {
    return this.runs.get(event.run_id) || this.rootRun || this.ensureRoot(event.run_id);
  }

  ensureRoot(id) {
    if (!this.rootRun) {
      this.rootRun = new RunNode(this, id, 0);
      this.runs.set(id, this.rootRun);
      this.treeEl.replaceChildren(this.rootRun.el);
    }
    return this.rootRun;
  }

  onEvents(batch) {
    const doc = document.scrollingElement;
    const atBottom = doc.scrollHeight - doc.scrollTop - doc.clientHeight < 80;
    for (const [, event] of batch) {
      this.events.push(event);
      if (event.schema_version > SUPPORTED_VERSION) {
        this.warn(`This run was written by a newer rlmx (event schema ${event.schema_version}); some steps may be missing.`);
      }
      const handler = HANDLERS[event.type];
      if (handler) handler(this, event);
      else if (!this.unknown.has(event.type)) {
        this.unknown.add(event.type);
        this.treeEl.append(el("p", { class: "muted small", text: `(events of unknown type ${event.type} are not shown)` }));
      }
    }
    this.rawCount.textContent = `Raw events (${this.events.length})`;
    if (this.rawEl.open) this.renderRaw();
    this.renderTotals();
    if (this.follow.checked && atBottom && ACTIVE.has(this.status)) doc.scrollTop = doc.scrollHeight;
  }

  async onEnd(status) {
    this.setStatus(status);
    for (const run of this.runs.values()) if (!run.finished) run.finish(null);
    try {
      this.summary = await getJSON(`/v1/runs/${encodeURIComponent(this.runId)}`);
      this.applySummary();
    } catch { /* keep what the events said */ }
    this.setConn("ok");
  }

  async cancel() {
    this.cancelButton.disabled = true;
    try {
      this.summary = await sendJSON("DELETE", `/v1/runs/${encodeURIComponent(this.runId)}`);
      this.applySummary();
    } catch (error) {
      this.warn(error.message);
    } finally {
      this.cancelButton.disabled = false;
    }
  }

  renderRaw() {
    if (!this.rawEl.open) return;
    const shown = this.events.slice(-2000);
    const pre = el("pre", { class: "text raw-text", text: shown.map((e) => JSON.stringify(e)).join("\n") });
    const note = this.events.length > shown.length ? el("p", { class: "muted small", text: `last ${shown.length} of ${this.events.length}; download the trace for all` }) : null;
    this.rawEl.replaceChildren(this.rawEl.firstChild, note || "", pre);
  }
}

function addTokens(page, usage, costUsd) {
  const t = page.totals;
  t.tokens += usageTokens(usage);
  t.prompt += (usage && usage.prompt_tokens) || 0;
  t.completion += (usage && usage.completion_tokens) || 0;
  if (usage && usage.total_tokens) {
    if (costUsd === null || costUsd === undefined) t.costKnown = false; else t.cost += costUsd;
  }
}

// One handler per event type in events.schema.json (a test checks that none is missing).
const HANDLERS = {
  run_started(page, e) {
    const parent = e.parent_run_id && page.runs.get(e.parent_run_id);
    if (!parent) {
      const run = page.ensureRoot(e.run_id);
      page.runs.set(e.run_id, run);
      page.queryEl.textContent = e.query;
      page.startedAt = e.ts;
      page.renderMeta(e.root_model, e.sub_model, e.context);
      return;
    }
    const child = new RunNode(page, e.run_id, e.depth);
    page.runs.set(e.run_id, child);
    const block = nestedBlock(e, child);
    page.nested.set(e.run_id, block);
    parent.activeCell().callsEl.append(block);
  },
  iteration_started(page, e) { page.runFor(e).iteration(e.iteration); },
  root_reply(page, e) {
    const run = page.runFor(e);
    run.iteration(e.iteration).reply(e);
    addTokens(page, e.usage, e.cost_usd);
    if (run === page.rootRun) page.totals.iterations = Math.max(page.totals.iterations, e.iteration);
  },
  cell_started(page, e) {
    const cell = page.runFor(e).iteration(e.iteration).cell(e.index);
    cell.setCode(e.code);
    cell.setState("running");
  },
  cell_executed(page, e) {
    const it = page.runFor(e).iteration(e.iteration);
    it.cell(e.index).done(e);
    const next = it.cells[e.index + 1];
    if (next && next.state === "queued" && !e.final) next.setState("running");
    it.renderStats();
  },
  sub_call(page, e) {
    const run = page.runFor(e);
    page.totals.subCalls += 1;
    addTokens(page, e.usage, e.cost_usd);
    run.countCall(usageTokens(e.usage));
    const block = e.child_run_id && page.nested.get(e.child_run_id);
    if (block) block.update(e);
    else run.activeCell().addCall(e);
  },
  final_answer(page, e) {
    const run = page.runFor(e);
    run.final(e.answer);
    if (run === page.rootRun) page.showAnswer(e.answer);
  },
  run_error(page, e) {
    const run = page.runFor(e);
    if (run === page.rootRun) page.showError(e.status, e.error);
    else run.answerEl.append(textBlock(e.status, e.error, "error-text"));
  },
  run_finished(page, e) {
    const run = page.runFor(e);
    run.finish(e.result);
    if (run !== page.rootRun) return;
    const r = e.result || {};
    const total = (r.usage && r.usage.total) || {};
    Object.assign(page.totals, {
      iterations: r.iterations ?? page.totals.iterations, subCalls: r.sub_calls ?? page.totals.subCalls,
      tokens: total.total_tokens ?? page.totals.tokens, prompt: total.prompt_tokens ?? page.totals.prompt,
      completion: total.completion_tokens ?? page.totals.completion,
    });
    if ("cost_usd" in r) Object.assign(page.totals, { cost: r.cost_usd ?? 0, costKnown: r.cost_usd !== null });
    page.wall = r.wall_s;
    page.finishedAt = e.ts;
    if (r.status) page.setStatus(r.status);
    if (r.answer !== null && r.answer !== undefined) page.showAnswer(r.answer);
    if (r.error) page.showError(r.status, r.error);
  },
};

export const EVENT_TYPES = Object.keys(HANDLERS);

export function runView(root, runId, setConn, warn) {
  const page = new RunPage(root, runId, setConn, warn);
  page.start();
  return () => page.dispose();
}

