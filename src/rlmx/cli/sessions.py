"""``rlmx sessions list|show|delete``: the named sessions kept in the run store."""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from rlmx.errors import UsageError
from rlmx.trajectory.sessions import SessionTable
from rlmx.trajectory.store import RunStore

from .store_actions import existing_store_path, store_actions
from .terminal import json_line, markup, shown


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "sessions",
        help="list, show or delete the named sessions (rlmx run --session NAME)",
        description="Named sessions kept in the run store: --db, else $RLMX_DB, else "
        "$RLMX_HOME/rlmx.db.",
    )
    parser.set_defaults(handler=_list, json=False, db=None)
    action = store_actions(parser, "sessions_command")

    listing = action("list", "list the sessions, the most recently used first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=_list)
    show = action("show", "a session's questions and answers")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="the session as JSON")
    show.set_defaults(handler=_show)
    delete = action("delete", "forget a session (its runs stay in the store)")
    delete.add_argument("name")
    delete.set_defaults(handler=_delete)


def _table(args: argparse.Namespace) -> SessionTable:
    return SessionTable(RunStore(existing_store_path(args)).database)


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%m-%d %H:%M")


def _list(args: argparse.Namespace, console: Console) -> int:
    rows = _table(args).rows()
    if args.json:
        for row in rows:
            sys.stdout.write(
                json_line(
                    {
                        "name": row.name,
                        "context_id": row.context_id,
                        "questions": row.questions,
                        "bytes": row.bytes,
                        "created_at": row.created_at,
                        "used_at": row.used_at,
                    }
                )
                + "\n"
            )
        return 0
    if not rows:
        console.print("no sessions yet: rlmx run --session NAME ...")
        return 0
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("name", "questions", "context", "size", "created", "used"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            markup(row.name),
            str(row.questions),
            row.context_id[:12],
            f"{row.bytes:,} B",
            _when(row.created_at),
            _when(row.used_at),
        )
    Console().print(table)
    return 0


def _show(args: argparse.Namespace, console: Console) -> int:
    stored = _table(args).load(args.name)
    if stored is None:
        raise UsageError(f"no session {args.name!r} (see rlmx sessions list)")
    history = stored.state.get("history", [])
    if args.json:
        sys.stdout.write(
            json_line(
                {
                    "name": stored.name,
                    "context_id": stored.context_id,
                    "history": history,
                    "cells": len(stored.state.get("records", [])),
                }
            )
            + "\n"
        )
        return 0
    out = Console()
    out.print(
        f"session {markup(stored.name)} · context {stored.context_id[:12]} · "
        f"{len(history)} questions · {len(stored.state.get('records', []))} cells kept",
        highlight=False,
    )
    for index, exchange in enumerate(history, 1):
        answer = exchange.get("answer")
        out.print(f"{index}. Q: {markup(shown(str(exchange.get('question'))))}", highlight=False)
        out.print(
            f"   A: {markup(shown(str(answer)))}"
            if answer is not None
            else f"   ({markup(str(exchange.get('status')))})",
            highlight=False,
        )
    return 0


def _delete(args: argparse.Namespace, console: Console) -> int:
    if not _table(args).delete(args.name):
        raise UsageError(f"no session {args.name!r} (see rlmx sessions list)")
    console.print(f"deleted session {markup(args.name)}", highlight=False)
    return 0
