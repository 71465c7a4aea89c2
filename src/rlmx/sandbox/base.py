"""The sandbox seam: start with a context and host functions, execute cells, close."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from rlmx.context import ContextInput
from rlmx.context.helpers import Hits
from rlmx.types import CellResult


class HostFunctions(Protocol):
    """What model code may ask of the host. Called from the thread or process running a cell."""

    def llm_query(self, prompt: str, model: str | None = None) -> str: ...

    def llm_query_batched(self, prompts: Sequence[str], model: str | None = None) -> list[str]: ...

    def llm_map(
        self,
        instruction: str,
        items: Sequence[str],
        labels: Sequence[str] | None = None,
        model: str | None = None,
        examples: Sequence[tuple[str, str]] | None = None,
    ) -> list[str | None]: ...

    def rlm_query(self, prompt: str, context: ContextInput | None = None) -> str: ...


@runtime_checkable
class Scans(Protocol):
    """The corpus helpers' scans, made by the run's executor instead of the REPL (the shards of
    a cluster), over documents described as in :mod:`rlmx.context.spec`. A host that has them
    says so with a ``scans`` attribute (see :func:`scans_of`); without it, or over a context
    not in files, the REPL scans itself. Blocking: called from the thread running a cell, or
    one answering a worker's request."""

    def count(self, docs: Sequence[dict[str, Any]], pattern: str, flags: int) -> int: ...

    def grep(
        self,
        docs: Sequence[dict[str, Any]],
        pattern: str,
        *,
        around: int,
        limit: int,
        flags: int,
        kind: str,
    ) -> Hits: ...

    def search_files(
        self, docs: Sequence[dict[str, Any]], pattern: str, *, limit: int, flags: int
    ) -> Hits: ...


def scans_of(host: object) -> Scans | None:
    """The host's scans, if it makes them (its ``scans`` attribute)."""
    scans = getattr(host, "scans", None)
    return scans if isinstance(scans, Scans) else None


@runtime_checkable
class Sandbox(Protocol):
    """A persistent REPL session.

    ``execute`` returns the model's own exceptions inside :class:`CellResult.error`; it raises
    :class:`~rlmx.errors.SandboxError` only when the session itself is broken.
    """

    async def start(self, context: ContextInput, host: HostFunctions) -> None: ...

    async def execute(self, code: str) -> CellResult: ...

    async def get_variable(self, name: str) -> str | None:
        """A variable's value as text, or None when it does not exist (for ``FINAL_VAR``)."""
        ...

    async def close(self) -> None: ...


SandboxFactory = Callable[[], Sandbox]
