"""The executor seam: where the engine's independent pieces of work run.

The engine fans work out in two places: the sub-model calls of ``llm_query``,
``llm_query_batched`` and ``llm_map`` (each an independent model call), and the corpus-wide
helpers over a directory or a set of files (``count``, ``grep`` and ``search_files`` over
shards of the file list). An :class:`Executor` runs one such piece and gives back its result;
everything around it stays with the engine, on the driver: the budget is reserved before a call
is dispatched, and the answer is recorded and counted when it comes back, once, whatever ran it
and however often it was retried.

A nested run (``rlm_query``) is handed over whole (:meth:`Executor.run_nested`): the executor
may run it elsewhere, as a :class:`NestedJob` that rebuilds its models, sandbox and context
where it lands, while the engine's side (:class:`NestedRun`) keeps the tree one run on the
driver: it lends the child a share of the budget, records its events as they come, and
settles what the attempt that returned used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from rlmx.context.helpers import Hits
from rlmx.providers.base import CallOptions, LLMClient
from rlmx.types import Completion, Message, RunResult

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

    async def run_nested(self, nested: NestedRun) -> RunResult:
        """Run one nested run (``rlm_query``): in this process, or as ``nested.job()`` where
        the executor sends it, its events and its use of the budget reported back."""
        ...


class NestedLink(Protocol):
    """A remote nested run's line back to the driver, in the process that runs it."""

    def client(self, spec: str) -> LLMClient:
        """The model ``spec`` names, built here (and kept for this process)."""
        ...

    def send(self, message: object) -> None:
        """Pass ``message`` (an event) to the driver, in order, without waiting."""
        ...

    def ask(self, message: object) -> object:
        """Pass ``message`` to the driver and wait for its answer (None when none came)."""
        ...


class NestedJob(Protocol):
    """A nested run as it travels: it rebuilds its models, sandbox and context where it runs."""

    async def run(self, link: NestedLink, lease: object) -> object:
        """Run under ``lease`` (a share of the tree's budget); the outcome goes to
        :meth:`NestedRun.finish`."""
        ...


class NestedRun(Protocol):
    """A nested run as the engine hands it to its executor. Whatever runs it elsewhere, the
    engine's side on the driver keeps the tree one run: it lends the budget, records the events,
    and settles the child's use once, for the attempt that returned."""

    @property
    def specs(self) -> tuple[str, ...]:
        """The specs of the models the run uses (a worker builds them from these)."""
        ...

    async def here(self) -> RunResult:
        """Run it in this process, as the local executor does."""
        ...

    def job(self) -> NestedJob | None:
        """The run as it can travel; None when it cannot (its context is in this process)."""
        ...

    def lease(self) -> object:
        """Lend the job its first share of the tree's budget, for :meth:`NestedJob.run`."""
        ...

    def receive(self, attempt: str, message: object) -> object:
        """A message an attempt sent (an event) or asked (more budget: the answer)."""
        ...

    def finish(self, attempt: str, outcome: object) -> RunResult:
        """The attempt that returned, and its outcome: the run's result."""
        ...

    def fail(self, error: str) -> RunResult:
        """No attempt returned (lost for good, or cancelled): the run's result, as an error."""
        ...
