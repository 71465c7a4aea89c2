"""The ``sessions`` table: durable sessions by name, in the same database as the runs.

A row holds what rebuilds a session in a new process: the id of its context (which must be
opened again), its questions and answers, and the cells that built its REPL's variables with
the sub-call answers they got (:mod:`rlmx.sessions`), as JSON.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from rlmx.trajectory.database import Database


@dataclass(frozen=True, slots=True)
class StoredSession:
    name: str
    context_id: str
    state: dict[str, Any]
    bytes: int
    questions: int
    created_at: float
    used_at: float


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session as ``rlmx sessions list`` shows it (without its state)."""

    name: str
    context_id: str
    bytes: int
    questions: int
    created_at: float
    used_at: float


class SessionTable:
    """Durable sessions by name."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def save(self, name: str, context_id: str, state: dict[str, Any], *, questions: int) -> int:
        """Write a session's state (a new row, or over its old one); returns its size."""
        blob = json.dumps(state, ensure_ascii=False)
        now = time.time()
        with self.database.writing() as db:
            db.execute(
                "INSERT INTO sessions (name, context_id, state, bytes, questions, created_at,"
                " used_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                " context_id = excluded.context_id, state = excluded.state,"
                " bytes = excluded.bytes, questions = excluded.questions,"
                " used_at = excluded.used_at",
                (name, context_id, blob, len(blob), questions, now, now),
            )
        return len(blob)

    def load(self, name: str) -> StoredSession | None:
        with self.database.reading() as db:
            row = db.execute(
                "SELECT name, context_id, state, bytes, questions, created_at, used_at"
                " FROM sessions WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            return None
        data = dict(row)
        data["state"] = json.loads(data["state"])
        return StoredSession(**data)

    def rows(self) -> list[SessionRow]:
        """Every session, the most recently used first."""
        with self.database.reading() as db:
            rows = db.execute(
                "SELECT name, context_id, bytes, questions, created_at, used_at"
                " FROM sessions ORDER BY used_at DESC, name"
            ).fetchall()
        return [SessionRow(**dict(r)) for r in rows]

    def delete(self, name: str) -> bool:
        with self.database.writing() as db:
            return db.execute("DELETE FROM sessions WHERE name = ?", (name,)).rowcount > 0

    def expire(self, *, idle_s: float, max_bytes: int, keep: str | None = None) -> list[str]:
        """Delete the sessions unused for ``idle_s``, then the least recently used ones while
        all of them together hold more than ``max_bytes``; never ``keep``. Returns the names."""
        gone: list[str] = []
        with self.database.writing() as db:
            cutoff = time.time() - idle_s
            for (name,) in db.execute(
                "SELECT name FROM sessions WHERE used_at < ? AND name IS NOT ?", (cutoff, keep)
            ).fetchall():
                gone.append(str(name))
            db.execute("DELETE FROM sessions WHERE used_at < ? AND name IS NOT ?", (cutoff, keep))
            rows = db.execute("SELECT name, bytes FROM sessions ORDER BY used_at DESC").fetchall()
            total = sum(int(r["bytes"]) for r in rows)
            for row in reversed(rows):
                if total <= max_bytes:
                    break
                if row["name"] == keep:
                    continue
                db.execute("DELETE FROM sessions WHERE name = ?", (row["name"],))
                total -= int(row["bytes"])
                gone.append(str(row["name"]))
        return gone
