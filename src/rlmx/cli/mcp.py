"""``rlmx mcp``: rlmx's tools for coding agents over the Model Context Protocol (stdio, or
streamable HTTP with ``--http``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from rlmx.config import Settings
from rlmx.errors import ConfigError, SandboxError
from rlmx.mcp.config import (
    DEFAULT_MAX_ITERATIONS,
    DEFAULT_MCP_PORT,
    DEFAULT_RESULT_CHARS,
    DEFAULT_TIMEOUT_S,
    McpConfig,
)
from rlmx.sandbox.process import MODE_HELP
from rlmx.sandbox.spawn import preflight
from rlmx.server.config import DEFAULT_HOST, TOKEN_ENV, check_bind

MCP_HINT = "rlmx mcp needs its extra: pip install 'rlmx[mcp]'"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "mcp",
        help="serve rlmx's tools to coding agents over MCP",
        description="Serve rlmx over the Model Context Protocol: ask (one question over a file, "
        "a folder or a text), session_open/ask/execute/close (follow-up questions in one REPL), "
        "list_runs, get_run and run_events (the run store). Speaks stdio unless --http; every "
        "run is recorded in the store.",
    )
    parser.add_argument(
        "--http", action="store_true", help="serve streamable HTTP at http://HOST:PORT/mcp"
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="with --http: address (loopback)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_MCP_PORT, help=f"with --http: port ({DEFAULT_MCP_PORT})"
    )
    parser.add_argument(
        "--allow-path",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder whose files and subfolders tools may read as context (repeatable); "
        "without one, contexts come only as text",
    )
    parser.add_argument(
        "--db", metavar="PATH", help="run store (default $RLMX_DB, else $RLMX_HOME/rlmx.db)"
    )
    parser.add_argument("--model", "-m", help="root model spec, e.g. openai:gpt-5-mini")
    parser.add_argument("--sub-model", help="model for llm_query sub-calls (default: the root)")
    parser.add_argument("--base-url", help="base URL for OpenAI-compatible providers")
    parser.add_argument(
        "--sandbox", choices=("default", "strict", "none"), default="default", help=MODE_HELP
    )
    parser.add_argument(
        "--max-iterations",
        type=int,
        default=DEFAULT_MAX_ITERATIONS,
        help="root turns per run: the default and the most a call may ask "
        f"({DEFAULT_MAX_ITERATIONS})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds per run: the default and the most a call may ask ({DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument("--max-runs", type=int, default=4, help="runs going at once (4)")
    parser.add_argument("--max-sessions", type=int, default=8, help="sessions open at once (8)")
    parser.add_argument(
        "--max-result-chars",
        type=int,
        default=DEFAULT_RESULT_CHARS,
        help=f"longest text in a tool result before it is cut ({DEFAULT_RESULT_CHARS})",
    )
    parser.set_defaults(handler=handle)


def build_config(args: argparse.Namespace, settings: Settings) -> McpConfig:
    """The McpConfig of the options; raises ConfigError for a bad combination."""
    for module in ("mcp", "fastapi"):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(MCP_HINT)
    try:
        preflight(args.sandbox)
    except SandboxError as exc:
        raise ConfigError(str(exc)) from None
    return McpConfig(
        allowed_roots=tuple(Path(p).expanduser().resolve() for p in args.allow_path),
        db_path=Path(args.db).expanduser() if args.db else None,
        model=args.model,
        sub_model=args.sub_model,
        base_url=args.base_url,
        sandbox=args.sandbox,
        max_iterations=args.max_iterations,
        timeout_s=args.timeout,
        max_runs=args.max_runs,
        max_sessions=args.max_sessions,
        result_chars=args.max_result_chars,
        settings=settings,
    )


def handle(args: argparse.Namespace, console: Console) -> int:
    settings = Settings()
    token = settings.get(TOKEN_ENV)
    if args.http:
        check_bind(args.host, token)
    config = build_config(args, settings)
    from rlmx.mcp.service import McpService
    from rlmx.mcp.serving import serve_http, serve_stdio

    service = McpService.open(config)
    if service.note:
        console.print(f"[yellow]note:[/] {escape(service.note)}", highlight=False)
    console.print(f"[dim]store: {escape(str(config.database))}[/]", highlight=False)
    if config.allowed_roots:
        roots = ", ".join(str(r) for r in config.allowed_roots)
        console.print(f"[dim]files readable under: {escape(roots)}[/]", highlight=False)

    def ready(url: str) -> None:
        console.print(f"[green]rlmx mcp serving[/] {escape(url)}  (Ctrl-C to stop)")

    with contextlib.suppress(KeyboardInterrupt):
        if args.http:
            asyncio.run(
                serve_http(service, host=args.host, port=args.port, token=token, on_ready=ready)
            )
        else:
            asyncio.run(serve_stdio(service))
    return 0
