"""Sessions: several questions over one context, with one REPL that keeps its variables.

``RLM.session(context)`` opens one. Each question is a run of its own (recorded as any run),
whose root model is told the session's earlier questions and answers and finds the variables
their code defined still in the REPL. A named session is durable: after each question its
history and the cells that built its variables (with the sub-call answers they got) are saved
in the run store; opened again by name in another process, over the same context, its REPL is
rebuilt by replaying those cells with the recorded answers: no model is asked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from rlmx.context import Context, ContextInput
from rlmx.engine.answers import shape_of
from rlmx.engine.engine import Engine
from rlmx.errors import ConfigError
from rlmx.sessions.relay import CellRecord
from rlmx.sessions.sandbox import SessionSandbox
from rlmx.trajectory.sessions import SessionTable
from rlmx.types import CellResult, RunResult

T = TypeVar("T")

# What the root model is told of earlier questions: the last few, each cut short.
HISTORY_SHOWN = 5
QUESTION_CHARS = 200
ANSWER_CHARS = 300


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """When a session lets go of resources. ``worker_idle_s``: its worker is stopped after so
    long without a question (the next question restores it by replay). ``expire_idle_s`` and
    ``max_stored_bytes``: stored sessions unused for so long, and the least recently used ones
    beyond that total size, are deleted whenever a named session is saved."""

    worker_idle_s: float = 900.0
    expire_idle_s: float = 7 * 24 * 3600.0
    max_stored_bytes: int = 256 << 20


@dataclass(frozen=True, slots=True)
class Exchange:
    """One question of a session and how it ended."""

    question: str
    answer: str | None
    status: str
    run_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "status": self.status,
            "run_id": self.run_id,
        }


class Session:
    """Questions over one context with one REPL. Use it from async code (``aask``, ``aexecute``,
    ``aclose``, ``async with``) or from sync code (``ask``, ``execute``, ``close``, ``with``),
    which runs it on a private event loop; not both on one session."""

    def __init__(
        self,
        *,
        engine: Engine,
        context: Context,
        sandbox: SessionSandbox,
        name: str | None = None,
        table: SessionTable | None = None,
        history: list[Exchange] | None = None,
        policy: SessionPolicy | None = None,
    ) -> None:
        self.name = name
        self.context = context
        self.history: list[Exchange] = list(history or [])
        self._engine = engine
        self._sandbox = sandbox
        self._table = table
        self._policy = policy or SessionPolicy()
        self._lock = asyncio.Lock()
        self._idle: asyncio.TimerHandle | None = None
        self._portal: _Portal | None = None
        self._closed = False

    @property
    def records(self) -> list[CellRecord]:
        """The cells that built the REPL's variables, in order."""
        return self._sandbox.records

    @property
    def worker_running(self) -> bool:
        return self._sandbox.running

    # Async ------------------------------------------------------------------------------------

    async def aask(self, query: str, *, run_id: str | None = None, output: Any = None) -> RunResult:
        """Answer ``query`` in this session: a run over its context with its REPL; ``output``
        asks for a typed answer as in :meth:`rlmx.RLM.run`."""
        shape = None if output is None else shape_of(output)
        async with self._lock:
            self._check_open()
            self._cancel_idle()
            await self._sandbox.ensure(self.context)  # before the preamble: it tells of a replay
            result = await self._engine.run(
                query, self.context, run_id=run_id, preamble=self._preamble(), shape=shape
            )
            self.history.append(Exchange(query, result.answer, result.status, result.run_id))
            await asyncio.to_thread(self._save)
            self._arm_idle()
            return result

    async def aexecute(self, code: str) -> CellResult:
        """Run ``code`` in the session's REPL directly (no model); it is kept like a model's
        cell. Sub-calls from it are refused: they belong to a question."""
        async with self._lock:
            self._check_open()
            self._cancel_idle()
            await self._sandbox.start(self.context, _NoQuestion())
            try:
                result = await self._sandbox.execute(code)
            finally:
                await self._sandbox.close()
            await asyncio.to_thread(self._save)
            self._arm_idle()
            return result

    async def aclose(self) -> None:
        """Stop the worker. A named session stays in the store and can be opened again."""
        if self._closed:
            return
        self._closed = True
        self._cancel_idle()
        await self._sandbox.shutdown()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # Sync -------------------------------------------------------------------------------------

    def ask(self, query: str, *, run_id: str | None = None, output: Any = None) -> RunResult:
        return self._sync(self.aask(query, run_id=run_id, output=output))

    def execute(self, code: str) -> CellResult:
        return self._sync(self.aexecute(code))

    def close(self) -> None:
        if self._portal is None:
            asyncio.run(self.aclose())
            return
        portal, self._portal = self._portal, None
        try:
            portal.run(self.aclose())
        finally:
            portal.stop()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._portal is None:
            self._portal = _Portal()
        return self._portal.run(coro)

    # Inside -----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("this session is closed; open it again with RLM.session(...)")

    def _preamble(self) -> str | None:
        parts: list[str] = []
        if self.history:
            shown = self.history[-HISTORY_SHOWN:]
            first = len(self.history) - len(shown) + 1
            lines = [
                f"{first + i}. Q: {_cut(e.question, QUESTION_CHARS)}\n"
                f"   A: {_cut(e.answer or f'(no answer: {e.status})', ANSWER_CHARS)}"
                for i, e in enumerate(shown)
            ]
            parts.append(
                "This session answered earlier questions about the same context; the variables "
                "their code defined are still in the REPL (SHOW_VARS() lists them).\n"
                + "\n".join(lines)
            )
        note, self._sandbox.note = self._sandbox.note, None
        if note:
            parts.append(note)
        return "\n\n".join(parts) or None

    def _save(self) -> None:
        if self._table is None or self.name is None:
            return
        state = {
            "history": [e.to_dict() for e in self.history],
            "records": [r.to_dict() for r in self._sandbox.records],
        }
        self._table.save(self.name, self.context.describe().id, state, questions=len(self.history))
        self._table.expire(
            idle_s=self._policy.expire_idle_s,
            max_bytes=self._policy.max_stored_bytes,
            keep=self.name,
        )

    def _arm_idle(self) -> None:
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(
            self._policy.worker_idle_s, lambda: loop.create_task(self._reclaim())
        )

    def _cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    async def _reclaim(self) -> None:
        async with self._lock:
            self._idle = None
            await self._sandbox.shutdown()


def restore_history(state: dict[str, Any]) -> tuple[list[Exchange], list[CellRecord]]:
    """A stored session's history and cell records."""
    history = [
        Exchange(
            question=str(e["question"]),
            answer=None if e.get("answer") is None else str(e["answer"]),
            status=str(e.get("status", "completed")),
            run_id=str(e.get("run_id", "")),
        )
        for e in state.get("history", [])
    ]
    records = [CellRecord.from_dict(r) for r in state.get("records", [])]
    return history, records


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _NoQuestion:
    """The host functions of a cell run outside any question: sub-calls are refused."""

    def llm_query(self, prompt: str, model: str | None = None) -> str:
        raise _refused()

    def llm_query_batched(self, prompts: Sequence[str], model: str | None = None) -> list[str]:
        raise _refused()

    def llm_map(
        self,
        instruction: str,
        items: Sequence[str],
        labels: Sequence[str] | None = None,
        model: str | None = None,
        examples: Sequence[tuple[str, str]] | None = None,
    ) -> list[str | None]:
        raise _refused()

    def rlm_query(self, prompt: str, context: ContextInput | None = None) -> str:
        raise _refused()


def _refused() -> ConfigError:
    return ConfigError("sub-calls are made by questions: use Session.ask, not execute")


class _Portal:
    """An event loop on a thread of its own, for the sync methods: a session's worker and
    timers belong to one loop for its whole life."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        with contextlib.suppress(RuntimeError):
            self._loop.close()
