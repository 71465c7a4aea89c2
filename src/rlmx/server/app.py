"""The ASGI app: the JSON API under ``/v1``, the web viewer at ``/``, the schema at
``/openapi.json``. ``create_app(ServerConfig(...))`` builds one; ``rlmx serve`` runs it."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib import resources
from typing import Any, cast

from anyio import to_thread
from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rlmx import __version__
from rlmx.sandbox.launch import Mode
from rlmx.sandbox.process import sandbox_factory
from rlmx.server.config import ServerConfig, is_loopback
from rlmx.server.contexts import ContextBlobs
from rlmx.server.errors import error_bytes, install_handlers
from rlmx.server.hub import Hub
from rlmx.server.openai import router as openai_router
from rlmx.server.routes import router as api_router
from rlmx.server.runs import RunManager, connect_executor, make_executor
from rlmx.server.services import Services
from rlmx.server.session_routes import router as session_router
from rlmx.server.sessions import SessionManager
from rlmx.trajectory.contexts import ContextTable
from rlmx.trajectory.store import RunStore

log = logging.getLogger(__name__)

STATIC = resources.files("rlmx.server") / "static"
# How often the server looks for runs whose recording process died (``rlmx run`` killed in
# another terminal), so that their status, and any stream following them, says so.
REAP_S = 2.0


class Guard:
    """Checks the bearer token on ``/v1``; without a token, takes only loopback Host headers
    (so that a web page cannot reach the service through DNS rebinding)."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_body: int) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            problem = self._problem(scope["path"], headers)
            if problem is not None:
                status, message = problem
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": error_bytes(status, message)})
                return
            if "content-length" not in headers:
                receive = self._counting(receive)
        await self.app(scope, receive, send)

    def _counting(self, receive: Receive) -> Receive:
        """A chunked body has no length to check up front: count it as it comes."""
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise StarletteHTTPException(413, self._too_large())
            return message

        return counted

    def _too_large(self) -> str:
        return (
            f"the request body is larger than this server's limit of {self.max_body:,} bytes "
            "(rlmx serve --max-upload-mb)"
        )

    def _problem(self, path: str, headers: dict[str, str]) -> tuple[int, str] | None:
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            return 413, self._too_large()
        if self.token is None:
            host = headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if host and not is_loopback(name):
                return 403, f"this server answers on loopback only (Host {host!r} refused)"
            return None
        if not path.startswith("/v1/"):
            return None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return 401, "this server needs a token: send 'Authorization: Bearer <RLMX_API_TOKEN>'"
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return 401, "wrong token in the Authorization header"
        return None


async def reap_dead_runs(store: RunStore, *, every_s: float = REAP_S) -> None:
    """Every ``every_s`` seconds until cancelled, mark the runs whose recording process died as
    ``interrupted`` (the store's reads never do it themselves)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await to_thread.run_sync(store.reap)
        except sqlite3.Error as exc:  # a busy or locked file: try again next time
            log.warning("could not look for dead runs: %s", exc)


def _lifespan(svc: Services) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc.hub.bind(asyncio.get_running_loop())
        connect_executor(svc.runs.executor)  # from this thread: Ray sets its signal handlers
        await to_thread.run_sync(svc.store.reap)  # before the first request is answered
        await svc.sessions.start()
        reaper = asyncio.create_task(reap_dead_runs(svc.store), name="rlmx-reaper")
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            await svc.runs.shutdown()
            await svc.sessions.shutdown()
            await svc.runs.executor.aclose()

    return lifespan


def _add_service_routes(app: FastAPI, svc: Services) -> None:
    config = svc.config

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    @app.get("/healthz", tags=["service"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "live_runs": svc.runs.active}

    @app.get("/v1/info", tags=["service"])
    async def info() -> JSONResponse:
        return JSONResponse(
            {
                "version": __version__,
                "model": config.model,
                "sub_model": config.sub_model,
                "server_paths": bool(config.allowed_roots),
                "max_upload_bytes": config.max_upload_bytes,
                "sandbox": config.sandbox,
                "executor": config.executor,
            }
        )


def create_app(config: ServerConfig | None = None, *, store: RunStore | None = None) -> FastAPI:
    """The service. ``store`` overrides ``config.db_path`` (``rlmx view`` hands a scratch one)."""
    config = config or ServerConfig()
    store = store or RunStore(config.database)
    hub = Hub()
    manager = RunManager(
        store=store,
        hub=hub,
        config=config,
        sandbox=sandbox_factory(cast(Mode, config.sandbox)),
        executor=make_executor(config.executor),
    )
    blobs = ContextBlobs(
        config.contexts_dir, ContextTable(store.database), max_bytes=config.max_upload_bytes
    )
    sessions = SessionManager(store=store, runs=manager, blobs=blobs, config=config)
    svc = Services(
        config=config, store=store, hub=hub, runs=manager, blobs=blobs, sessions=sessions
    )
    app = FastAPI(
        title="rlmx",
        version=__version__,
        summary="Recursive Language Models over HTTP: runs, their live events, sessions of "
        "questions over one context, and an OpenAI-compatible endpoint.",
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan(svc),
    )
    app.state.services = svc
    install_handlers(app)
    app.include_router(api_router)
    app.include_router(session_router)
    app.include_router(openai_router)
    _add_service_routes(app, svc)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    # Uploads may be as large as the limit; JSON bodies get a little more room.
    app.add_middleware(Guard, token=config.token, max_body=config.max_upload_bytes + 1024 * 1024)
    return app
