"""Running the app with uvicorn: in the foreground (``rlmx serve``) or in a background thread
(``rlmx view``, tests, benchmarks). The socket is bound first, so port 0 works and the real
address is known before the first request."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

from rlmx.errors import ConfigError


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _config(app: FastAPI, log_config: dict[str, Any] | None, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_config=log_config,
        log_level=log_level,
        access_log=False,
        ws="none",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )


def serve(
    app: FastAPI,
    *,
    host: str,
    port: int,
    on_ready: Callable[[str], None] | None = None,
    log_config: dict[str, Any] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM). ``on_ready`` gets the URL once listening:
    connections made from then on wait in the socket's backlog until uvicorn takes them."""
    sock = bind(host, port)
    try:
        if on_ready is not None:
            on_ready(url_of(sock))
        uvicorn.Server(_config(app, log_config, log_level)).run(sockets=[sock])
    finally:
        sock.close()


class ServerHandle:
    """The app served from a background thread: ``with ServerHandle(app) as url: ...``."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._sock = bind(host, port)
        self.url = url_of(self._sock)
        self._server = uvicorn.Server(_config(app, None, "warning"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self, timeout: float = 10.0) -> str:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start within {timeout:g} s")
            time.sleep(0.01)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
