"""The executor seam: where the engine's independent pieces of work run.

The engine fans work out in two places: the sub-model calls of ``llm_query``,
``llm_query_batched`` and ``llm_map`` (each an independent model call), and the corpus-wide
helpers over a directory or a set of files (``count``, ``grep`` and ``search_files`` over
shards of the file list). An :class:`Executor` runs one such piece and gives back its result;
everything around it stays with the engine, on the driver: the budget is reserved before a call
is dispatched, and the answer is recorded and counted when it comes back, once, whatever ran it
and however often it was retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from rlmx.context.helpers import Hits
from rlmx.providers.base import CallOptions, LLMClient
from rlmx.types import Completion, Message

# A document of a directory or files context, as the context describes it to a worker
# (:mod:`rlmx.context.spec`): its name, header, path, size and how to read it.
DocSpec = dict[str, Any]


@runtime_checkable
class Executor(Protocol):
    """Runs the engine's independent work. ``name`` is what traces and reports show."""

    @property
    def name(self) -> str: ...

    async def complete(
        self, client: LLMClient, messages: Sequence[Message], options: CallOptions
    ) -> Completion:
        """``client``'s answer to one sub-model request."""
        ...

    async def count(self, docs: Sequence[DocSpec], pattern: str, flags: int = 0) -> int:
        """How many times the regex ``pattern`` matches over the documents ``docs``."""
        ...

    async def search_files(
        self, docs: Sequence[DocSpec], pattern: str, *, limit: int = 200, flags: int = 0
    ) -> Hits:
        """Each line of ``docs`` that matches ``pattern``, in order, at most ``limit``."""
        ...

    async def grep(
        self,
        docs: Sequence[DocSpec],
        pattern: str,
        *,
        around: int = 200,
        limit: int = 100,
        flags: int = 0,
        kind: str = "directory",
    ) -> Hits:
        """Each match of ``pattern`` in ``docs`` with ``around`` chars either side, in order,
        at most ``limit``; ``kind`` is the context's (``directory`` or ``documents``)."""
        ...

    async def aclose(self) -> None:
        """Let go of what the executor holds (actors, a Ray it started)."""
        ...
