"""Running the MCP server: over stdio (a client starts ``rlmx mcp`` as its subprocess) or over
streamable HTTP on a socket bound first (so port 0 works and the URL is known up front).

The service's models, sessions and store are closed when the server stops: at the end of
standard input, or in the HTTP app's lifespan once uvicorn has stopped taking requests.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from anyio import to_thread
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from rlmx.mcp.server import build_server
from rlmx.mcp.service import McpService
from rlmx.mcp.sessions import SessionRegistry
from rlmx.server.handle import bind, url_of

MCP_PATH = "/mcp"


class Running:
    """The service, its sessions and the server built on them; ``aclose`` ends all three."""

    def __init__(self, service: McpService) -> None:
        self.service = service
        self.sessions = SessionRegistry(service)
        self.server = build_server(service, self.sessions)

    async def start(self) -> None:
        await to_thread.run_sync(self.service.store.reap)

    async def aclose(self) -> None:
        try:
            await self.sessions.aclose()
        finally:
            await self.service.aclose()


async def serve_stdio(service: McpService) -> None:
    """Serve on standard input and output until the client closes them."""
    running = Running(service)
    await running.start()
    try:
        await running.server.run_stdio_async()
    finally:
        await running.aclose()


class BearerGuard:
    """Every HTTP request must carry ``Authorization: Bearer TOKEN``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            scheme, _, given = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self.token.encode()
            ):
                body = json.dumps(
                    {"error": "send 'Authorization: Bearer <RLMX_API_TOKEN>' (wrong or missing)"}
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def http_app(running: Running, *, host: str, token: str | None) -> ASGIApp:
    """The streamable HTTP app at ``/mcp``; its lifespan closes ``running`` at shutdown."""
    limit = running.service.config.max_text_chars + (1 << 20)
    app: Starlette = running.server.streamable_http_app(
        streamable_http_path=MCP_PATH, host=host, max_request_body_size=limit
    )
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(starlette: Starlette) -> AsyncIterator[Any]:
        await running.start()
        async with inner(starlette) as state:
            try:
                yield state
            finally:
                await running.aclose()

    app.router.lifespan_context = lifespan
    return BearerGuard(app, token) if token else app


async def serve_http(
    service: McpService,
    *,
    host: str,
    port: int,
    token: str | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve streamable HTTP at ``http://HOST:PORT/mcp`` until SIGINT or SIGTERM."""
    sock = bind(host, port)
    try:
        app = http_app(Running(service), host=host, token=token)
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            ws="none",
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        if on_ready is not None:
            on_ready(url_of(sock) + MCP_PATH)
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        sock.close()
