"""The actions of a command over the run store (``rlmx runs|sessions|cache ACTION``), each
with the same ``--db`` option."""

from __future__ import annotations

import argparse
from collections.abc import Callable

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
