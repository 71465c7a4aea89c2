"""``rlmx view [TRACE.jsonl ...]``: open traces, or the run store, in the web viewer."""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from rlmx.cli.serve import add_server_options, build_config, run_server
from rlmx.cli.terminal import markup
from rlmx.config import Settings
from rlmx.errors import UsageError
from rlmx.trajectory.jsonl import import_trace
from rlmx.trajectory.store import RunStore


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "view",
        help="open traces or the run store in the web viewer",
        description="Open JSONL traces (from rlmx run --trace or rlmx runs export) in the web "
        "viewer, or with no trace the runs in the store. Serves on a free loopback port until "
        "Ctrl-C.",
    )
    parser.add_argument("traces", nargs="*", metavar="TRACE.jsonl", help="trace files to show")
    add_server_options(parser, port=0)
    parser.add_argument("--no-open", action="store_true", help="print the URL, open no browser")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    config = build_config(args, Settings())
    from rlmx.server.app import create_app

    if not args.traces:
        app = create_app(config)
        return run_server(app, args, console, browse=not args.no_open)
    with tempfile.TemporaryDirectory(prefix="rlmx-view-") as scratch:
        config = replace(config, db_path=Path(scratch) / "view.db")
        store = RunStore(config.database)
        try:
            ids: list[str] = []
            for trace in args.traces:
                found, skipped = import_trace(store, trace)
                if skipped:
                    console.print(
                        f"[yellow]note:[/] {markup(trace)}: skipped {skipped} line(s)",
                        highlight=False,
                    )
                ids.extend(found)
            if not ids:
                raise UsageError(f"no runs in {', '.join(args.traces)}")
        except ValueError as exc:
            store.close()
            raise UsageError(str(exc)) from None
        app = create_app(config, store=store)
        path = f"/#/runs/{ids[0]}" if len(ids) == 1 else "/"
        console.print(f"[dim]{len(ids)} run(s): {markup(', '.join(ids))}[/]", highlight=False)
        try:
            return run_server(app, args, console, path=path, browse=not args.no_open)
        finally:
            store.close()
