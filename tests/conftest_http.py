"""A real HTTP server on 127.0.0.1 for provider tests: it replays scripted replies and
records every request, so tests exercise the SDKs' own HTTP, retry and error paths.

Not a conftest plugin (tests/conftest.py belongs to the whole suite): test modules import
:class:`FakeServer` and wrap it in their own fixture.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops SYNs under a burst of concurrent connects, and the
    # kernel's 1 s SYN retransmit then makes concurrency tests slow.
    request_queue_size = 64
    # Non-daemon handler threads are joined by server_close(), so no request outlives
    # its test (each connection closes after one reply: the handler speaks HTTP/1.0).
    daemon_threads = False


class FakeServer:
    """Serves queued replies in order, then ``default`` (or ``responder``) for the rest."""

    def __init__(self) -> None:
        self.queue: deque[Reply] = deque()
        self.default = Reply(404, {"error": {"message": "no reply scripted"}})
        self.responder: Callable[[Seen], Reply] | None = None
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def push(self, *replies: Reply) -> None:
        self.queue.extend(replies)

    def _next_reply(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            if self.queue:
                return self.queue.popleft()
        return self.responder(seen) if self.responder else self.default

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = server._next_reply(Seen("POST", self.path, headers, body))
                is_text = isinstance(reply.body, str)
                data = (reply.body if is_text else json.dumps(reply.body)).encode()
                self.send_response(reply.status)
                content_type = "text/plain" if is_text else "application/json"
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output clean

        return Handler

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@contextmanager
def running_server() -> Iterator[FakeServer]:
    server = FakeServer().start()
    try:
        yield server
    finally:
        server.stop()


def closed_port_url() -> str:
    """A loopback URL on which nothing listens, so connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def chat_reply(
    text: str | None = "hello",
    *,
    prompt_tokens: int = 100,
    completion_tokens: int = 20,
    cached_tokens: int | None = 40,
    model: str = "gpt-5-mini",
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """A Chat Completions response body."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage,
    }


def messages_reply(
    text: str = "hi from claude",
    *,
    input_tokens: int = 50,
    output_tokens: int = 12,
    cache_read: int = 30,
    cache_write: int = 20,
    model: str = "claude-sonnet-4-5",
) -> dict[str, Any]:
    """An Anthropic Messages API response body."""
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": cache_read,
            "cache_creation_input_tokens": cache_write,
        },
    }
