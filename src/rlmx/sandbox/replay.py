"""Restart and replay (host side): a session's successful cells, kept to be replayed.

A successful cell is recorded with its sub-calls (a key per request, the reply). When a worker
has to be replaced, the new one replays the recorded cells with the answers served from the
record (:class:`ReplayBook`) instead of asking a model again; a replay that does not reproduce
a cell (an error, other output, an unrecorded sub-call) stops there, and the model is told
which variables are gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlmx.sandbox.supervisor import WorkerDied
from rlmx.types import CellResult

Reply = dict[str, Any]
Calls = list[tuple[str, Reply]]


@dataclass(slots=True)
class Record:
    """A successful cell, kept to be replayed into a new worker."""

    code: str
    digest: str
    calls: Calls = field(default_factory=list)


class ReplayBook:
    """Sub-call answers of one recorded cell, served by request instead of by order."""

    def __init__(self, calls: Sequence[tuple[str, Reply]]) -> None:
        self._answers: dict[str, deque[Reply]] = {}
        for key, reply in calls:
            self._answers.setdefault(key, deque()).append(reply)
        self.diverged: str | None = None

    def answer(self, key: str) -> Reply:
        answers = self._answers.get(key)
        if answers:
            return answers.popleft()
        self.diverged = "it made a sub-call it had not made the first time"
        return {"ok": False, "etype": "RuntimeError", "emsg": "replay: no recorded answer"}


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def call_key(fn: str, args: dict[str, Any]) -> str:
    blob = json.dumps([fn, args], sort_keys=True, ensure_ascii=False)
    return digest(blob)


class Replayer:
    """The record of one session, and the replay of it into a new worker.

    ``spawn`` replaces the session's worker with a fresh one; ``run`` runs a cell in it and
    raises :class:`~rlmx.sandbox.supervisor.WorkerDied` if the worker dies meanwhile.
    """

    def __init__(
        self,
        *,
        enabled: bool,
        spawn: Callable[[], Awaitable[object]],
        run: Callable[[str], Awaitable[CellResult]],
    ) -> None:
        self.enabled = enabled
        self._spawn = spawn
        self._run = run
        self._records: list[Record] = []
        self._lock = threading.Lock()
        self.recording: Calls | None = None  # the running cell's sub-calls
        self.book: ReplayBook | None = None  # the answers, while a cell is replayed

    # Recording (the sub-call answers arrive on pool threads) --------------------------------

    @contextlib.contextmanager
    def recording_cell(self) -> Iterator[Calls]:
        recording: Calls = []
        self.recording = recording
        try:
            yield recording
        finally:
            self.recording = None

    def add_reply(self, recording: Calls, key: str, reply: Reply) -> None:
        with self._lock:
            recording.append((key, reply))

    def keep(self, code: str, result: CellResult, recording: Calls) -> None:
        """Record ``code`` if it succeeded, to be replayed after a restart."""
        if self.enabled and result.error is None and result.final is None:
            with self._lock:
                self._records.append(Record(code, digest(result.output), list(recording)))

    # Restart -----------------------------------------------------------------------------------

    async def restart(self) -> str:
        """A new worker, brought back to the old state if it can be; returns what the model
        should be told."""
        await self._spawn()
        records, self._records = self._records, []
        if not records:
            return "The REPL worker was restarted; no earlier cell had state to restore."
        if not self.enabled:
            return (
                "The REPL worker was restarted with a fresh state: only `context` and the REPL "
                "functions are defined; recompute any variables you need."
            )
        failed = await self._replay_all(records)
        if failed is None:
            self._records = records
            return (
                f"The REPL worker was restarted and its state restored by replaying the "
                f"{len(records)} earlier successful cell(s), with sub-model answers from the "
                "record."
            )
        index, why = failed
        kept = records[:index]
        await self._spawn()
        if kept and await self._replay_all(kept) is not None:
            kept = []
            await self._spawn()
        self._records = kept
        return _partial_note(records[index].code, why, len(kept))

    async def _replay_all(self, records: Sequence[Record]) -> tuple[int, str] | None:
        for index, record in enumerate(records):
            book = self.book = ReplayBook(record.calls)
            try:
                result = await self._run(record.code)
            except WorkerDied as died:
                return index, f"it stopped the worker: {died.reason}"
            finally:
                self.book = None
            if book.diverged:
                return index, book.diverged
            if result.error is not None or result.final is not None:
                return index, "it raised an error this time"
            if digest(result.output) != record.digest:
                return index, "it printed something different this time"
        return None


def _partial_note(code: str, why: str, kept: int) -> str:
    restored = (
        f"variables from the first {kept} cell(s) were restored, but "
        if kept
        else "nothing was restored: "
    )
    first_line = code.strip().splitlines()[0] if code.strip() else ""
    snippet = first_line if len(first_line) <= 60 else first_line[:57] + "..."
    return (
        f"The REPL worker was restarted, but replaying the earlier cell starting "
        f"`{snippet}` was impossible ({why}); {restored}variables set by that cell and later "
        "ones are gone. Recompute what you need."
    )
