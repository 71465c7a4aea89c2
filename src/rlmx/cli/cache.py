"""``rlmx cache stats|clear``: the sub-call cache kept in the run store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from rlmx.trajectory.cache import SqliteCache
from rlmx.trajectory.store import open_store

from .store_actions import store_actions, store_path
from .terminal import json_line, markup


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "cache",
        help="show or clear the sub-call cache",
        description="The cache of greedy model answers (sub-calls and root turns) that rlmx "
        "run keeps in the run store (--db, else $RLMX_DB, else $RLMX_HOME/rlmx.db): a "
        "repeated call is answered from it without calling the model. On by default for "
        "the embedded local: models; rlmx run --cache keeps every model's answers, "
        "--no-cache none.",
    )
    parser.set_defaults(handler=_stats, json=False, db=None)
    action = store_actions(parser, "cache_command")

    stats = action("stats", "entries, size and hits of the cache, per model")
    stats.add_argument("--json", action="store_true", help="one JSON object")
    stats.set_defaults(handler=_stats)
    clear = action("clear", "forget the cached answers")
    clear.add_argument(
        "--model", metavar="SPEC", help="only this model's, e.g. local:qwen2.5-coder-1.5b"
    )
    clear.set_defaults(handler=_clear)


def _stats(args: argparse.Namespace, console: Console) -> int:
    path = store_path(args)
    if not path.exists():
        if args.json:
            sys.stdout.write(json_line({"path": str(path), "entries": 0, "models": []}) + "\n")
        else:
            console.print(f"the cache is empty (no store at {markup(path)})", highlight=False)
        return 0
    with open_store(path) as store:
        stats = SqliteCache(store.database).stats()
    if args.json:
        sys.stdout.write(json_line(stats.to_dict()) + "\n")
        return 0
    out = Console(soft_wrap=True)
    totals = stats.to_dict()
    out.print(
        f"{stats.entries:,} answers, {_size(stats.bytes)}, {stats.hits:,} hits "
        f"(saved {totals['saved_prompt_tokens']:,} prompt tokens, "
        f"{totals['saved_completion_tokens']:,} completion tokens, "
        f"{totals['saved_s']:.1f} s of model time) in {markup(path)}",
        highlight=False,
    )
    if stats.models:
        table = Table(box=box.SIMPLE_HEAD)
        for name in ("model", "answers", "size", "hits", "saved prompt tok", "saved s"):
            table.add_column(name, justify="left" if name == "model" else "right")
        for m in stats.models:
            table.add_row(
                markup(m.model),
                f"{m.entries:,}",
                _size(m.bytes),
                f"{m.hits:,}",
                f"{m.saved_prompt_tokens:,}",
                f"{m.saved_s:.1f}",
            )
        out.print(table)
    return 0


def _clear(args: argparse.Namespace, console: Console) -> int:
    path = store_path(args)
    if not path.exists():
        console.print(f"nothing to clear (no store at {markup(path)})", highlight=False)
        return 0
    with open_store(path) as store:
        forgotten = SqliteCache(store.database).clear(args.model)
    which = f" of {markup(args.model)}" if args.model else ""
    console.print(f"forgot {forgotten:,} cached answers{which}", highlight=False)
    return 0


def _size(n: int) -> str:
    if n < 1024:
        return f"{n:,} B"
    size = n / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GB"
