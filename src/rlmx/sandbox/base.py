"""The sandbox seam: start with a context and host functions, execute cells, close."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from rlmx.context import ContextInput
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
