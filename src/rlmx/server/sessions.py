"""The server's sessions: one live :class:`~rlmx.sessions.Session` per session in memory,
durable in the run store, reopened from it when asked after a restart.

A question is a run like any other (a row in the store, events on the live streams, a slot
among ``max_active_runs``), whose work is the session's ``aask``. The questions of one session
go one at a time (its lock is taken before a run slot, so a waiting question holds none). A
question with other limits than the live session's reopens it with them (a replay of its cells:
no model is asked again); so does a question that was cancelled or crashed, since the REPL may
be half-way through a cell. Beyond ``max_live_sessions`` in memory, the least recently used idle
ones are let go; their worker is stopped after ``session_idle_s`` without a question anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from anyio import to_thread

from rlmx.config import Limits
from rlmx.context import Context
from rlmx.server.config import ServerConfig
from rlmx.server.contexts import ContextBlobs
from rlmx.server.errors import ApiError
from rlmx.server.runs import RunManager, RunRow
from rlmx.server.session_files import NAME, OriginFiles, SessionOrigin
from rlmx.server.session_opening import (
    LiveSession,
    SessionOpener,
    check_name,
    new_name,
    same_context,
    taken,
    unknown,
)
from rlmx.trajectory.sessions import SessionTable
from rlmx.trajectory.store import RunStore
from rlmx.types import RunResult

CANCEL_WAIT_S = 10.0
OnResult = Callable[[RunResult], Awaitable[None]]


@dataclass(eq=False)
class _Entry:
    """A session this server is using: ``lock`` lets one question in at a time; ``opening``
    guards ``live``; ``runs`` are its questions queued or going; ``asking`` counts requests
    between finding it and queueing their run (it is not let go meanwhile)."""

    name: str
    origin: SessionOrigin | None = None
    live: LiveSession | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    opening: asyncio.Lock = field(default_factory=asyncio.Lock)
    runs: set[str] = field(default_factory=set)
    asking: int = 0
    used: float = field(default_factory=time.monotonic)
    deleted: bool = False

    @property
    def idle(self) -> bool:
        return not self.runs and not self.asking and not self.lock.locked()


@dataclass(frozen=True, slots=True)
class Asked:
    """A question queued in a session: its run, and the notes on reopening the context."""

    name: str
    run_id: str
    notes: list[str]


class SessionManager:
    """Opens, asks, lists and deletes the server's sessions."""

    def __init__(
        self, *, store: RunStore, runs: RunManager, blobs: ContextBlobs, config: ServerConfig
    ) -> None:
        self.store = store
        self.runs = runs
        self.blobs = blobs
        self.config = config
        self.table = SessionTable(store.database)
        self.files = OriginFiles(config.sessions_dir)
        self.opener = SessionOpener(store=store, runs=runs, blobs=blobs, config=config)
        self._entries: dict[str, _Entry] = {}
        self._chats: dict[str, str] = {}  # a conversation's key -> its session's name

    # Start and stop ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Expire stored sessions, forget the files of gone ones, index chat conversations."""
        origins = await to_thread.run_sync(self._tidy)
        for name, origin in origins.items():
            for key in origin.chat_keys:
                self._chats[key] = name

    def _tidy(self) -> dict[str, SessionOrigin]:
        policy = self.opener.policy
        self.table.expire(idle_s=policy.expire_idle_s, max_bytes=policy.max_stored_bytes)
        self.files.prune({row.name for row in self.table.rows()})
        return self.files.all()

    async def shutdown(self) -> None:
        for entry in list(self._entries.values()):
            entry.deleted = True
            await self._let_go(entry)
        self._entries.clear()

    # Reading ---------------------------------------------------------------------------------

    async def rows(self) -> list[dict[str, Any]]:
        rows = await to_thread.run_sync(self.table.rows)
        return [{**dataclasses.asdict(r), **self._state(r.name)} for r in rows]

    async def describe(self, name: str) -> dict[str, Any]:
        stored = await to_thread.run_sync(self.table.load, name) if NAME.match(name) else None
        if stored is None:
            raise unknown(name)
        origin = await to_thread.run_sync(self.files.read, name)
        info = dataclasses.asdict(stored)
        state = info.pop("state")
        return {
            **info,
            **self._state(name),
            "cells": len(state.get("records", [])),
            "origin": origin.describe() if origin is not None else None,
            "history": list(state.get("history", [])),
        }

    def _state(self, name: str) -> dict[str, Any]:
        entry = self._entries.get(name)
        live = entry.live if entry is not None else None
        return {
            "live": live is not None,
            "worker_running": live is not None and live.session.worker_running,
            "busy": entry is not None and bool(entry.runs),
        }

    def chat_name(self, key: str) -> str | None:
        """The session of the chat conversation whose transcript so far has ``key``."""
        return self._chats.get(key)

    async def exists(self, name: str) -> bool:
        entry = self._entries.get(name)
        if entry is not None and entry.live is not None:
            return True
        return await to_thread.run_sync(self.table.load, name) is not None

    # Opening -----------------------------------------------------------------------------------

    async def create(
        self, name: str | None, context: Context, origin: SessionOrigin, notes: list[str]
    ) -> dict[str, Any]:
        """A new session over ``context``, stored at once (with no question yet)."""
        name = check_name(name) if name is not None else new_name(origin.kind)
        if name in self._entries:
            raise taken(name)
        entry = self._entries[name] = _Entry(name, origin)
        entry.asking += 1
        try:
            async with entry.opening:
                if await to_thread.run_sync(self.table.load, name) is not None:
                    raise taken(name)
                entry.live = await self._open(entry, context, self.opener.limits(origin, {}))
                gone = await to_thread.run_sync(self._store_new, name, context, origin)
        except BaseException:
            entry.deleted = True
            await self._let_go(entry)
            self._entries.pop(name, None)
            raise
        finally:
            entry.asking -= 1
        for old in gone:
            await self._forget(old)
        await self._evict()
        handle = context.describe()
        return {"name": name, "context_id": handle.id, "context": handle.to_dict(), "notes": notes}

    def _store_new(self, name: str, context: Context, origin: SessionOrigin) -> list[str]:
        self.files.write(name, origin)
        state: dict[str, Any] = {"history": [], "records": []}
        self.table.save(name, context.describe().id, state, questions=0)
        policy = self.opener.policy
        gone = self.table.expire(
            idle_s=policy.expire_idle_s, max_bytes=policy.max_stored_bytes, keep=name
        )
        for old in gone:
            self.files.delete(old)
        return gone

    async def _ready(self, name: str, supplied: Context | None) -> tuple[_Entry, list[str]]:
        """The session's entry with a live session (reopened from the store if need be), and
        the notes on reopening its context. The caller holds ``entry.asking``."""
        entry = self._entries.setdefault(name, _Entry(name))
        entry.asking += 1
        notes: list[str] = []
        try:
            async with entry.opening:
                if entry.live is None:
                    notes = await self._reopen(entry, supplied)
                elif supplied is not None:
                    same_context(name, entry.live.session.context.describe().id, supplied)
        except BaseException:
            entry.asking -= 1
            if entry.live is None and entry.idle:
                self._entries.pop(name, None)
            raise
        entry.used = time.monotonic()
        return entry, notes

    async def _reopen(self, entry: _Entry, supplied: Context | None) -> list[str]:
        name = entry.name
        stored = await to_thread.run_sync(self.table.load, name)
        if stored is None:
            await to_thread.run_sync(self.files.delete, name)
            raise unknown(name)
        origin = await to_thread.run_sync(self.files.read, name)
        notes: list[str] = []
        if supplied is not None:
            context = supplied
            origin = origin or SessionOrigin(kind="chat")
        elif origin is None:
            raise ApiError(
                409,
                f"session {name!r} was not opened by this server (rlmx run --session or the "
                "Python API), so its context is unknown here: continue it where it was opened",
                param="name",
            )
        elif origin.kind == "chat":
            raise ApiError(
                409,
                f"session {name!r} belongs to a chat conversation, whose messages bring its "
                "context: continue it through POST /v1/chat/completions",
                param="name",
            )
        else:
            context, notes = await self.opener.gather(name, origin)
        same_context(name, stored.context_id, context)
        entry.origin = origin
        entry.live = await self._open(entry, context, self.opener.limits(origin, {}))
        await self._evict()
        return notes

    async def _open(self, entry: _Entry, context: Context, limits: Limits) -> LiveSession:
        origin = entry.origin or SessionOrigin(kind="chat")
        return await self.opener.open(entry.name, origin, context, limits)

    # Asking ------------------------------------------------------------------------------------

    async def ask(
        self,
        name: str,
        query: str,
        overrides: dict[str, Any] | None = None,
        *,
        context: Context | None = None,
        on_result: OnResult | None = None,
        output: dict[str, Any] | None = None,
    ) -> Asked:
        """Queue ``query`` in session ``name``; ``context``, if given, is the one the client
        brought (a chat conversation's), which must be the session's."""
        if not NAME.match(name):
            raise unknown(name)
        entry, notes = await self._ready(name, context)
        try:
            assert entry.live is not None
            assert entry.origin is not None
            limits = self.opener.limits(entry.origin, overrides or {})
            live = entry.live
            shape = live.session.context.describe().to_dict()
            row = RunRow(query, live.source, live.rlm.models, shape, limits)
            job = partial(self._question, entry, query, limits, on_result, output)

            async def after(run_id: str) -> None:
                entry.runs.discard(run_id)

            run_id = await self.runs.launch(row, job, self.runs.recorder(live.source), after=after)
            entry.runs.add(run_id)
        finally:
            entry.asking -= 1
        return Asked(name, run_id, notes)

    async def _question(
        self,
        entry: _Entry,
        query: str,
        limits: Limits,
        on_result: OnResult | None,
        output: dict[str, Any] | None,
        run_id: str,
    ) -> RunResult:
        async with entry.lock:
            live = await self._fit(entry, limits)
            async with self.runs.slot:
                try:
                    result = await live.session.aask(query, run_id=run_id, output=output)
                except BaseException:
                    # Cancelled or crashed half-way: the REPL is rebuilt from the last save.
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._renew(entry, live))
                    raise
            entry.used = time.monotonic()
        if on_result is not None:
            await on_result(result)
        return result

    async def _fit(self, entry: _Entry, limits: Limits) -> LiveSession:
        """The live session, reopened if this question has other limits."""
        live = entry.live
        if live is None or entry.deleted:
            raise ApiError(409, f"session {entry.name!r} was deleted", param="name")
        if live.limits != limits:
            live = await self._renew(entry, live, limits)
        return live

    async def _renew(
        self, entry: _Entry, old: LiveSession, limits: Limits | None = None
    ) -> LiveSession:
        async with entry.opening:
            if entry.deleted or entry.live is not old:
                return old
            entry.live = None
            await old.close()
            entry.live = await self._open(entry, old.session.context, limits or old.limits)
            return entry.live

    async def remember(self, name: str, key: str) -> None:
        """The chat conversation whose transcript now has ``key`` continues session ``name``."""
        self._chats[key] = name
        entry = self._entries.get(name)
        origin = entry.origin if entry is not None else None
        if entry is None or origin is None or entry.deleted:
            return
        entry.origin = origin.with_key(key)
        with contextlib.suppress(OSError):
            await to_thread.run_sync(self.files.write, name, entry.origin)

    # Letting go --------------------------------------------------------------------------------

    async def delete(self, name: str) -> dict[str, Any]:
        """Cancel the session's questions, stop its worker, delete it from the store."""
        entry = self._entries.get(name)
        if entry is not None:
            entry.deleted = True
            for run_id in list(entry.runs):
                self.runs.cancel(run_id, f"its session {name} was deleted")
            for run_id in list(entry.runs):
                with contextlib.suppress(TimeoutError):
                    await self.runs.wait(run_id, timeout=CANCEL_WAIT_S)
            await self._let_go(entry)
            self._entries.pop(name, None)
        found = NAME.match(name) is not None and await to_thread.run_sync(self.table.delete, name)
        if NAME.match(name):
            await to_thread.run_sync(self.files.delete, name)
        self._chats = {k: n for k, n in self._chats.items() if n != name}
        if not found and entry is None:
            raise unknown(name)
        return {"name": name, "deleted": True}

    async def _forget(self, name: str) -> None:
        """A session the store expired: let go of it here too."""
        entry = self._entries.pop(name, None)
        if entry is not None and entry.idle:
            entry.deleted = True
            await self._let_go(entry)
        self._chats = {k: n for k, n in self._chats.items() if n != name}

    async def _let_go(self, entry: _Entry) -> None:
        async with entry.opening:
            live, entry.live = entry.live, None
        if live is not None:
            await live.close()

    async def _evict(self) -> None:
        """Let go of the least recently used idle sessions beyond ``max_live_sessions``."""
        live = [e for e in self._entries.values() if e.live is not None]
        excess = len(live) - self.config.max_live_sessions
        if excess <= 0:
            return
        for entry in sorted((e for e in live if e.idle), key=lambda e: e.used)[:excess]:
            self._entries.pop(entry.name, None)
            await self._let_go(entry)
