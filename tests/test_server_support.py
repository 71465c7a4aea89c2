"""Helpers for the server and viewer tests (no tests here): a served app on loopback with a
scratch store, scripted models under its allowed root, and a reader of Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from rlmx.config import Settings
from rlmx.server import ServerConfig, ServerHandle, create_app

from .conftest import repl


@dataclass
class Served:
    url: str
    root: Path
    config: ServerConfig
    handle: ServerHandle

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def script(
        self,
        name: str,
        *responses: str,
        rules: dict[str, str] | None = None,
        latency_s: float = 0.0,
    ) -> str:
        """A ``scripted:`` spec for a file under the server's allowed root."""
        data = {
            "responses": list(responses),
            "rules": [{"contains": k, "reply": v} for k, v in (rules or {}).items()],
            "latency_s": latency_s,
        }
        (self.root / name).write_text(json.dumps(data), encoding="utf-8")
        return f"scripted:{name}"


def make_config(tmp_path: Path, **overrides: Any) -> ServerConfig:
    root = tmp_path / "allowed"
    root.mkdir(exist_ok=True)
    config = ServerConfig(
        db_path=tmp_path / "home" / "rlmx.db",
        allowed_roots=(root,),
        max_upload_bytes=64 * 1024,
        heartbeat_s=0.5,
        settings=Settings(env={}),
    )
    return replace(config, **overrides)


def serve(config: ServerConfig) -> Iterator[Served]:
    handle = ServerHandle(create_app(config))
    url = handle.start()
    try:
        root = config.allowed_roots[0] if config.allowed_roots else config.database.parent
        yield Served(url, root, config, handle)
    finally:
        handle.stop()


def simple_run(served: Served, *, latency_s: float = 0.0, name: str = "simple.json") -> str:
    """A spec that finds the code in two iterations with one sub-call."""
    return served.script(
        name,
        repl("hit = context.index('code')\nprint(llm_query('SUB ' + context[hit:hit + 20]))"),
        repl("FINAL('ZETA-42')"),
        rules={"SUB": "ZETA-42"},
        latency_s=latency_s,
    )


@dataclass(frozen=True)
class Sse:
    id: int | None
    event: str
    data: Any


def parse_sse(lines: Iterable[str]) -> Iterator[Sse]:
    event, ident, data = "message", None, ""
    for line in lines:
        if line == "":
            if data:
                yield Sse(ident, event, json.loads(data))
            event, ident, data = "message", None, ""
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "id":
                ident = int(value)
            elif field == "event":
                event = value
            elif field == "data":
                data = f"{data}\n{value}" if data else value


def follow(client: httpx.Client, run_id: str, **params: Any) -> list[Sse]:
    """Every SSE message of a run's stream, to its end."""
    headers = params.pop("headers", {})
    with client.stream(
        "GET", f"/v1/runs/{run_id}/events", params=params, headers=headers
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(parse_sse(response.iter_lines()))


def wait_for_event(client: httpx.Client, run_id: str, kind: str = "run_started") -> None:
    """Block until the run's event stream carries an event of type ``kind``."""
    with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
        assert response.status_code == 200, response.read()
        for message in parse_sse(response.iter_lines()):
            if message.event == "message" and message.data["type"] == kind:
                return
    raise AssertionError(f"run {run_id} ended without a {kind} event")
