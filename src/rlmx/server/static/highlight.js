// A small Python highlighter: text nodes inside spans, never HTML built from strings.

const KEYWORDS = new Set(("False None True and as assert async await break class continue def del " +
  "elif else except finally for from global if import in is lambda nonlocal not or pass raise " +
  "return try while with yield match case").split(" "));
const BUILTINS = new Set(("print len range enumerate zip sorted reversed sum min max map filter " +
  "list dict set tuple str int float bool any all isinstance type open repr abs round").split(" "));
const REPL = new Set(["context", "llm_query", "llm_query_batched", "llm_map", "rlm_query", "FINAL",
  "FINAL_VAR", "SHOW_VARS"]);

const TOKEN = new RegExp([
  String.raw`(#[^\n]*)`,                                                            // 1 comment
  String.raw`([rRbBuUfF]{0,2}(?:"""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?))`, // 2 string
  String.raw`(\b(?:0[xob][\da-fA-F_]+|\d[\d_]*\.?\d*(?:[eE][+-]?\d+)?j?)\b)`,        // 3 number
  String.raw`([A-Za-z_][A-Za-z0-9_]*)`,                                               // 4 name
  String.raw`(@[A-Za-z_][\w.]*)`,                                                     // 5 decorator
].join("|"), "g");

function span(cls, text) {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
}

export function highlightPython(code) {
  const fragment = document.createDocumentFragment();
  let at = 0;
  TOKEN.lastIndex = 0;
  let match;
  while ((match = TOKEN.exec(code)) !== null) {
    if (match[0] === "") { TOKEN.lastIndex++; continue; }
    if (match.index > at) fragment.append(code.slice(at, match.index));
    const [text, comment, string, number, name, decorator] = match;
    if (comment) fragment.append(span("tok-comment", text));
    else if (string) fragment.append(span("tok-string", text));
    else if (number) fragment.append(span("tok-number", text));
    else if (decorator) fragment.append(span("tok-builtin", text));
    else if (name && KEYWORDS.has(name)) fragment.append(span("tok-keyword", text));
    else if (name && REPL.has(name)) fragment.append(span("tok-repl", text));
    else if (name && BUILTINS.has(name)) fragment.append(span("tok-builtin", text));
    else fragment.append(text);
    at = match.index + text.length;
  }
  if (at < code.length) fragment.append(code.slice(at));
  return fragment;
}
