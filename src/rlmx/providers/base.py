"""The model-client seam: one async method, plus what the engine needs to know about a model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from rlmx.types import Completion, Message


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """Facts about a model that shape how the engine talks to it.

    ``small`` selects the short system prompt with worked examples, which small local
    models need; ``context_window`` is in tokens, None when unknown.
    """

    context_window: int | None = None
    small: bool = False


@runtime_checkable
class LLMClient(Protocol):
    """A chat model. Implementations must be safe to call concurrently from one event loop."""

    @property
    def spec(self) -> str:
        """The ``provider:model`` string that names this client, for records and errors."""
        ...

    @property
    def profile(self) -> ModelProfile: ...

    async def complete(self, messages: Sequence[Message], **options: Any) -> Completion:
        """Answer a conversation.

        Options: ``max_tokens``, ``temperature``, ``stop``; and two that a client honours
        where its backend can, and otherwise ignores (with a debug log), so callers must not
        rely on them: ``choices`` (a sequence of strings; the reply is exactly one of them,
        by constrained decoding) and ``seed`` (an int, for reproducible sampling when
        ``temperature`` > 0).
        """
        ...

    async def aclose(self) -> None:
        """Release connections or model memory; calling it twice is harmless."""
        ...
