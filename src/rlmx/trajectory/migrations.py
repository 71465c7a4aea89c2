"""Schema changes to the SQLite store: a list of small named migrations, recorded in a table.

Append new migrations at the end and never edit one that has shipped: a database remembers
the names it has applied, and applies the rest in order, each in its own transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Migration = tuple[str, Callable[[sqlite3.Connection], None]]

MIGRATIONS_TABLE = "_rlmx_migrations"


def _initial(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            query TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            root_model TEXT,
            sub_model TEXT,
            context TEXT,
            limits TEXT,
            answer TEXT,
            error TEXT,
            iterations INTEGER NOT NULL DEFAULT 0,
            sub_calls INTEGER NOT NULL DEFAULT 0,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            total_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            cost_known INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            wall_s REAL,
            source TEXT NOT NULL DEFAULT 'python',
            pid INTEGER,
            host TEXT,
            event_count INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE INDEX runs_by_created ON runs (created_at DESC)")
    db.execute(
        """
        CREATE TABLE events (
            run_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            event_run_id TEXT NOT NULL,
            type TEXT NOT NULL,
            depth INTEGER NOT NULL,
            ts REAL NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (run_id, idx)
        ) WITHOUT ROWID
        """
    )


def _contexts(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE contexts (
            id TEXT PRIMARY KEY,
            name TEXT,
            bytes INTEGER NOT NULL,
            chars INTEGER NOT NULL,
            lines INTEGER NOT NULL,
            created_at REAL NOT NULL
        )
        """
    )


def _events_by_run(db: sqlite3.Connection) -> None:
    # An import looks up every run it names, nested ones included, before it writes.
    db.execute("CREATE INDEX events_by_event_run ON events (event_run_id)")


def _sessions(db: sqlite3.Connection) -> None:
    # A durable session: its context's id, and its history and cell records as JSON.
    db.execute(
        """
        CREATE TABLE sessions (
            name TEXT PRIMARY KEY,
            context_id TEXT NOT NULL,
            state TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            questions INTEGER NOT NULL,
            created_at REAL NOT NULL,
            used_at REAL NOT NULL
        )
        """
    )


def _subcall_cache(db: sqlite3.Connection) -> None:
    # Greedy sub-model answers by request (rlmx.trajectory.cache): the reply, its first-token
    # logprobs as JSON, and the usage and latency of the call that produced it.
    db.execute(
        """
        CREATE TABLE subcall_cache (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            text TEXT NOT NULL,
            top_logprobs TEXT NOT NULL,
            finish_reason TEXT,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            latency_s REAL NOT NULL,
            bytes INTEGER NOT NULL,
            hits INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            used_at REAL NOT NULL
        )
        """
    )


MIGRATIONS: list[Migration] = [
    ("0001_runs_and_events", _initial),
    ("0002_contexts", _contexts),
    ("0003_events_by_event_run", _events_by_run),
    ("0004_sessions", _sessions),
    ("0005_subcall_cache", _subcall_cache),
]


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on an autocommit connection; rolls back on error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def applied(db: sqlite3.Connection) -> list[str]:
    rows = db.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY applied_at, name").fetchall()
    return [str(r[0]) for r in rows]


def migrate(db: sqlite3.Connection, migrations: list[Migration] | None = None) -> list[str]:
    """Apply the migrations this database lacks; returns the names applied now.

    ``db`` must be in autocommit mode (``isolation_level=None``).
    """
    with transaction(db):
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
            "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
        )
    done = set(applied(db))
    now: list[str] = []
    for name, step in migrations if migrations is not None else MIGRATIONS:
        if name in done:
            continue
        with transaction(db):
            # Another process may have applied it since we looked: the insert decides.
            cursor = db.execute(
                f"INSERT OR IGNORE INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (?, ?)",
                (name, time.time()),
            )
            if cursor.rowcount == 1:
                step(db)
                now.append(name)
    return now
