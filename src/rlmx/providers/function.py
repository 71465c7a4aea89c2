"""A test model that answers with a function of yours: ``FunctionModel(fn)``.

``fn(messages, options)`` receives the conversation and the call's options (a
:class:`~rlmx.providers.base.CallOptions` dict, as given) and returns the reply's text or a
whole :class:`~rlmx.types.Completion`; it may be a plain or an ``async`` function. A text
reply gets usage estimated as the scripted model's (four characters a token), cost 0 and
finish reason ``stop``; a :class:`Completion` is returned as given, its ``model`` set to the
client's spec. Every call is recorded in :attr:`FunctionModel.calls` and
:attr:`FunctionModel.options`. Where :class:`~rlmx.providers.scripted.ScriptedModel`
replays fixed replies, this one computes them, as pydantic-ai's ``FunctionModel`` does.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Unpack

from rlmx.providers.base import CallOptions, ModelProfile
from rlmx.providers.options import honoured_options
from rlmx.providers.scripted import estimated_usage
from rlmx.types import Completion, Message

Reply = str | Completion
ReplyFunction = Callable[[Sequence[Message], CallOptions], Reply | Awaitable[Reply]]


class FunctionModel:
    """An :class:`~rlmx.providers.base.LLMClient` whose replies come from ``fn``.

    ``name`` (by default the function's ``__name__``) makes the spec ``function:<name>``.
    """

    def __init__(
        self,
        fn: ReplyFunction,
        *,
        name: str | None = None,
        profile: ModelProfile | None = None,
    ) -> None:
        self._fn = fn
        self._name = name or getattr(fn, "__name__", None) or "function"
        self._profile = profile or ModelProfile(context_window=1_000_000)
        self.calls: list[list[Message]] = []
        self.options: list[CallOptions] = []  # the options of each call, in order

    @property
    def spec(self) -> str:
        return f"function:{self._name}"

    @property
    def profile(self) -> ModelProfile:
        return self._profile

    async def complete(
        self, messages: Sequence[Message], **options: Unpack[CallOptions]
    ) -> Completion:
        honoured_options(self.spec, options)  # the function sees every option
        conversation = list(messages)
        self.calls.append(conversation)
        self.options.append(options)
        started = time.perf_counter()
        reply = self._fn(list(conversation), options.copy())
        if inspect.isawaitable(reply):
            reply = await reply
        latency = time.perf_counter() - started
        if isinstance(reply, Completion):
            return replace(reply, model=self.spec)
        if not isinstance(reply, str):
            raise TypeError(
                f"{self.spec}: the function returned {type(reply).__name__}; "
                "it must return a str or a Completion"
            )
        return Completion(
            text=reply,
            usage=estimated_usage(conversation, reply),
            model=self.spec,
            latency_s=latency,
            cost_usd=0.0,
            finish_reason="stop",
        )

    async def aclose(self) -> None:
        return None
