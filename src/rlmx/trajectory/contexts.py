"""The ``contexts`` table: what the server knows of each uploaded context (its bytes are a file
named by their sha256, kept by :class:`~rlmx.server.contexts.ContextBlobs`)."""

from __future__ import annotations

import time
from typing import Any

from rlmx.trajectory.database import Database


class ContextTable:
    """Uploaded contexts by id, in the same database as the runs."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def add(self, context_id: str, *, name: str | None, size: int, chars: int, lines: int) -> None:
        """Record an upload; a second upload of the same bytes keeps the first row."""
        with self.database.writing() as db:
            db.execute(
                "INSERT OR IGNORE INTO contexts (id, name, bytes, chars, lines, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (context_id, name, size, chars, lines, time.time()),
            )

    def get(self, context_id: str) -> dict[str, Any] | None:
        """``id``, ``name``, ``bytes``, ``chars``, ``lines`` and ``created_at`` of an upload."""
        with self.database.reading() as db:
            row = db.execute(
                "SELECT id, name, bytes, chars, lines, created_at FROM contexts WHERE id = ?",
                (context_id,),
            ).fetchone()
        return dict(row) if row is not None else None
