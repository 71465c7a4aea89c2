"""A session's REPL: one worker kept across questions, and restored by replay when it is new.

The engine opens a sandbox for every run and closes it at the run's end. A session hands the
root run of each question its long-lived :class:`SessionSandbox` instead, whose ``close`` only
lets go of the question; nested runs (``rlm_query``) meanwhile get fresh sandboxes of their
own from the base factory, as in any run (:class:`SessionSandboxes`).
"""

from __future__ import annotations

from rlmx.context import ContextInput
from rlmx.sandbox.base import HostFunctions, Sandbox, SandboxFactory
from rlmx.sandbox.replay import digest
from rlmx.sessions.relay import CellRecord, RelayHost, Replay
from rlmx.types import CellResult


class SessionSandbox:
    """The session's worker. ``records`` are the cells that built its variables, in order;
    ``note`` says what a replay could not restore, once, for the next question."""

    def __init__(self, factory: SandboxFactory, records: list[CellRecord]) -> None:
        self._factory = factory
        self._relay = RelayHost()
        self._inner: Sandbox | None = None
        self.records = records
        self.leased = False
        self.note: str | None = None

    @property
    def running(self) -> bool:
        return self._inner is not None

    async def start(self, context: ContextInput, host: HostFunctions) -> None:
        """Take the question's host functions; start (and restore) the worker if there is none."""
        await self.ensure(context)
        self._relay.current = host

    async def ensure(self, context: ContextInput) -> None:
        """Start the worker and restore its variables, if it is not running."""
        if self._inner is None:
            inner = self._factory()
            await inner.start(context, self._relay)
            self._inner = inner
            await self._restore()

    async def execute(self, code: str) -> CellResult:
        inner = self._started()
        calls = self._relay.begin()
        try:
            result = await inner.execute(code)
        finally:
            self._relay.end()
        if result.error is None:
            self.records.append(CellRecord(code, digest(result.output), calls))
        return result

    async def get_variable(self, name: str) -> str | None:
        return await self._started().get_variable(name)

    async def close(self) -> None:
        """The question is over; the worker stays for the next one."""
        self._relay.current = None
        self.leased = False

    async def shutdown(self) -> None:
        """Stop the worker (it is started and restored again by the next question)."""
        inner, self._inner = self._inner, None
        if inner is not None:
            await inner.close()

    def _started(self) -> Sandbox:
        if self._inner is None:
            raise RuntimeError("the session's sandbox is used before start()")
        return self._inner

    async def _restore(self) -> None:
        """Replay the recorded cells, answering their sub-calls from the record; stop at the
        first one that does not come out the same, and keep the records before it."""
        inner = self._started()
        for index, record in enumerate(self.records):
            replay = self._relay.replay = Replay(record.calls)
            try:
                result = await inner.execute(record.code)
            finally:
                self._relay.replay = None
            why = replay.diverged
            if why is None and result.error is not None:
                why = "it raised an error this time"
            if why is None and digest(result.output) != record.digest:
                why = "it printed something different this time"
            if why is not None:
                self.note = _lost(record.code, why, index)
                del self.records[index:]
                return


def _lost(code: str, why: str, kept: int) -> str:
    first = code.strip().splitlines()[0] if code.strip() else ""
    snippet = first if len(first) <= 60 else first[:57] + "..."
    return (
        f"The session's REPL was restored from its record, but replaying the cell starting "
        f"`{snippet}` was impossible ({why}); the variables of the first {kept} cell(s) are "
        "back, those set by that cell and later ones may be gone. Recompute what you need."
    )


class SessionSandboxes:
    """The sandbox factory of a session's engine: the session's sandbox for the first run that
    asks (the question's root run), fresh ones from ``base`` while it is in use."""

    def __init__(self, shared: SessionSandbox, base: SandboxFactory) -> None:
        self._shared = shared
        self._base = base

    def __call__(self) -> Sandbox:
        if not self._shared.leased:
            self._shared.leased = True
            return self._shared
        return self._base()
