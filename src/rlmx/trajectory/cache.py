"""The persistent sub-call cache: greedy sub-model answers in the run store's database.

One row per request key (see :func:`rlmx.engine.cache.request_key`) in ``subcall_cache``: the
reply exactly as the model gave it (text, first-token logprobs, finish reason), the usage and
latency of the call that produced it, and how often it has been given again since. Several
processes share it through SQLite (WAL): the first answer stored for a key stays.

A cache is an optimisation, never a reason for a run to fail: a database that cannot be
opened, read or written is logged and treated as a miss (:meth:`SqliteCache.get`) or as
forgetting (:meth:`SqliteCache.put`). :meth:`~SqliteCache.stats` and :meth:`~SqliteCache.clear`,
which a person asks for, do raise.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rlmx.trajectory.database import Database
from rlmx.types import Completion, Usage

log = logging.getLogger(__name__)

# What get and put survive: the database's failures, and text SQLite cannot hold.
_STORAGE_ERRORS = (sqlite3.Error, OSError, ValueError, UnicodeError)


@dataclass(frozen=True, slots=True)
class ModelCacheStats:
    """The cache's entries for one model, and what giving them again has saved."""

    model: str
    entries: int
    bytes: int
    hits: int
    saved_prompt_tokens: int
    saved_completion_tokens: int
    saved_s: float

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "entries": self.entries,
            "bytes": self.bytes,
            "hits": self.hits,
            "saved_prompt_tokens": self.saved_prompt_tokens,
            "saved_completion_tokens": self.saved_completion_tokens,
            "saved_s": round(self.saved_s, 3),
        }


@dataclass(frozen=True, slots=True)
class CacheStats:
    """The whole cache: its totals and one line per model."""

    path: str
    models: tuple[ModelCacheStats, ...]

    @property
    def entries(self) -> int:
        return sum(m.entries for m in self.models)

    @property
    def bytes(self) -> int:
        return sum(m.bytes for m in self.models)

    @property
    def hits(self) -> int:
        return sum(m.hits for m in self.models)

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "entries": self.entries,
            "bytes": self.bytes,
            "hits": self.hits,
            "saved_prompt_tokens": sum(m.saved_prompt_tokens for m in self.models),
            "saved_completion_tokens": sum(m.saved_completion_tokens for m in self.models),
            "saved_s": round(sum(m.saved_s for m in self.models), 3),
            "models": [m.to_dict() for m in self.models],
        }


class SqliteCache:
    """A :class:`~rlmx.engine.cache.SubCallCache` in the run store's SQLite file.

    ``target`` is an open :class:`~rlmx.trajectory.database.Database` (shared, left open), or
    a path, opened on first use (the constructor touches no file) and closed by :meth:`close`.
    """

    def __init__(self, target: Database | str | Path) -> None:
        self._database = target if isinstance(target, Database) else None
        self._path = Path(target).expanduser() if not isinstance(target, Database) else None
        self._lock = threading.Lock()
        self._broken = False

    @property
    def path(self) -> Path:
        return self._database.path if self._database is not None else Path(str(self._path))

    def get(self, model: str, key: str) -> Completion | None:
        try:
            database = self._open()
            if database is None:
                return None
            with database.reading() as db:
                row = db.execute(
                    "SELECT text, top_logprobs, finish_reason, prompt_tokens, completion_tokens,"
                    " latency_s FROM subcall_cache WHERE key = ? AND model = ?",
                    (key, model),
                ).fetchone()
            if row is None:
                return None
            completion = _completion(model, row)
            with database.writing() as db:
                db.execute(
                    "UPDATE subcall_cache SET hits = hits + 1, used_at = ? WHERE key = ?",
                    (time.time(), key),
                )
        except _STORAGE_ERRORS as exc:
            log.warning("sub-call cache %s not read: %s", self.path, exc)
            return None
        return completion

    def put(self, model: str, key: str, completion: Completion) -> None:
        logprobs = json.dumps([[token, p] for token, p in completion.top_logprobs])
        size = len(completion.text.encode("utf-8")) + len(logprobs)
        now = time.time()
        try:
            database = self._open()
            if database is None:
                return
            with database.writing() as db:
                db.execute(
                    "INSERT INTO subcall_cache (key, model, text, top_logprobs, finish_reason,"
                    " prompt_tokens, completion_tokens, latency_s, bytes, created_at, used_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
                    (
                        key,
                        model,
                        completion.text,
                        logprobs,
                        completion.finish_reason,
                        completion.usage.prompt_tokens,
                        completion.usage.completion_tokens,
                        completion.latency_s,
                        size,
                        now,
                        now,
                    ),
                )
        except _STORAGE_ERRORS as exc:
            log.warning("sub-call cache %s not written: %s", self.path, exc)

    def stats(self) -> CacheStats:
        """Entries, bytes and hits per model, and the tokens and seconds the hits saved."""
        with self._require().reading() as db:
            rows = db.execute(
                "SELECT model, COUNT(*), SUM(bytes), SUM(hits), SUM(hits * prompt_tokens),"
                " SUM(hits * completion_tokens), SUM(hits * latency_s)"
                " FROM subcall_cache GROUP BY model ORDER BY COUNT(*) DESC, model"
            ).fetchall()
        models = tuple(
            ModelCacheStats(
                model=str(r[0]),
                entries=int(r[1]),
                bytes=int(r[2] or 0),
                hits=int(r[3] or 0),
                saved_prompt_tokens=int(r[4] or 0),
                saved_completion_tokens=int(r[5] or 0),
                saved_s=float(r[6] or 0.0),
            )
            for r in rows
        )
        return CacheStats(path=str(self.path), models=models)

    def clear(self, model: str | None = None) -> int:
        """Forget every answer (or those of ``model``); returns how many were forgotten."""
        with self._require().writing() as db:
            if model is None:
                cursor = db.execute("DELETE FROM subcall_cache")
            else:
                cursor = db.execute("DELETE FROM subcall_cache WHERE model = ?", (model,))
            return int(cursor.rowcount)

    def close(self) -> None:
        """Close the database if this cache opened it; a shared one is left open."""
        with self._lock:
            if self._path is not None and self._database is not None:
                self._database.close()
                self._database = None

    def _open(self) -> Database | None:
        """The database, opened now if need be; None once opening it has failed (a cache that
        cannot open its file is off for the rest of its life, with one warning)."""
        with self._lock:
            if self._database is None and not self._broken:
                try:
                    self._database = Database(str(self._path))
                except _STORAGE_ERRORS as exc:
                    self._broken = True
                    log.warning("sub-call cache off: cannot open %s: %s", self._path, exc)
            return self._database

    def _require(self) -> Database:
        with self._lock:
            if self._database is None:
                self._database = Database(str(self._path))
            return self._database


def _completion(model: str, row: sqlite3.Row) -> Completion:
    text, logprobs, finish_reason, prompt_tokens, completion_tokens, latency_s = row
    return Completion(
        text=str(text),
        usage=Usage(
            prompt_tokens=int(prompt_tokens), completion_tokens=int(completion_tokens), calls=1
        ),
        model=model,
        latency_s=float(latency_s),
        finish_reason=None if finish_reason is None else str(finish_reason),
        top_logprobs=tuple((str(t), float(p)) for t, p in json.loads(logprobs)),
    )
