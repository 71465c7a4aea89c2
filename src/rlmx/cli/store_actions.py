"""The actions of a command over the run store (``rlmx runs|sessions|cache ACTION``), each
with the same ``--db`` option."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from rlmx.config import Settings
from rlmx.errors import UsageError
from rlmx.trajectory.store import default_db_path

DB_HELP = "run store (default $RLMX_DB, else $RLMX_HOME/rlmx.db)"

Action = Callable[[str, str], argparse.ArgumentParser]


def store_actions(parser: argparse.ArgumentParser, dest: str) -> Action:
    """A maker of ``parser``'s actions: ``action(name, help)`` adds one, with ``--db``."""
    actions = parser.add_subparsers(dest=dest, metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text
        )
        sub.add_argument("--db", metavar="PATH", help=DB_HELP)
        return sub

    return action


def store_path(args: argparse.Namespace) -> Path:
    """The store ``--db`` names, else the default one."""
    return Path(args.db).expanduser() if args.db else default_db_path(Settings())


def existing_store_path(args: argparse.Namespace) -> Path:
    """:func:`store_path`, which must exist: reading commands never create a store."""
    path = store_path(args)
    if not path.exists():
        raise UsageError(f"no run store at {path}: run something first, or pass --db PATH")
    return path
