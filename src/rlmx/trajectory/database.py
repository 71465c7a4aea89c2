"""The SQLite file behind the run store and the server's uploads: where it is, how it is opened.

One connection per :class:`Database`, shared between threads behind a lock. It is opened in
WAL mode with ``synchronous=NORMAL`` and brought up to date by the migrations of
:mod:`rlmx.trajectory.migrations`. Reads take the lock only; writes are each one
``BEGIN IMMEDIATE`` transaction, so another process sees all of one or none of it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rlmx.config import Settings
from rlmx.trajectory.migrations import migrate, transaction

DB_NAME = "rlmx.db"


def default_db_path(settings: Settings | None = None) -> Path:
    """``$RLMX_DB`` if set, else ``rlmx.db`` in ``$RLMX_HOME``."""
    settings = settings or Settings()
    explicit = settings.get("RLMX_DB")
    return Path(explicit).expanduser() if explicit else settings.home / DB_NAME


class Database:
    """One SQLite file, migrated, safe to share between threads (and with other processes)."""

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
        with self._lock:
            migrate(self._db)

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, for queries that change nothing."""
        with self._lock:
            yield self._db

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one transaction, committed at the end (rolled back on error)."""
        with self._lock, transaction(self._db):
            yield self._db

    @property
    def total_changes(self) -> int:
        """Rows this connection has inserted, updated or deleted since it was opened."""
        with self._lock:
            return self._db.total_changes

    def close(self) -> None:
        with self._lock:
            self._db.close()
