"""How one event changes its top-level run's row in ``runs``: counts, tokens, cost, status.

Called by :class:`~rlmx.trajectory.store.RunStore` inside the transaction that inserts the
event, so a run's totals always match the events stored for it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from typing import Any


def as_int(value: object) -> int:
    """``value`` if it is an int (not a bool), else 0: events from outside may lie."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def fold_event(
    db: sqlite3.Connection,
    root: str,
    event: Mapping[str, Any],
    *,
    own: bool,
    ts: float,
    host: str,
) -> None:
    """Add ``event`` to the totals of run ``root``; ``own`` if the event is of the top-level
    run itself rather than of a nested one (only those set its query, answer and status)."""
    kind = str(event.get("type", "event"))
    usage = event.get("usage") if kind in ("root_reply", "sub_call") else None
    usage = usage if isinstance(usage, dict) else {}
    cost = event.get("cost_usd")
    cost_known = not usage or isinstance(cost, int | float)
    db.execute(
        "UPDATE runs SET event_count = event_count + 1, prompt_tokens = prompt_tokens + ?,"
        " completion_tokens = completion_tokens + ?, total_tokens = total_tokens + ?,"
        " cost_usd = cost_usd + ?, cost_known = cost_known AND ?,"
        " sub_calls = sub_calls + ?, iterations = MAX(iterations, ?) WHERE id = ?",
        (
            as_int(usage.get("prompt_tokens")),
            as_int(usage.get("completion_tokens")),
            as_int(usage.get("total_tokens")),
            float(cost) if isinstance(cost, int | float) else 0.0,
            cost_known,
            1 if kind == "sub_call" else 0,
            as_int(event.get("iteration")) if own and kind == "root_reply" else 0,
            root,
        ),
    )
    if not own:
        return
    if kind == "run_started":
        _started(db, root, event, ts, host)
    elif kind == "final_answer":
        db.execute("UPDATE runs SET answer = ? WHERE id = ?", (event.get("answer"), root))
    elif kind == "run_error":
        db.execute("UPDATE runs SET error = ? WHERE id = ?", (event.get("error"), root))
    elif kind == "run_finished":
        _finished(db, root, event, ts)


def _started(
    db: sqlite3.Connection, root: str, event: Mapping[str, Any], ts: float, host: str
) -> None:
    db.execute(
        "UPDATE runs SET status = 'running', query = ?, root_model = ?, sub_model = ?,"
        " context = ?, limits = ?, started_at = ?, pid = ?, host = ? WHERE id = ?",
        (
            str(event.get("query", "")),
            event.get("root_model"),
            event.get("sub_model"),
            json.dumps(event.get("context") or {}, default=str),
            json.dumps(event.get("limits") or {}, default=str),
            ts,
            os.getpid(),
            host,
            root,
        ),
    )


def _finished(db: sqlite3.Connection, root: str, event: Mapping[str, Any], ts: float) -> None:
    result = event.get("result")
    result = result if isinstance(result, dict) else {}
    usage = result.get("usage")
    total = usage.get("total") if isinstance(usage, dict) else None
    total = total if isinstance(total, dict) else None
    cost = result.get("cost_usd")
    wall = result.get("wall_s")
    db.execute(
        "UPDATE runs SET status = ?, answer = COALESCE(?, answer), error = COALESCE(?, error),"
        " finished_at = ?, wall_s = COALESCE(?, wall_s),"
        " iterations = COALESCE(?, iterations), sub_calls = COALESCE(?, sub_calls)"
        " WHERE id = ?",
        (
            str(result.get("status", "error")),
            result.get("answer"),
            result.get("error"),
            ts,
            float(wall) if isinstance(wall, int | float) else None,
            result.get("iterations") if isinstance(result.get("iterations"), int) else None,
            result.get("sub_calls") if isinstance(result.get("sub_calls"), int) else None,
            root,
        ),
    )
    if total is not None:
        db.execute(
            "UPDATE runs SET prompt_tokens = ?, completion_tokens = ?, total_tokens = ?,"
            " cost_usd = ?, cost_known = ? WHERE id = ?",
            (
                as_int(total.get("prompt_tokens")),
                as_int(total.get("completion_tokens")),
                as_int(total.get("total_tokens")),
                float(cost) if isinstance(cost, int | float) else 0.0,
                isinstance(cost, int | float),
                root,
            ),
        )
