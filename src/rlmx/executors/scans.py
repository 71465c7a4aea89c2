"""An executor's corpus helpers as the REPL asks for them (:class:`rlmx.sandbox.base.Scans`):
blocking calls, each running the executor's coroutine on an event loop of its own in the
calling thread (a cell's, or one answering a worker's request; never the run's loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rlmx.context.helpers import Hits
from rlmx.executors.base import DocSpec, Executor
from rlmx.executors.local import LocalExecutor


class ExecutorScans:
    """``count``, ``grep`` and ``search_files`` made by ``executor``."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def count(self, docs: Sequence[DocSpec], pattern: str, flags: int) -> int:
        return asyncio.run(self.executor.count(docs, pattern, flags))

    def grep(
        self,
        docs: Sequence[DocSpec],
        pattern: str,
        *,
        around: int,
        limit: int,
        flags: int,
        kind: str,
    ) -> Hits:
        scan = self.executor.grep(docs, pattern, around=around, limit=limit, flags=flags, kind=kind)
        return asyncio.run(scan)

    def search_files(
        self, docs: Sequence[DocSpec], pattern: str, *, limit: int, flags: int
    ) -> Hits:
        return asyncio.run(self.executor.search_files(docs, pattern, limit=limit, flags=flags))


def scans_for(executor: Executor) -> ExecutorScans | None:
    """The scans model code's helpers hand to ``executor``: None for the local executor, with
    which the REPL scans the files itself (no round trip to the host)."""
    return None if isinstance(executor, LocalExecutor) else ExecutorScans(executor)
