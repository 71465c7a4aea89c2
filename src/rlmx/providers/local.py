"""In-process llama.cpp (through ``xllamacpp``) for ``local:NAME`` and ``local:PATH.gguf``.

:func:`local_client` builds the client; :mod:`rlmx.providers.local_runtime` holds the
models loaded in this process (one per model file, shared by every client that names it)
and admits concurrent calls to their slots; :mod:`rlmx.providers.local_wire` builds the
requests and reads the streamed replies. A call runs on a thread of its model's own pool;
cancelling it stops the generation at its next token, so its slot is freed for the next.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Unpack

from rlmx.config import Settings
from rlmx.errors import ConfigError, ProviderError
from rlmx.local.gguf import gguf_context_length
from rlmx.local.models import find_model, resolve_path
from rlmx.providers.base import CallOptions, ModelProfile
from rlmx.providers.local_runtime import (
    DEFAULT_SLOTS,
    LoadedModel,
    admission_tokens,
    load_model,
    unload_all,
    xllamacpp_module,
)
from rlmx.providers.local_wire import StreamedReply, build_request
from rlmx.providers.options import honoured_options
from rlmx.types import Completion, Message, Usage

__all__ = [
    "CTX_ENV",
    "DEFAULT_SLOTS",
    "MAX_SLOTS",
    "SLOTS_ENV",
    "LoadedModel",
    "LocalClient",
    "load_model",
    "local_client",
    "unload_all",
]

logger = logging.getLogger(__name__)

CTX_ENV = "RLMX_LOCAL_CTX"
SLOTS_ENV = "RLMX_LOCAL_SLOTS"
MAX_SLOTS = 64


def _positive_setting(settings: Settings, name: str, what: str) -> int | None:
    raw = settings.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{name} must be a positive number of {what}, got {raw!r}")
    return value


def _context_override(settings: Settings) -> int | None:
    return _positive_setting(settings, CTX_ENV, "tokens")


def _slots_setting(settings: Settings) -> int:
    slots = _positive_setting(settings, SLOTS_ENV, "slots")
    if slots is None:
        return DEFAULT_SLOTS
    if slots > MAX_SLOTS:
        raise ConfigError(f"{SLOTS_ENV} must be at most {MAX_SLOTS}, got {slots}")
    return slots


def local_client(model: str, *, settings: Settings) -> LocalClient:
    """Build the client for ``local:<model>``: an embedded model's name or a ``.gguf`` path.

    Embedded models are assembled (or verified) here, once; the model itself loads on the
    first call, so building a client stays cheap.
    """
    xllamacpp_module()
    path = resolve_path(model, settings.home)
    embedded = find_model(model)
    trained = embedded.context_window if embedded else gguf_context_length(path)
    n_ctx = _context_override(settings) or trained
    if trained and n_ctx and n_ctx > trained:
        logger.warning("%s=%d exceeds the model's trained context of %d", CTX_ENV, n_ctx, trained)
    return LocalClient(model, path, n_ctx, slots=_slots_setting(settings))


class LocalClient:
    """An :class:`~rlmx.providers.base.LLMClient` over a model loaded in this process.

    Besides ``max_tokens``, ``temperature`` and ``stop`` it honours ``choices`` (a sequence
    of strings: the reply is exactly one of them, by a grammar that constrains decoding,
    unless ``max_tokens`` or a stop string cuts it short), ``seed`` (llama.cpp's sampling
    seed, for reproducible sampling when ``temperature`` > 0) and ``json_schema`` (a JSON
    schema the reply must follow; not together with ``choices``) and ``top_logprobs`` (how
    many alternatives of the first token to report in :attr:`Completion.top_logprobs`).
    """

    def __init__(self, name: str, path: Path, n_ctx: int | None, slots: int = 1) -> None:
        self._name = name
        self._path = path
        self._n_ctx = n_ctx
        self._slots = slots
        self._profile = ModelProfile(context_window=n_ctx, small=True)

    @property
    def spec(self) -> str:
        return f"local:{self._name}"

    @property
    def profile(self) -> ModelProfile:
        return self._profile

    @property
    def path(self) -> Path:
        return self._path

    @property
    def slots(self) -> int:
        """How many calls to this model run at once (when it is loaded by this client)."""
        return self._slots

    def load(self) -> LoadedModel:
        """Load the model now (it otherwise loads on the first call); blocks."""
        return load_model(self._path, self._n_ctx or 0, self._slots)

    def _error(self, message: str, status: int | None = None) -> ProviderError:
        return ProviderError(message, provider="local", model=self._name, status=status)

    async def complete(
        self, messages: Sequence[Message], **options: Unpack[CallOptions]
    ) -> Completion:
        if not messages:
            raise ConfigError(f"{self.spec}: complete() needs at least one message")
        if messages[-1].role == "assistant":
            # Sent as a finished turn (prefill_assistant is off), never continued.
            logger.debug("%s: the conversation ends with an assistant message", self.spec)
        # llama.cpp honours every option
        request = build_request(self.spec, messages, honoured_options(self.spec, options))
        tokens = admission_tokens(messages, request["max_tokens"])
        started = time.perf_counter()
        model = await asyncio.to_thread(self.load)
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        try:
            pending = loop.run_in_executor(
                model.executor, self._generate, model, request, tokens, cancel
            )
        except RuntimeError as exc:  # its executor was shut down
            raise self._error("the model was unloaded") from exc
        try:
            reply = await pending
        except asyncio.CancelledError:
            cancel.set()  # stops the generation at its next token or prompt batch
            task = asyncio.current_task()
            if task is not None and not task.cancelling():
                # Not our caller's doing: unload_all() dropped the call from the queue.
                raise self._error("the model was unloaded") from None
            raise
        return self._completion(reply, time.perf_counter() - started)

    def _generate(
        self, model: LoadedModel, request: dict[str, Any], tokens: int, cancel: threading.Event
    ) -> StreamedReply:
        """Run one request on a thread of the model's pool; blocks."""
        reply = StreamedReply()

        def on_chunk(chunk: Any) -> bool:
            # xllamacpp swallows exceptions raised here, so none may escape.
            try:
                reply.add(chunk)
            except Exception as exc:
                reply.error = f"unreadable reply chunk ({exc!r})"
            return cancel.is_set() or reply.error is not None

        held = model.budget.acquire(tokens, cancel)
        if held is None:  # cancelled while it waited for room
            return reply
        try:
            server = model.server
            if server is None:
                raise self._error("the model was unloaded")
            if cancel.is_set():
                return reply
            try:
                server.handle_chat_completions(request, on_chunk)
            except Exception as exc:  # bad requests raise (ValueError) instead of replying
                raise self._error(str(exc)) from exc
        finally:
            model.budget.release(held)
        return reply

    def _completion(self, reply: StreamedReply, latency_s: float) -> Completion:
        if reply.error is not None:
            raise self._error(reply.error, reply.status)
        usage = reply.usage
        timings = reply.timings
        if not usage:
            raise self._error("llama.cpp returned no usage (the reply was cut short)")
        details = usage.get("prompt_tokens_details") or {}
        cached = details.get("cached_tokens", timings.get("cache_n", 0))
        if timings:
            logger.debug(
                "%s: %d prompt tokens (%d cached) at %.1f tok/s, %d generated at %.1f tok/s",
                self.spec,
                usage.get("prompt_tokens", 0),
                cached,
                timings.get("prompt_per_second", 0.0),
                usage.get("completion_tokens", 0),
                timings.get("predicted_per_second", 0.0),
            )
        return Completion(
            text="".join(reply.parts),
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                cached_tokens=int(cached or 0),
                calls=1,
            ),
            model=self.spec,
            latency_s=latency_s,
            cost_usd=0.0,
            finish_reason=reply.finish_reason,
            top_logprobs=tuple(reply.top_logprobs),
        )

    async def aclose(self) -> None:
        """Nothing to release: the model is shared for the life of the process."""
