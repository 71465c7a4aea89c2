"""Chat models behind an OpenAI-compatible endpoint: OpenAI, DeepSeek, OpenRouter, ollama, vLLM,
llama.cpp.

Retries with backoff (429, 5xx, timeouts, dropped connections) are left to the ``openai`` SDK,
which already honours ``Retry-After``; this module only translates its results into rlmx
records and its exceptions into :mod:`rlmx.errors`, so that callers never see an SDK type.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from rlmx.errors import AuthenticationError, ProviderError
from rlmx.providers.base import CallOptions, ModelProfile
from rlmx.providers.grammar import choice_grammar
from rlmx.providers.options import honoured_options
from rlmx.providers.presets import Preset
from rlmx.providers.pricing import FREE_PROVIDERS, cost_of
from rlmx.providers.sdk import (
    REQUEST_TIMEOUT_S,
    PerLoopClient,
    is_retryable,
    log_completion,
    one_line,
    retries_phrase,
    server_message,
    timeout_message,
    within,
)
from rlmx.types import Completion, Message, Usage

logger = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
# Self-hosted servers ignore the key, but the SDK refuses to start without one.
PLACEHOLDER_KEY = "not-needed"
# What every OpenAI-compatible server honours; ``choices`` is honoured where the preset has a
# grammar for it (llama.cpp's server), ``json_schema`` nowhere yet.
HONOURED_OPTIONS = frozenset({"max_tokens", "temperature", "stop", "seed", "top_logprobs"})
# The most alternatives per token OpenAI's API reports.
MAX_TOP_LOGPROBS = 20


def to_param(message: Message) -> ChatCompletionMessageParam:
    """The SDK's typed form of a message (a role-tagged TypedDict per role)."""
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


class OpenAICompatClient:
    """An :class:`~rlmx.providers.base.LLMClient` speaking the Chat Completions API.

    One SDK client (one connection pool) serves every call from one event loop, so concurrent
    calls share connections. Connections belong to the loop that opened them, so a call from
    a new loop (a second ``RLM.run``) gets a fresh SDK client.
    """

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None,
        preset: Preset,
        max_retries: int = 3,
        timeout_s: float = REQUEST_TIMEOUT_S,
        profile: ModelProfile | None = None,
    ) -> None:
        """``preset`` describes the endpoint (:mod:`rlmx.providers.presets`); ``base_url``
        None means the preset's own."""
        self._preset = preset
        self._model = model
        self._max_retries = max_retries
        self._profile = profile or ModelProfile()
        # An explicit URL keeps the SDK from reading OPENAI_BASE_URL behind rlmx's Settings.
        self._base_url = (base_url or self._preset.base_url or OPENAI_BASE_URL).rstrip("/")
        self._api_key = api_key or PLACEHOLDER_KEY
        self._timeout_s = timeout_s
        self._sdk = PerLoopClient(
            lambda: openai.AsyncOpenAI(
                api_key=self._api_key,
                base_url=self._base_url,
                max_retries=self._max_retries,
                timeout=self._timeout_s,
            )
        )

    @property
    def spec(self) -> str:
        return f"{self._preset.name}:{self._model}"

    @property
    def preset(self) -> Preset:
        return self._preset

    @property
    def profile(self) -> ModelProfile:
        return self._profile

    @property
    def base_url(self) -> str:
        return self._base_url

    def _request_options(self, options: Mapping[str, object]) -> dict[str, Any]:
        honoured = HONOURED_OPTIONS | ({"choices"} if self._preset.choice_grammar else set())
        given: dict[str, Any] = honoured_options(self.spec, options, honoured=honoured)
        choices = given.pop("choices", None)
        if choices:
            # llama.cpp's server constrains decoding with a grammar; callers of other
            # servers put the allowed answers in the prompt and read replies leniently.
            given["extra_body"] = {"grammar": choice_grammar(choices)}
        # OpenAI's reasoning models reject max_tokens; every current OpenAI chat model takes
        # max_completion_tokens, while other servers mostly know only max_tokens.
        if self._preset.max_completion_tokens and "max_tokens" in given:
            given["max_completion_tokens"] = given.pop("max_tokens")
        top = given.pop("top_logprobs", None)
        if top:
            given["logprobs"] = True
            given["top_logprobs"] = min(int(top), MAX_TOP_LOGPROBS)
        if isinstance(given.get("stop"), tuple):
            given["stop"] = list(given["stop"])
        return given

    async def complete(
        self, messages: Sequence[Message], **options: Unpack[CallOptions]
    ) -> Completion:
        """Answer a conversation. A reply without choices or content is a :class:`ProviderError`:
        as an empty answer it would use up the run's iterations unnoticed. One call takes at
        most ``timeout_s`` seconds, retries included."""
        request = self._request_options(options)
        payload = [to_param(m) for m in messages]
        started = time.perf_counter()
        try:
            response = await within(
                self._timeout_s,
                self._sdk.get().chat.completions.create(
                    model=self._model, messages=payload, **request
                ),
                lambda: self._error(timeout_message(self._base_url, self._timeout_s)),
            )
        except openai.APIError as exc:
            raise self._translate(exc) from exc
        latency = time.perf_counter() - started
        if not isinstance(response, ChatCompletion):
            # The SDK hands back a non-JSON body as is: typically a web page at a wrong URL.
            raise self._error(
                f"{self._base_url} did not answer with a chat completion "
                f"(got {one_line(str(response), 80)!r}); check the base URL (often .../v1)"
            )
        completion = self._to_completion(response, latency)
        log_completion(logger, self.spec, len(messages), completion)
        return completion

    def _to_completion(self, response: ChatCompletion, latency: float) -> Completion:
        # Compatible servers are loose: tolerate missing usage, but not a missing answer.
        choices = getattr(response, "choices", None) or []
        choice = choices[0] if choices else None
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None)
        finish_reason = getattr(choice, "finish_reason", None)
        if text is None:
            raise self._error(_empty_reply(choice is None, finish_reason, message))
        raw = getattr(response, "usage", None)
        if raw is None:
            usage = Usage(calls=1)
            cost = 0.0 if self._preset.name in FREE_PROVIDERS else None
        else:
            details = getattr(raw, "prompt_tokens_details", None)
            usage = Usage(
                prompt_tokens=getattr(raw, "prompt_tokens", None) or 0,
                completion_tokens=getattr(raw, "completion_tokens", None) or 0,
                cached_tokens=getattr(details, "cached_tokens", None) or 0,
                calls=1,
            )
            cost = cost_of(self._preset.name, self._model, usage)
        return Completion(
            text=text if isinstance(text, str) else str(text),
            usage=usage,
            model=self.spec,
            latency_s=latency,
            cost_usd=cost,
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
            top_logprobs=_first_top_logprobs(getattr(choice, "logprobs", None)),
        )

    def _translate(self, exc: openai.APIError) -> ProviderError:
        """One-line rlmx errors that say what to fix, in place of the SDK's exceptions."""
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            key_env = self._preset.key_env
            hint = (
                f"check the environment variable {key_env}"
                if key_env
                else f"{self._preset.name} needs no key; check the server at {self._base_url}"
            )
            detail = server_message(exc.body, exc.message)
            return AuthenticationError(
                f"the API key was refused ({detail}); {hint}",
                provider=self._preset.name,
                model=self._model,
                status=exc.status_code,
            )
        if isinstance(exc, openai.NotFoundError):
            detail = server_message(exc.body, exc.message)
            message = (
                f"model {self._model!r} not found at {self._base_url} ({detail}); "
                "check the model name and the base URL"
            )
            return self._error(message, exc.status_code)
        if isinstance(exc, openai.APIStatusError):
            message = server_message(exc.body, exc.message)
            if is_retryable(exc.status_code):
                message += f" (after {retries_phrase(self._max_retries)})"
            return self._error(message, exc.status_code)
        if isinstance(exc, openai.APIConnectionError):
            kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "failed"
            return self._error(
                f"could not reach {self._base_url}: connection {kind} after "
                f"{retries_phrase(self._max_retries)}; check that the server is running "
                "and the base URL is right"
            )
        return self._error(one_line(str(exc) or type(exc).__name__))

    def _error(self, message: str, status: int | None = None) -> ProviderError:
        return ProviderError(message, provider=self._preset.name, model=self._model, status=status)

    async def aclose(self) -> None:
        await self._sdk.aclose()


def _empty_reply(no_choice: bool, finish_reason: object, message: object) -> str:
    """What an answer without text says about why, and what to do."""
    if no_choice:
        return "the reply has no choices (an empty answer); check the model and the server"
    refusal = getattr(message, "refusal", None)
    if isinstance(refusal, str) and refusal:
        return f"the model refused: {one_line(refusal, 200)}"
    if finish_reason == "length":
        return "the reply has no text: the model used up max_tokens before answering"
    return f"the reply has no text (finish reason {finish_reason!r}); check the model"


def _first_top_logprobs(logprobs: object) -> tuple[tuple[str, float], ...]:
    """The alternatives of the reply's first token, when the server reported them."""
    content = getattr(logprobs, "content", None) or []
    first = content[0] if content else None
    return tuple(
        (str(entry.token), float(entry.logprob))
        for entry in getattr(first, "top_logprobs", None) or ()
        if getattr(entry, "token", None) is not None
    )
