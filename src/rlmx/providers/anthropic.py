"""Claude models through the Messages API of the optional ``anthropic`` SDK.

The SDK is imported only when a client is built, so that rlmx works without the extra.
The Messages API differs from Chat Completions in two ways this module absorbs: system
prompts are a separate ``system`` parameter, and turns must alternate user/assistant.
Retries with backoff are left to the SDK, as for the OpenAI-compatible client.

Prompt caching is asked for with ``cache_control`` breakpoints (:func:`cache_breakpoints`): on
a long system prompt, which every call of a run repeats, and on the last turns of a
conversation that goes on (the root model's transcript), whose next request starts with this
one. Cache reads and writes are reported in :class:`~rlmx.types.Usage` and priced apart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Unpack

from rlmx.errors import AuthenticationError, ConfigError, ProviderError
from rlmx.providers.base import CallOptions, ModelProfile
from rlmx.providers.options import honoured_options
from rlmx.providers.pricing import cost_of
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

if TYPE_CHECKING:
    import anthropic as anthropic_sdk
    from anthropic.types import Message as AnthropicMessage
    from anthropic.types import MessageParam, TextBlockParam

logger = logging.getLogger(__name__)

PROVIDER = "anthropic"
KEY_ENV = "ANTHROPIC_API_KEY"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
# Every current Claude model reads at least this many tokens.
CONTEXT_WINDOW = 200_000
# The Messages API has no seed, no constrained choices or JSON schema, and reports no
# logprobs: those options are dropped (callers of ``choices`` read replies leniently).
HONOURED_OPTIONS = frozenset({"max_tokens", "temperature", "stop"})
# No Claude model caches a prefix under 1,024 tokens (some need 4,096); below about that many
# characters no breakpoint is sent, and the request stays as plain as without caching.
MIN_CACHED_CHARS = 4_000


def split_system(messages: Sequence[Message]) -> tuple[str, list[MessageParam]]:
    """The joined system prompt, and the other turns with same-role neighbours merged.

    The Messages API rejects two user (or two assistant) turns in a row, which the
    engine produces when, say, a REPL result follows a user nudge.
    """
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    merged: list[tuple[Any, str]] = []
    for message in messages:
        if message.role == "system":
            continue
        if merged and merged[-1][0] == message.role:
            merged[-1] = (message.role, f"{merged[-1][1]}\n\n{message.content}")
        else:
            merged.append((message.role, message.content))
    return system, [{"role": role, "content": content} for role, content in merged]


def cache_breakpoints(
    system: str, turns: list[MessageParam]
) -> tuple[str | list[TextBlockParam], list[MessageParam]]:
    """``system`` and ``turns`` with ``cache_control`` breakpoints where a later request
    repeats the prefix: a long system prompt, and in a conversation that has replies (the root
    model's transcript, resent with one more exchange each iteration) the last turn, which
    the next request reads back, and the user turn before it, which this request reads back.
    At most three breakpoints (the API allows four)."""
    marked: str | list[TextBlockParam] = system
    if len(system) >= MIN_CACHED_CHARS:
        marked = [_cached_block(system)]
    ongoing = any(t["role"] == "assistant" for t in turns)
    length = len(system) + sum(len(str(t["content"])) for t in turns)
    if not ongoing or length < MIN_CACHED_CHARS:
        return marked, turns
    turns = list(turns)
    users = [i for i, t in enumerate(turns) if t["role"] == "user"]
    for index in {len(turns) - 1, *users[-2:-1]}:
        block = _cached_block(str(turns[index]["content"]))
        if turns[index]["role"] == "assistant":
            turns[index] = {"role": "assistant", "content": [block]}
        else:
            turns[index] = {"role": "user", "content": [block]}
    return marked, turns


def _cached_block(text: str) -> TextBlockParam:
    return {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}


class AnthropicClient:
    """An :class:`~rlmx.providers.base.LLMClient` for ``anthropic:<model>`` specs."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str | None = None,
        max_retries: int = 3,
        timeout_s: float = REQUEST_TIMEOUT_S,
        max_tokens: int = 4096,
    ) -> None:
        try:
            import anthropic
        except ImportError:
            raise ConfigError(
                f"model anthropic:{model} needs the anthropic SDK; "
                "install the extra: pip install 'rlmx[anthropic]'"
            ) from None
        self._model = model
        self._max_retries = max_retries
        self._max_tokens = max_tokens
        # An explicit URL keeps the SDK from reading ANTHROPIC_BASE_URL behind rlmx's Settings.
        self._base_url = (base_url or ANTHROPIC_BASE_URL).rstrip("/")
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._sdk: PerLoopClient[anthropic_sdk.AsyncAnthropic] = PerLoopClient(
            lambda: anthropic.AsyncAnthropic(
                api_key=self._api_key,
                base_url=self._base_url,
                max_retries=self._max_retries,
                timeout=self._timeout_s,
            )
        )
        self._profile = ModelProfile(context_window=CONTEXT_WINDOW)

    @property
    def spec(self) -> str:
        return f"{PROVIDER}:{self._model}"

    @property
    def profile(self) -> ModelProfile:
        return self._profile

    @property
    def base_url(self) -> str:
        return self._base_url

    def _request_options(self, given: Mapping[str, object]) -> dict[str, Any]:
        options = honoured_options(self.spec, given, honoured=HONOURED_OPTIONS)
        # max_tokens is mandatory in the Messages API, hence the client-wide default.
        request: dict[str, Any] = {"max_tokens": options.get("max_tokens") or self._max_tokens}
        if options.get("temperature") is not None:
            # anthropic>=1.0 dropped sampling arguments from create(); the API still takes
            # them (on models that allow sampling), sent as raw body fields.
            request["extra_body"] = {"temperature": options["temperature"]}
        stop = options.get("stop")
        if stop:
            request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        return request

    async def complete(
        self, messages: Sequence[Message], **options: Unpack[CallOptions]
    ) -> Completion:
        """Answer a conversation; a reply without text blocks comes back as ``""``. One call
        takes at most ``timeout_s`` seconds, retries included."""
        import anthropic

        request = self._request_options(options)
        system, turns = cache_breakpoints(*split_system(messages))
        if system:
            request["system"] = system
        started = time.perf_counter()
        try:
            response = await within(
                self._timeout_s,
                self._sdk.get().messages.create(model=self._model, messages=turns, **request),
                lambda: self._error(timeout_message(self._base_url, self._timeout_s)),
            )
        except anthropic.APIError as exc:
            raise self._translate(exc) from exc
        latency = time.perf_counter() - started
        if not isinstance(response, anthropic.types.Message):
            # The SDK hands back a non-JSON body as is: typically a web page at a wrong URL.
            raise self._error(
                f"{self._base_url} did not answer with a Messages API reply "
                f"(got {one_line(str(response), 80)!r}); check the base URL"
            )
        completion = self._to_completion(response, latency)
        log_completion(logger, self.spec, len(messages), completion)
        return completion

    def _to_completion(self, response: AnthropicMessage, latency: float) -> Completion:
        blocks = getattr(response, "content", None) or []
        texts = [
            block.text
            for block in blocks
            if getattr(block, "type", None) == "text" and isinstance(block.text, str)
        ]
        stop_reason = getattr(response, "stop_reason", None)
        if not texts:
            # As an empty answer it would use up the run's iterations unnoticed.
            raise self._error(_no_text(stop_reason))
        text = "".join(texts)
        raw = getattr(response, "usage", None)
        # Anthropic reports cache reads and cache writes apart from input_tokens; rlmx counts
        # all three as prompt tokens, and keeps the reads (cached) and writes apart because
        # each has its own price.
        cache_read = getattr(raw, "cache_read_input_tokens", None) or 0
        cache_write = getattr(raw, "cache_creation_input_tokens", None) or 0
        usage = Usage(
            prompt_tokens=(getattr(raw, "input_tokens", None) or 0) + cache_read + cache_write,
            completion_tokens=getattr(raw, "output_tokens", None) or 0,
            cached_tokens=cache_read,
            cache_write_tokens=cache_write,
            calls=1,
        )
        return Completion(
            text=text,
            usage=usage,
            model=self.spec,
            latency_s=latency,
            cost_usd=None if raw is None else cost_of(PROVIDER, self._model, usage),
            finish_reason=stop_reason if isinstance(stop_reason, str) else None,
        )

    def _translate(self, exc: anthropic_sdk.APIError) -> ProviderError:
        """One-line rlmx errors that say what to fix, in place of the SDK's exceptions."""
        import anthropic

        if isinstance(exc, anthropic.APIStatusError):
            detail = exc.api_message or server_message(exc.body, exc.message)
            detail = one_line(detail)
            status = exc.status_code
            if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
                return AuthenticationError(
                    f"the API key was refused ({detail}); check the environment variable {KEY_ENV}",
                    provider=PROVIDER,
                    model=self._model,
                    status=status,
                )
            if isinstance(exc, anthropic.NotFoundError):
                detail = (
                    f"model {self._model!r} not found at {self._base_url} ({detail}); "
                    "check the model name and the base URL"
                )
            elif is_retryable(status):
                detail += f" (after {retries_phrase(self._max_retries)})"
            return self._error(detail, status)
        if isinstance(exc, anthropic.APIConnectionError):
            kind = "timed out" if isinstance(exc, anthropic.APITimeoutError) else "failed"
            return self._error(
                f"could not reach {self._base_url}: connection {kind} after "
                f"{retries_phrase(self._max_retries)}; check your network and the base URL"
            )
        return self._error(one_line(str(exc) or type(exc).__name__))

    def _error(self, message: str, status: int | None = None) -> ProviderError:
        return ProviderError(message, provider=PROVIDER, model=self._model, status=status)

    async def aclose(self) -> None:
        await self._sdk.aclose()


def _no_text(stop_reason: object) -> str:
    """What a reply without a text block says about why, and what to do."""
    if stop_reason == "max_tokens":
        return "the reply has no text: the model used up max_tokens before answering"
    if stop_reason == "refusal":
        return "the model refused to answer"
    return f"the reply has no text (stop reason {stop_reason!r}); check the model"
