// Talking to the rlmx service: JSON requests with the bearer token, and a Server-Sent Events
// reader built on fetch (EventSource cannot send an Authorization header).

const TOKEN_KEY = "rlmx.token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function getToken() {
  try { return localStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token); else localStorage.removeItem(TOKEN_KEY);
  } catch { /* private mode: the token lasts until the page closes */ }
}

let onAuthNeeded = () => {};
export function whenAuthNeeded(callback) { onAuthNeeded = callback; }

function headers(extra = {}) {
  const out = { ...extra };
  const token = getToken();
  if (token) out.Authorization = `Bearer ${token}`;
  return out;
}

async function check(response) {
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch { /* not JSON */ }
  if (response.status === 401) onAuthNeeded(message);
  throw new ApiError(response.status, message);
}

export async function getJSON(path) {
  const response = await fetch(path, { headers: headers(), cache: "no-store" });
  return (await check(response)).json();
}

export async function sendJSON(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await check(response)).json();
}

export async function uploadContext(file) {
  const name = encodeURIComponent(file.name || "upload");
  const response = await fetch(`/v1/contexts?name=${name}`, {
    method: "POST",
    headers: headers({ "Content-Type": "application/octet-stream" }),
    body: file,
  });
  return (await check(response)).json();
}

export async function download(path, filename) {
  const response = await check(await fetch(path, { headers: headers() }));
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

// Follows /v1/runs/{id}/events: calls onEvents(list of [idx, event]) for each chunk and
// onEnd(status) at the end; reconnects with Last-Event-ID after a dropped connection.
export function followEvents(runId, { onEvents, onEnd, onState }) {
  const controller = new AbortController();
  let last = -1;
  let stopped = false;

  async function once() {
    const extra = last >= 0 ? { "Last-Event-ID": String(last) } : {};
    const response = await check(await fetch(`/v1/runs/${encodeURIComponent(runId)}/events`, {
      headers: headers(extra), signal: controller.signal, cache: "no-store",
    }));
    onState("live");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      const batch = [];
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let id = null, kind = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "id") id = Number(text);
          else if (field === "event") kind = text;
          else if (field === "data") data += data ? "\n" + text : text;
        }
        if (!data) continue;
        if (kind === "end") {
          if (batch.length) onEvents(batch.splice(0));
          onEnd(JSON.parse(data).status);
          return true;
        }
        try {
          batch.push([id, JSON.parse(data)]);
          if (id !== null) last = id;
        } catch { /* a torn line: skip it */ }
      }
      if (batch.length) onEvents(batch);
    }
  }

  (async () => {
    let delay = 500;
    while (!stopped) {
      try {
        if (await once()) return;
        delay = 500;
      } catch (error) {
        if (stopped || error.name === "AbortError") return;
        if (error instanceof ApiError && error.status < 500) { onState("error", error.message); return; }
      }
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 8000);
    }
  })();

  return () => { stopped = true; controller.abort(); };
}
