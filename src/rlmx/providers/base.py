"""The model-client seam: one async method, plus what the engine needs to know about a model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, Unpack, runtime_checkable

from rlmx.types import Completion, Message


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """Facts about a model that shape how the engine talks to it.

    ``small`` selects the short system prompt with worked examples, which small local
    models need; ``context_window`` is in tokens, None when unknown.
    """

    context_window: int | None = None
    small: bool = False


class CallOptions(TypedDict, total=False):
    """What a caller may ask of one model call; every client takes the same set.

    ``max_tokens``, ``temperature`` and ``stop`` are honoured by every client. The others
    are honoured where the backend can and otherwise ignored (with a debug log), so callers
    must not rely on them: ``choices`` (the reply is exactly one of these strings, by
    constrained decoding), ``json_schema`` (the reply is JSON of this schema), ``seed``
    (reproducible sampling when ``temperature`` > 0) and ``top_logprobs`` (how many
    alternatives per token :attr:`rlmx.types.Completion.top_logprobs` reports).
    A key outside this set is a :class:`~rlmx.errors.ConfigError` in every client
    (:func:`rlmx.providers.options.honoured_options` is the one check).
    """

    max_tokens: int | None
    temperature: float | None
    stop: str | Sequence[str] | None
    choices: Sequence[str]
    json_schema: dict[str, Any]
    seed: int
    top_logprobs: int


@runtime_checkable
class LLMClient(Protocol):
    """A chat model. Implementations must be safe to call concurrently from one event loop."""

    @property
    def spec(self) -> str:
        """The ``provider:model`` string that names this client, for records and errors."""
        ...

    @property
    def profile(self) -> ModelProfile: ...

    async def complete(
        self, messages: Sequence[Message], **options: Unpack[CallOptions]
    ) -> Completion:
        """Answer a conversation, with the options described in :class:`CallOptions`."""
        ...

    async def aclose(self) -> None:
        """Release connections or model memory; calling it twice is harmless."""
        ...
