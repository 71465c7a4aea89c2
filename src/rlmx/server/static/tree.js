// One run as a tree, built incrementally from its events: iterations hold the root model's
// reply and its code cells; each cell holds the sub-calls made while it ran, and nested runs
// (rlm_query) render as trees of their own, indented by depth.

import { highlightPython } from "./highlight.js";
import { clip, el, seconds, tokens } from "./format.js";

const FENCE = /```[ \t]*(repl|python3?|py)?[ \t]*\n([\s\S]*?)(?:\n[ \t]*```|$)/gi;

export function codeBlocks(text) {
  const out = [];
  for (const match of String(text).matchAll(FENCE)) {
    const code = match[2].replace(/^\n+|\n+$/g, "");
    if (code.trim()) out.push(code);
  }
  return out;
}

function prose(text) { return String(text).replace(FENCE, "").trim(); }

function usageTokens(usage) { return (usage && usage.total_tokens) || 0; }

function chip(text, cls = "") { return el("span", { class: `chip ${cls}`, text }); }

// A <details> whose body is built the first time it is opened (prompts can be huge).
function lazyDetails(summary, build, attrs = {}) {
  const details = el("details", attrs, summary);
  let built = false;
  details.addEventListener("toggle", () => {
    if (details.open && !built) { built = true; details.append(build()); }
  });
  return details;
}

function textBlock(label, text, cls = "") {
  return el("div", { class: "block" }, el("div", { class: "label", text: label }),
    el("pre", { class: `text ${cls}`, text: text || "(empty)" }));
}

class CellNode {
  constructor(iteration, index) {
    this.iteration = iteration;
    this.index = index;
    this.state = "queued";
    this.stateEl = chip("queued", "state");
    this.durationEl = chip("", "hidden");
    this.codeEl = el("pre", { class: "code" });
    this.outputEl = el("div", { class: "outputs" });
    this.callsEl = el("div", { class: "calls" });
    this.el = el("div", { class: "cell", "data-testid": "cell", "data-state": "queued" },
      el("div", { class: "cell-head" }, el("span", { class: "cell-title", text: `cell ${index + 1}` }),
        this.stateEl, this.durationEl),
      this.codeEl, this.outputEl, this.callsEl);
  }

  setCode(code) {
    if (code === undefined || code === this.code) return;
    this.code = code;
    this.codeEl.replaceChildren(highlightPython(code));
  }

  setState(state) {
    this.state = state;
    this.el.dataset.state = state;
    this.stateEl.textContent = state;
    this.stateEl.className = `chip state state-${state}`;
  }

  done(event) {
    this.setCode(event.code);
    this.setState(event.error ? "error" : "done");
    this.durationEl.textContent = seconds(event.duration_s);
    this.durationEl.className = "chip";
    const parts = [];
    if (event.output) parts.push(textBlock("output", event.output, "output"));
    if (event.error) parts.push(textBlock("error", event.error, "error-text"));
    if (event.final !== null && event.final !== undefined) parts.push(textBlock("FINAL", event.final, "final"));
    if (!parts.length) parts.push(el("div", { class: "muted small", text: "no output" }));
    this.outputEl.replaceChildren(...parts);
  }

  addCall(event) {
    const usage = usageTokens(event.usage);
    const summary = el("summary", {},
      chip(event.kind === "rlm" ? "rlm_query" : "llm_query", `kind-${event.kind}`),
      el("span", { class: "mono small", text: event.model }),
      chip(`${tokens(usage)} tok`), chip(seconds(event.latency_s)),
      event.error ? chip("error", "state-error") : null,
      el("span", { class: "preview", text: clip(event.error || event.response, 120) }));
    const call = lazyDetails(summary, () => el("div", { class: "call-body" },
      textBlock("prompt", event.prompt), event.error ? textBlock("error", event.error, "error-text") : null,
      textBlock("response", event.response)),
    { class: `call depth-${event.depth % 6}`, "data-testid": "sub-call", "data-depth": event.depth });
    this.callsEl.append(call);
    return call;
  }
}

class IterationNode {
  constructor(run, n) {
    this.run = run;
    this.n = n;
    this.cells = [];
    this.tokens = 0;
    this.subCalls = 0;
    this.statsEl = el("span", { class: "stats" });
    this.proseEl = el("div", { class: "prose" });
    this.cellsEl = el("div", { class: "cells" });
    this.el = el("details", { class: "iteration", open: true, "data-testid": "iteration", "data-iteration": n },
      el("summary", {}, el("span", { class: "iter-title", text: `Iteration ${n}` }), this.statsEl),
      this.proseEl, this.cellsEl);
    this.waiting = chip("waiting for the model", "state state-running");
    this.statsEl.append(this.waiting);
  }

  reply(event) {
    this.text = event.text;
    this.tokens += usageTokens(event.usage);
    this.latency = event.latency_s;
    this.model = event.model;
    const said = prose(event.text);
    this.proseEl.replaceChildren();
    if (said) this.proseEl.append(el("pre", { class: "text prose-text", text: said }));
    const blocks = codeBlocks(event.text);
    if (!blocks.length && !said) this.proseEl.append(el("div", { class: "muted small", text: "(empty reply)" }));
    if (!blocks.length) this.proseEl.append(el("div", { class: "muted small", text: "no code in this reply" }));
    blocks.forEach((code, i) => this.cell(i).setCode(code));
    if (this.cells.length && this.cells.every((c) => c.state === "queued")) this.cells[0].setState("running");
    this.renderStats();
  }

  cell(index) {
    while (this.cells.length <= index) {
      const cell = new CellNode(this, this.cells.length);
      this.cells.push(cell);
      this.cellsEl.append(cell.el);
    }
    return this.cells[index];
  }

  activeCell() {
    const open = this.cells.find((c) => c.state === "running" || c.state === "queued");
    const cell = open || this.cell(this.cells.length);
    if (cell.state === "queued") cell.setState("running");
    return cell;
  }

  close() {
    for (const cell of this.cells) if (cell.state === "queued" || cell.state === "running") cell.setState("not run");
    this.waiting.remove();
  }

  renderStats() {
    const parts = [chip(`${tokens(this.tokens)} tok`, "tokens")];
    if (this.latency !== undefined) parts.push(chip(seconds(this.latency)));
    if (this.cells.length) parts.push(chip(`${this.cells.length} cell${this.cells.length > 1 ? "s" : ""}`));
    if (this.subCalls) parts.push(chip(`${this.subCalls} sub-call${this.subCalls > 1 ? "s" : ""}`));
    this.statsEl.replaceChildren(...parts);
  }
}

export class RunNode {
  constructor(tree, id, depth) {
    this.tree = tree;
    this.id = id;
    this.depth = depth;
    this.iterations = new Map();
    this.latest = null;
    this.finished = false;
    this.answerEl = el("div", { class: "run-answer" });
    this.itersEl = el("div", { class: "iterations" });
    this.el = el("div", { class: `run depth-${depth % 6}`, "data-run-id": id, "data-depth": depth },
      this.itersEl, this.answerEl);
  }

  iteration(n) {
    let it = this.iterations.get(n);
    if (!it) {
      if (this.latest) this.latest.close();
      it = new IterationNode(this, n);
      this.iterations.set(n, it);
      this.latest = it;
      this.itersEl.append(it.el);
    }
    return it;
  }

  activeCell() { return (this.latest || this.iteration(1)).activeCell(); }

  countCall(tokensUsed) {
    if (!this.latest) return;
    this.latest.subCalls += 1;
    this.latest.tokens += tokensUsed;
    this.latest.renderStats();
  }

  final(answer) {
    this.answer = answer;
    if (this.depth > 0) this.answerEl.replaceChildren(textBlock("answer", answer, "final"));
  }

  finish(result) {
    this.finished = true;
    if (this.latest) this.latest.close();
    if (this.depth > 0 && result && result.status !== "completed") {
      this.answerEl.append(textBlock(`ended: ${result.status}`, result.error || "", "error-text"));
    }
  }
}

// A nested run's wrapper inside its parent's cell: what was asked, the child tree, the answer.
export function nestedBlock(event, child) {
  const head = el("summary", {}, chip("rlm_query", "kind-rlm"),
    el("span", { class: "mono small", text: `nested run ${event.run_id}` }),
    chip(`depth ${event.depth}`), el("span", { class: "preview", text: clip(event.query, 100) }));
  const stats = el("span", { class: "nested-stats" });
  head.append(stats);
  const block = el("details", { class: `call nested depth-${event.depth % 6}`, open: true,
    "data-testid": "nested-run", "data-run-id": event.run_id, "data-depth": event.depth },
  head, child.el);
  block.update = (call) => {
    stats.replaceChildren(chip(seconds(call.latency_s)));
    if (call.error) stats.append(chip(call.error, "state-error"));
  };
  return block;
}

export { textBlock, usageTokens };
