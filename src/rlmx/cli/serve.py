"""``rlmx serve``: the HTTP API, the OpenAI-compatible endpoint and the web viewer."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import webbrowser
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from rlmx.config import Limits, Settings
from rlmx.errors import ConfigError, SandboxError
from rlmx.executors.ray import require_ray
from rlmx.providers.pool_spec import POOL_PREFIX, parse_pool
from rlmx.rlm import EXECUTORS
from rlmx.sandbox.process import MODE_HELP
from rlmx.sandbox.spawn import preflight
from rlmx.server.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    MAX_LIVE_SESSIONS,
    SESSION_DEFAULTS,
    TOKEN_ENV,
    ServerConfig,
    check_bind,
)

SERVER_HINT = "the server needs its extra: pip install 'rlmx[server]'"


DAY_S = 24 * 3600


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve the HTTP API and the web viewer",
        description="Serve the rlmx HTTP API (/v1/runs, /v1/contexts, live events over SSE, an "
        "OpenAI-compatible /v1/chat/completions) and the web viewer at /. Binds loopback; "
        "binding another address needs RLMX_API_TOKEN, which clients send as a bearer token.",
    )
    add_server_options(parser)
    parser.add_argument("--open", action="store_true", help="open the viewer in a browser")
    parser.set_defaults(handler=handle)


def add_server_options(parser: argparse.ArgumentParser, *, port: int = DEFAULT_PORT) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=port, help=f"port (default {port}; 0: any)")
    parser.add_argument(
        "--db", metavar="PATH", help="run store (default $RLMX_DB, else $RLMX_HOME/rlmx.db)"
    )
    parser.add_argument(
        "--allow-path",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder whose files clients may name as context (repeatable)",
    )
    parser.add_argument(
        "--max-upload-mb", type=float, default=256, help="largest context upload (default 256)"
    )
    parser.add_argument("--model", "-m", help="root model for requests that name none")
    parser.add_argument("--sub-model", help="sub-call model for requests that name none")
    parser.add_argument("--max-runs", type=int, default=4, help="runs going at once (default 4)")
    parser.add_argument(
        "--sandbox", choices=("default", "strict", "none"), default="default", help=MODE_HELP
    )
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="where the runs' sub-model calls and corpus scans go: this process (default), or "
        "Ray: the cluster at $RAY_ADDRESS, else a local one started with the server (needs "
        "rlmx[ray]; docs/scale.md)",
    )
    sessions = parser.add_argument_group("sessions (/v1/sessions, and chat conversations)")
    idle, days = SESSION_DEFAULTS.worker_idle_s, SESSION_DEFAULTS.expire_idle_s / DAY_S
    sessions.add_argument(
        "--session-idle",
        type=float,
        default=idle,
        metavar="S",
        help=f"stop a session's REPL worker after S seconds without a question (default {idle:g})",
    )
    sessions.add_argument(
        "--session-expire-days",
        type=float,
        default=days,
        metavar="D",
        help=f"delete a session unused for D days (default {days:g})",
    )
    sessions.add_argument(
        "--max-live-sessions",
        type=int,
        default=MAX_LIVE_SESSIONS,
        metavar="N",
        help=f"sessions held in memory at once (default {MAX_LIVE_SESSIONS})",
    )
    sessions.add_argument(
        "--no-chat-sessions",
        action="store_true",
        help="every chat completion a run of its own (no session per conversation)",
    )


def _require_extra() -> None:
    """The web framework and server, which ``rlmx.server.config`` does not need but the app does."""
    for module in ("fastapi", "uvicorn"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"{SERVER_HINT} ({exc})") from None


def build_config(args: argparse.Namespace, settings: Settings) -> ServerConfig:
    """The ServerConfig of the options; raises ConfigError for a bad combination."""
    _require_extra()
    token = settings.get(TOKEN_ENV)
    check_bind(args.host, token)
    try:
        preflight(args.sandbox)
    except SandboxError as exc:
        raise ConfigError(str(exc)) from None
    executor = getattr(args, "executor", "local")  # other commands reuse these options
    if executor == "ray":
        require_ray()  # one line saying how to install it, before anything starts
    if args.max_upload_mb <= 0 or args.max_runs <= 0:
        raise ConfigError("--max-upload-mb and --max-runs must be positive")
    for spec in (args.model, args.sub_model):  # a bad pool is refused at start, not per run
        if spec and spec.lower().startswith(POOL_PREFIX):
            parse_pool(spec, settings=settings)
    return ServerConfig(
        db_path=Path(args.db).expanduser() if args.db else None,
        allowed_roots=tuple(Path(p).expanduser().resolve() for p in args.allow_path),
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        token=token,
        model=args.model,
        sub_model=args.sub_model,
        limits=Limits(),
        sandbox=args.sandbox,
        max_active_runs=args.max_runs,
        settings=settings,
        session_idle_s=args.session_idle,
        session_expire_s=args.session_expire_days * DAY_S,
        max_live_sessions=args.max_live_sessions,
        chat_sessions=not args.no_chat_sessions,
        executor=executor,
    )


def run_server(
    app: Any, args: argparse.Namespace, console: Console, *, path: str = "/", browse: bool
) -> int:
    from rlmx.server.handle import serve

    def ready(url: str) -> None:
        console.print(
            f"[green]rlmx serving[/] {escape(url + path)}  (Ctrl-C to stop)", highlight=False
        )
        if browse:
            webbrowser.open(url + path)

    # uvicorn re-raises Ctrl-C once it has shut down cleanly.
    with contextlib.suppress(KeyboardInterrupt):
        serve(app, host=args.host, port=args.port, on_ready=ready, log_level="warning")
    console.print("[dim]stopped[/]", highlight=False)
    return 0


def handle(args: argparse.Namespace, console: Console) -> int:
    config = build_config(args, Settings())
    from rlmx.server.app import create_app

    app = create_app(config)
    console.print(f"[dim]store: {escape(str(config.database))}[/]", highlight=False)
    if config.executor != "local":
        console.print(f"[dim]executor: {config.executor}[/]", highlight=False)
    if config.allowed_roots:
        roots = ", ".join(str(r) for r in config.allowed_roots)
        console.print(f"[dim]server-side paths under: {escape(roots)}[/]", highlight=False)
    return run_server(app, args, console, browse=args.open)
