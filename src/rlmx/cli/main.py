"""``rlmx`` entry point: ``main(argv) -> int`` so the CLI is tested in-process.

Exit codes: 0 success, 1 a run that failed or did not complete, 2 a usage error, 128 + the
signal's number for a command stopped by SIGINT or SIGTERM (see :mod:`rlmx.cli.interrupt`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console

from rlmx import __version__
from rlmx.cli import bench as bench_cmd
from rlmx.cli import cache as cache_cmd
from rlmx.cli import demo as demo_cmd
from rlmx.cli import mcp as mcp_cmd
from rlmx.cli import models as models_cmd
from rlmx.cli import run as run_cmd
from rlmx.cli import runs as runs_cmd
from rlmx.cli import serve as serve_cmd
from rlmx.cli import sessions as sessions_cmd
from rlmx.cli import view as view_cmd
from rlmx.cli.terminal import markup
from rlmx.errors import RlmxError, UsageError

EXIT_FAILED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rlmx",
        description="Answer questions over data far larger than any context window "
        "with Recursive Language Models.",
    )
    parser.add_argument("--version", action="version", version=f"rlmx {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run_cmd.register(commands)
    models_cmd.register(commands)
    runs_cmd.register(commands)
    sessions_cmd.register(commands)
    cache_cmd.register(commands)
    serve_cmd.register(commands)
    mcp_cmd.register(commands)
    view_cmd.register(commands)
    bench_cmd.register(commands)
    demo_cmd.register(commands)
    return parser


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    """Run the CLI; ``console`` (stderr) is injectable for tests."""
    err = console or Console(stderr=True, soft_wrap=True)
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        code: int = args.handler(args, err)
        return code
    except UsageError as exc:
        if debug:
            raise
        err.print(f"[bold red]error:[/] {markup(exc)}", highlight=False)
        return EXIT_USAGE
    except RlmxError as exc:
        if debug:
            raise
        err.print(f"[bold red]error:[/] {markup(exc)}", highlight=False)
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.print("[bold red]interrupted[/]")
        return 130


def entry() -> None:
    sys.exit(main())
