"""The SQLite store of runs and their events: ``$RLMX_HOME/rlmx.db`` unless told otherwise.

One row per top-level run in ``runs``, its totals kept current as events arrive, and every event
of the run's tree (nested runs included) in ``events``, numbered from 0 within the tree. Each
event is committed on its own (WAL, ``synchronous=NORMAL``), so a run that crashes or is killed
keeps every event written so far; its status then reads ``interrupted``.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlmx.config import Settings
from rlmx.errors import UsageError
from rlmx.trajectory.migrations import migrate, transaction
from rlmx.trajectory.summary import ACTIVE_STATUSES, COLUMNS, RunSummary, summary_of

DB_NAME = "rlmx.db"
PAGE = 500


def default_db_path(settings: Settings | None = None) -> Path:
    """``$RLMX_DB`` if set, else ``rlmx.db`` in ``$RLMX_HOME``."""
    settings = settings or Settings()
    explicit = settings.get("RLMX_DB")
    return Path(explicit).expanduser() if explicit else settings.home / DB_NAME


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


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class RunStore:
    """Runs and events in one SQLite file; safe to share between threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # A killed process loses no committed event in WAL mode; only a power cut could lose
        # the last ones. Checkpoints (which sync) every 16 MB of log instead of every 4 MB.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA wal_autocheckpoint=4000")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._lock = threading.RLock()
        self._host = socket.gethostname()
        self._root_of: dict[str, str] = {}
        self._children: dict[str, list[str]] = {}
        self._next: dict[str, int] = {}
        with self._lock:
            migrate(self._db)

    @classmethod
    def default(cls, settings: Settings | None = None) -> RunStore:
        return cls(default_db_path(settings))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Writing ---------------------------------------------------------------------------------

    def create_run(self, run_id: str, *, query: str, source: str, **fields: Any) -> None:
        """A row for a run that is queued and has no event yet (the server's runs)."""
        now = time.time()
        with self._lock, transaction(self._db):
            self._db.execute(
                "INSERT INTO runs (id, query, status, source, created_at, root_model, sub_model,"
                " context, limits, pid, host) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    query,
                    source,
                    now,
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
        with self._lock, transaction(self._db):
            return self._append(event, source)

    def append_many(self, events: Iterable[Mapping[str, Any]], *, source: str) -> list[Appended]:
        """Record many events in one transaction (importing a trace)."""
        with self._lock, transaction(self._db):
            return [self._append(e, source) for e in events]

    def append_new(self, events: Sequence[Mapping[str, Any]], *, source: str) -> list[Appended]:
        """:meth:`append_many` for a trace from outside, which may only add runs: refused whole
        (``ValueError``, nothing written) if any event names a run the store already has, as a
        top-level run or a nested one, since its events would change that run."""
        names = {str(e[k]) for e in events for k in ("run_id", "parent_run_id") if e.get(k)}
        with self._lock, transaction(self._db):
            known = self._known_runs(sorted(names))
            if known:
                more = f" (and {len(known) - 1} more)" if len(known) > 1 else ""
                raise ValueError(
                    f"run {known[0]}{more} is already in the store {self.path}: a trace may only "
                    "add runs, not change them; import it into another store (--db PATH)"
                )
            return [self._append(e, source) for e in events]

    def _known_runs(self, names: list[str]) -> list[str]:
        found: set[str] = set()
        for start in range(0, len(names), PAGE):
            chunk = names[start : start + PAGE]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
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

    def _append(self, event: Mapping[str, Any], source: str) -> Appended:
        kind = str(event.get("type", "event"))
        run_id = str(event["run_id"])
        ts = event.get("ts")
        ts = float(ts) if isinstance(ts, int | float) else time.time()
        depth = _int(event.get("depth"))
        root = self._root(event)
        line = json.dumps(event, ensure_ascii=False, default=str, separators=(",", ":"))
        if root not in self._next:
            row = self._db.execute(
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM events WHERE run_id = ?", (root,)
            ).fetchone()
            self._next[root] = int(row[0])
            self._db.execute(
                "INSERT OR IGNORE INTO runs (id, status, source, created_at, pid, host)"
                " VALUES (?, 'running', ?, ?, ?, ?)",
                (root, source, ts, os.getpid(), self._host),
            )
        idx = self._next[root]
        self._db.execute(
            "INSERT INTO events (run_id, idx, event_run_id, type, depth, ts, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (root, idx, run_id, kind, depth, ts, line),
        )
        self._next[root] = idx + 1
        self._update_totals(root, run_id == root, kind, event, ts)
        finished = kind == "run_finished" and run_id == root
        if finished:
            self._forget(root)
        return Appended(root, idx, line, finished)

    def _update_totals(
        self, root: str, own: bool, kind: str, event: Mapping[str, Any], ts: float
    ) -> None:
        usage = event.get("usage") if kind in ("root_reply", "sub_call") else None
        usage = usage if isinstance(usage, dict) else {}
        cost = event.get("cost_usd")
        cost_known = not usage or isinstance(cost, int | float)
        self._db.execute(
            "UPDATE runs SET event_count = event_count + 1, prompt_tokens = prompt_tokens + ?,"
            " completion_tokens = completion_tokens + ?, total_tokens = total_tokens + ?,"
            " cost_usd = cost_usd + ?, cost_known = cost_known AND ?,"
            " sub_calls = sub_calls + ?, iterations = MAX(iterations, ?) WHERE id = ?",
            (
                _int(usage.get("prompt_tokens")),
                _int(usage.get("completion_tokens")),
                _int(usage.get("total_tokens")),
                float(cost) if isinstance(cost, int | float) else 0.0,
                cost_known,
                1 if kind == "sub_call" else 0,
                _int(event.get("iteration")) if own and kind == "root_reply" else 0,
                root,
            ),
        )
        if not own:
            return
        if kind == "run_started":
            self._started(root, event, ts)
        elif kind == "final_answer":
            self._db.execute("UPDATE runs SET answer = ? WHERE id = ?", (event.get("answer"), root))
        elif kind == "run_error":
            self._db.execute("UPDATE runs SET error = ? WHERE id = ?", (event.get("error"), root))
        elif kind == "run_finished":
            self._finished(root, event, ts)

    def _started(self, root: str, event: Mapping[str, Any], ts: float) -> None:
        self._db.execute(
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
                self._host,
                root,
            ),
        )

    def _finished(self, root: str, event: Mapping[str, Any], ts: float) -> None:
        result = event.get("result")
        result = result if isinstance(result, dict) else {}
        usage = result.get("usage")
        total = usage.get("total") if isinstance(usage, dict) else None
        total = total if isinstance(total, dict) else None
        cost = result.get("cost_usd")
        wall = result.get("wall_s")
        self._db.execute(
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
            self._db.execute(
                "UPDATE runs SET prompt_tokens = ?, completion_tokens = ?, total_tokens = ?,"
                " cost_usd = ?, cost_known = ? WHERE id = ?",
                (
                    _int(total.get("prompt_tokens")),
                    _int(total.get("completion_tokens")),
                    _int(total.get("total_tokens")),
                    float(cost) if isinstance(cost, int | float) else 0.0,
                    isinstance(cost, int | float),
                    root,
                ),
            )

    def _forget(self, root: str) -> None:
        self._next.pop(root, None)
        for child in self._children.pop(root, []):
            self._root_of.pop(child, None)

    def mark_interrupted(self, run_id: str, reason: str) -> None:
        with self._lock, transaction(self._db):
            self._db.execute(
                "UPDATE runs SET status = 'interrupted', error = COALESCE(error, ?),"
                " finished_at = COALESCE(finished_at, ?) WHERE id = ? AND status IN (?, ?)",
                (reason, time.time(), run_id, *ACTIVE_STATUSES),
            )
            self._forget(run_id)

    def delete_run(self, run_id: str) -> bool:
        with self._lock, transaction(self._db):
            self._db.execute("DELETE FROM events WHERE run_id = ?", (run_id,))
            gone = self._db.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount
            self._forget(run_id)
        return gone > 0

    # Reading ---------------------------------------------------------------------------------

    def reap(self) -> None:
        """Mark runs whose recording process on this machine has died as ``interrupted``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, pid, host FROM runs WHERE status IN (?, ?)", ACTIVE_STATUSES
            ).fetchall()
        for row in rows:
            pid = row["pid"]
            if row["host"] == self._host and isinstance(pid, int) and not _alive(pid):
                self.mark_interrupted(
                    row["id"], "the process recording this run ended before the run finished"
                )

    def list_runs(
        self, *, limit: int = 50, offset: int = 0, status: str | None = None, search: str = ""
    ) -> list[RunSummary]:
        self.reap()
        where, params = ["1 = 1"], []
        if status:
            where.append("status = ?")
            params.append(status)
        if search:
            where.append("(query LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\')")
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params += [pattern + "%", pattern + "%"]
        sql = (
            f"SELECT {COLUMNS} FROM runs WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC, id LIMIT ? OFFSET ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (*params, limit, offset)).fetchall()
        return [summary_of(r) for r in rows]

    def get_run(self, run_id: str) -> RunSummary | None:
        self.reap()
        with self._lock:
            row = self._db.execute(f"SELECT {COLUMNS} FROM runs WHERE id = ?", (run_id,))
            found = row.fetchone()
        return summary_of(found) if found is not None else None

    def resolve_id(self, prefix: str) -> str | None:
        """The run whose id is ``prefix`` or starts with it; ``ValueError`` if several do."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._lock:
            if self._db.execute("SELECT 1 FROM runs WHERE id = ?", (prefix,)).fetchone():
                return prefix
            rows = self._db.execute(
                "SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 6", (escaped + "%",)
            ).fetchall()
        if len(rows) > 1:
            ids = ", ".join(r[0] for r in rows[:5])
            raise ValueError(f"run id prefix {prefix!r} is ambiguous: {ids}")
        return str(rows[0][0]) if rows else None

    def events(self, run_id: str, *, after: int = -1, limit: int = PAGE) -> list[tuple[int, str]]:
        """Events of a run's tree with a number above ``after``, in order, as JSON text."""
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, data FROM events WHERE run_id = ? AND idx > ? ORDER BY idx LIMIT ?",
                (run_id, after, limit),
            ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def iter_events(self, run_id: str) -> Iterator[tuple[int, str]]:
        after = -1
        while page := self.events(run_id, after=after):
            yield from page
            after = page[-1][0]

    # Contexts (the server's uploads) ---------------------------------------------------------

    def add_context(
        self, context_id: str, *, name: str | None, size: int, chars: int, lines: int
    ) -> None:
        with self._lock, transaction(self._db):
            self._db.execute(
                "INSERT OR IGNORE INTO contexts (id, name, bytes, chars, lines, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (context_id, name, size, chars, lines, time.time()),
            )

    def get_context(self, context_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, name, bytes, chars, lines, created_at FROM contexts WHERE id = ?",
                (context_id,),
            ).fetchone()
        return dict(row) if row is not None else None
