"""The SQLite store of runs and their events: ``$RLMX_HOME/rlmx.db`` unless told otherwise.

One row per top-level run in ``runs``, its totals kept current as events arrive (see
:mod:`rlmx.trajectory.totals`), and every event of the run's tree (nested runs included) in
``events``, numbered from 0 within the tree. Each event is committed on its own (WAL,
``synchronous=NORMAL``), so a run that crashes or is killed keeps every event written so far.

Reading never writes. A run whose recording process died stays ``running`` in the file until
someone calls :meth:`RunStore.reap`, which marks it ``interrupted``: ``rlmx runs`` does before it
reads, and the server at start-up and then every few seconds.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlmx.config import Settings
from rlmx.errors import UsageError
from rlmx.trajectory.database import Database, default_db_path
from rlmx.trajectory.summary import ACTIVE_STATUSES, COLUMNS, RunSummary, summary_of
from rlmx.trajectory.totals import as_int, fold_event

__all__ = ["PAGE", "Appended", "RunStore", "default_db_path", "open_store"]

PAGE = 500
DIED = "the process recording this run ended before the run finished"


def open_store(path: str | Path | None = None, *, settings: Settings | None = None) -> RunStore:
    """The store at ``path`` (default ``$RLMX_HOME/rlmx.db``), with a usage error if it cannot
    be opened."""
    target = Path(path).expanduser() if path else default_db_path(settings)
    try:
        return RunStore(target)
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(
            f"cannot open the run store {target}: {exc} (pass --db PATH, or --no-db)"
        ) from None


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an event went: its top-level run, its number there, and its JSON text."""

    run_id: str
    idx: int
    line: str
    finished: bool


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _like(text: str) -> str:
    """``text`` escaped for ``LIKE ... ESCAPE '\\'``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class RunStore:
    """Runs and events in one SQLite file; safe to share between threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.database = Database(path)
        self.path = self.database.path
        self._host = socket.gethostname()
        # Which top-level run each nested run belongs to, and the next event number of each
        # top-level run this store is recording; forgotten when the run finishes.
        self._root_of: dict[str, str] = {}
        self._children: dict[str, list[str]] = {}
        self._next: dict[str, int] = {}

    @classmethod
    def default(cls, settings: Settings | None = None) -> RunStore:
        return cls(default_db_path(settings))

    def close(self) -> None:
        self.database.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Writing ---------------------------------------------------------------------------------

    def create_run(self, run_id: str, *, query: str, source: str, **fields: Any) -> None:
        """A row for a run that is queued and has no event yet (the server's runs)."""
        with self.database.writing() as db:
            db.execute(
                "INSERT INTO runs (id, query, status, source, created_at, root_model, sub_model,"
                " context, limits, pid, host) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    query,
                    source,
                    time.time(),
                    fields.get("root_model"),
                    fields.get("sub_model"),
                    json.dumps(fields.get("context") or {}),
                    json.dumps(fields.get("limits") or {}),
                    os.getpid(),
                    self._host,
                ),
            )

    def append(self, event: Mapping[str, Any], *, source: str = "python") -> Appended:
        """Record one event (a ``to_dict()`` of an event, or a line of a trace) and commit."""
        with self.database.writing() as db:
            return self._append(db, event, source)

    def append_new(self, events: Sequence[Mapping[str, Any]], *, source: str) -> list[Appended]:
        """Record the events of a trace from outside in one transaction. A trace may only add
        runs: it is refused whole (``ValueError``, nothing written) if any event names a run the
        store already has, as a top-level run or a nested one, since its events would change
        that run."""
        names = {str(e[k]) for e in events for k in ("run_id", "parent_run_id") if e.get(k)}
        with self.database.writing() as db:
            known = self._known_runs(db, sorted(names))
            if known:
                more = f" (and {len(known) - 1} more)" if len(known) > 1 else ""
                raise ValueError(
                    f"run {known[0]}{more} is already in the store {self.path}: a trace may only "
                    "add runs, not change them; import it into another store (--db PATH)"
                )
            return [self._append(db, e, source) for e in events]

    @staticmethod
    def _known_runs(db: sqlite3.Connection, names: list[str]) -> list[str]:
        found: set[str] = set()
        for start in range(0, len(names), PAGE):
            chunk = names[start : start + PAGE]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT id FROM runs WHERE id IN ({marks}) UNION "
                f"SELECT event_run_id FROM events WHERE event_run_id IN ({marks})",
                (*chunk, *chunk),
            )
            found.update(str(r[0]) for r in rows)
        return sorted(found)

    def _root(self, event: Mapping[str, Any]) -> str:
        run_id = str(event["run_id"])
        parent = event.get("parent_run_id")
        if event.get("type") == "run_started" and isinstance(parent, str) and parent:
            root = self._root_of.get(parent, parent)
            self._root_of[run_id] = root
            self._children.setdefault(root, []).append(run_id)
            return root
        return self._root_of.get(run_id, run_id)

    def _append(self, db: sqlite3.Connection, event: Mapping[str, Any], source: str) -> Appended:
        kind = str(event.get("type", "event"))
        run_id = str(event["run_id"])
        ts = event.get("ts")
        ts = float(ts) if isinstance(ts, int | float) else time.time()
        root = self._root(event)
        line = json.dumps(event, ensure_ascii=False, default=str, separators=(",", ":"))
        if root not in self._next:
            row = db.execute(
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM events WHERE run_id = ?", (root,)
            ).fetchone()
            self._next[root] = int(row[0])
            db.execute(
                "INSERT OR IGNORE INTO runs (id, status, source, created_at, pid, host)"
                " VALUES (?, 'running', ?, ?, ?, ?)",
                (root, source, ts, os.getpid(), self._host),
            )
        idx = self._next[root]
        db.execute(
            "INSERT INTO events (run_id, idx, event_run_id, type, depth, ts, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (root, idx, run_id, kind, as_int(event.get("depth")), ts, line),
        )
        self._next[root] = idx + 1
        fold_event(db, root, event, own=run_id == root, ts=ts, host=self._host)
        finished = kind == "run_finished" and run_id == root
        if finished:
            self._forget(root)
        return Appended(root, idx, line, finished)

    def _forget(self, root: str) -> None:
        self._next.pop(root, None)
        for child in self._children.pop(root, []):
            self._root_of.pop(child, None)

    def mark_interrupted(self, run_id: str, reason: str) -> None:
        with self.database.writing() as db:
            db.execute(
                "UPDATE runs SET status = 'interrupted', error = COALESCE(error, ?),"
                " finished_at = COALESCE(finished_at, ?) WHERE id = ? AND status IN (?, ?)",
                (reason, time.time(), run_id, *ACTIVE_STATUSES),
            )
            self._forget(run_id)

    def delete_run(self, run_id: str) -> bool:
        with self.database.writing() as db:
            db.execute("DELETE FROM events WHERE run_id = ?", (run_id,))
            gone = db.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount
            self._forget(run_id)
        return gone > 0

    def reap(self) -> list[str]:
        """Mark runs whose recording process on this machine has died as ``interrupted``;
        returns their ids. The one maintenance step: reading never does it by itself."""
        with self.database.reading() as db:
            rows = db.execute(
                "SELECT id, pid, host FROM runs WHERE status IN (?, ?)", ACTIVE_STATUSES
            ).fetchall()
        dead = [
            str(row["id"])
            for row in rows
            if row["host"] == self._host and isinstance(row["pid"], int) and not _alive(row["pid"])
        ]
        for run_id in dead:
            self.mark_interrupted(run_id, DIED)
        return dead

    # Reading (never writes) ------------------------------------------------------------------

    def list_runs(
        self, *, limit: int = 50, offset: int = 0, status: str | None = None, search: str = ""
    ) -> list[RunSummary]:
        where, params = ["1 = 1"], []
        if status:
            where.append("status = ?")
            params.append(status)
        if search:
            where.append("(query LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\')")
            pattern = "%" + _like(search) + "%"
            params += [pattern, pattern]
        sql = (
            f"SELECT {COLUMNS} FROM runs WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC, id LIMIT ? OFFSET ?"
        )
        with self.database.reading() as db:
            rows = db.execute(sql, (*params, limit, offset)).fetchall()
        return [summary_of(r) for r in rows]

    def get_run(self, run_id: str) -> RunSummary | None:
        with self.database.reading() as db:
            found = db.execute(f"SELECT {COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return summary_of(found) if found is not None else None

    def resolve_id(self, prefix: str) -> str | None:
        """The run whose id is ``prefix`` or starts with it; ``ValueError`` if several do."""
        with self.database.reading() as db:
            if db.execute("SELECT 1 FROM runs WHERE id = ?", (prefix,)).fetchone():
                return prefix
            rows = db.execute(
                "SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 6", (_like(prefix) + "%",)
            ).fetchall()
        if len(rows) > 1:
            ids = ", ".join(r[0] for r in rows[:5])
            raise ValueError(f"run id prefix {prefix!r} is ambiguous: {ids}")
        return str(rows[0][0]) if rows else None

    def events(self, run_id: str, *, after: int = -1, limit: int = PAGE) -> list[tuple[int, str]]:
        """Events of a run's tree with a number above ``after``, in order, as JSON text."""
        with self.database.reading() as db:
            rows = db.execute(
                "SELECT idx, data FROM events WHERE run_id = ? AND idx > ? ORDER BY idx LIMIT ?",
                (run_id, after, limit),
            ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def iter_events(self, run_id: str) -> Iterator[tuple[int, str]]:
        after = -1
        while page := self.events(run_id, after=after):
            yield from page
            after = page[-1][0]
