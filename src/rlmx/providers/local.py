"""In-process llama.cpp (through ``xllamacpp``) for ``local:NAME`` and ``local:PATH.gguf``.

One model instance per process per model file, shared by every client that names it: a
model costs hundreds of MB to GBs and seconds to load, and an RLM run asks for the same
model many times (the root model and its sub-calls). Calls to one model run one at a time
(one llama.cpp slot) on a worker thread of its own: a second slot would split the same
few cores, and the KV cache, between two requests; and a queue of waiting calls must not
fill asyncio's default thread pool, which other code needs. In-order calls also keep
llama.cpp's KV-cache reuse effective: a growing conversation pays only for its new tokens.

Requests are streamed internally, although callers get one reply: the stream callback is
the only way to stop a generation that nobody waits for any more (a cancelled task, a run
that timed out), so the next call does not queue behind it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from rlmx.config import Settings
from rlmx.errors import ConfigError, ProviderError
from rlmx.local.models import INSTALL_HINT, find_model, resolve_path
from rlmx.providers.base import ModelProfile
from rlmx.types import Completion, Message, Usage

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 1024
CTX_ENV = "RLMX_LOCAL_CTX"
# Prompt tokens evaluated per step; a cancelled request notices it between steps. It
# equals llama.cpp's physical batch (n_ubatch): against the default n_batch of 2048, prompt
# speed differed by less than the noise of a shared 2-core machine.
_BATCH = 512


@dataclass(eq=False)
class LoadedModel:
    """A model file loaded into this process; shared by every client of that file."""

    path: Path
    n_ctx: int
    load_s: float
    server: Any
    executor: ThreadPoolExecutor
    lock: threading.Lock = field(default_factory=threading.Lock)


_loaded: dict[Path, LoadedModel] = {}
_loaded_lock = threading.Lock()


def _xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise ConfigError(f"local models need the xllamacpp package: {INSTALL_HINT}") from None
    return xllamacpp


def _build_server(path: Path, n_ctx: int) -> Any:
    xlc = _xllamacpp()
    params = xlc.CommonParams()
    params.model.path = str(path)
    params.n_ctx = n_ctx  # 0 lets llama.cpp use the model's trained context
    params.n_parallel = 1
    params.n_batch = _BATCH
    params.n_ubatch = _BATCH
    threads = os.cpu_count() or -1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.cache_prompt = True
    # The OpenAI API answers after a trailing assistant message; llama.cpp would otherwise
    # continue it as a prefill and echo it back.
    params.prefill_assistant = False
    # llama.cpp logs every request to stderr at its default verbosity (3); 0 silences it.
    # Its errors reach us as error replies, which we raise.
    params.verbosity = 3 if logger.isEnabledFor(logging.DEBUG) else 0
    # xllamacpp always starts llama.cpp's HTTP server on a loopback port, although we only
    # call it in-process: lock it with a key nobody knows, and turn off what it need not show.
    params.api_keys = [secrets.token_urlsafe(32)]
    params.ui = False
    params.endpoint_slots = False
    try:
        return xlc.Server(params)
    except Exception as exc:
        raise ProviderError(
            f"could not load {path} ({exc}); is it a valid GGUF model file?",
            provider="local",
            model=str(path),
        ) from exc


def load_model(path: Path, n_ctx: int) -> LoadedModel:
    """The process-wide instance of the model at ``path``, loading it on first use."""
    key = path.resolve()
    with _loaded_lock:
        model = _loaded.get(key)
        if model is not None:
            if n_ctx and model.n_ctx and n_ctx != model.n_ctx:
                logger.warning(
                    "%s is already loaded with a %d-token context; not reloading it for %d",
                    key,
                    model.n_ctx,
                    n_ctx,
                )
            return model
        started = time.perf_counter()
        server = _build_server(key, n_ctx)
        load_s = time.perf_counter() - started
        logger.info("loaded %s in %.1f s (context %d)", key.name, load_s, n_ctx)
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rlmx-local-{key.stem}")
        model = LoadedModel(key, n_ctx, load_s, server, worker)
        _loaded[key] = model
        return model


def unload_all() -> None:
    """Free every loaded model (for tests); waits for calls in progress to finish."""
    with _loaded_lock:
        models = list(_loaded.values())
        _loaded.clear()
    for model in models:
        model.executor.shutdown(wait=True, cancel_futures=True)
        with model.lock:
            model.server = None  # the last reference: llama.cpp's server stops and frees


def _context_override(settings: Settings) -> int | None:
    raw = settings.get(CTX_ENV)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{CTX_ENV} must be a positive number of tokens, got {raw!r}")
    return value


def local_client(model: str, *, settings: Settings) -> LocalClient:
    """Build the client for ``local:<model>``: an embedded model's name or a ``.gguf`` path.

    Embedded models are assembled (or verified) here, once; the model itself loads on the
    first call, so building a client stays cheap.
    """
    _xllamacpp()
    path = resolve_path(model, settings.home)
    embedded = find_model(model)
    trained = embedded.context_window if embedded else gguf_context_length(path)
    n_ctx = _context_override(settings) or trained
    if trained and n_ctx and n_ctx > trained:
        logger.warning("%s=%d exceeds the model's trained context of %d", CTX_ENV, n_ctx, trained)
    return LocalClient(model, path, n_ctx)


class LocalClient:
    """An :class:`~rlmx.providers.base.LLMClient` over a model loaded in this process."""

    def __init__(self, name: str, path: Path, n_ctx: int | None) -> None:
        self._name = name
        self._path = path
        self._n_ctx = n_ctx
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

    def load(self) -> LoadedModel:
        """Load the model now (it otherwise loads on the first call); blocks."""
        return load_model(self._path, self._n_ctx or 0)

    def _error(self, message: str, status: int | None = None) -> ProviderError:
        return ProviderError(message, provider="local", model=self._name, status=status)

    def _request(self, messages: Sequence[Message], options: Mapping[str, Any]) -> dict[str, Any]:
        max_tokens = options.get("max_tokens")
        max_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else int(max_tokens)
        temperature = options.get("temperature")
        temperature = 0.0 if temperature is None else float(temperature)
        if max_tokens <= 0 or temperature < 0:
            raise ConfigError(
                f"{self.spec}: max_tokens must be positive and temperature 0 or more "
                f"(got {max_tokens}, {temperature})"
            )
        request: dict[str, Any] = {
            "messages": [m.to_dict() for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "cache_prompt": True,
            "stream": True,
            "stream_options": {"include_usage": True},
            # progress chunks during a long prompt give the stream callback a chance to stop
            "return_progress": True,
        }
        stop = options.get("stop")
        if stop:
            request["stop"] = [stop] if isinstance(stop, str) else list(stop)
        ignored = set(options) - {"max_tokens", "temperature", "stop"}
        if ignored:
            logger.debug("%s ignores options %s", self.spec, sorted(ignored))
        return request

    async def complete(self, messages: Sequence[Message], **options: Any) -> Completion:
        if not messages:
            raise ConfigError(f"{self.spec}: complete() needs at least one message")
        if messages[-1].role == "assistant":
            # Sent as a finished turn (prefill_assistant is off), never continued.
            logger.debug("%s: the conversation ends with an assistant message", self.spec)
        request = self._request(messages, options)
        started = time.perf_counter()
        model = await asyncio.to_thread(self.load)
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        try:
            reply = await loop.run_in_executor(
                model.executor, self._generate, model, request, cancel
            )
        except asyncio.CancelledError:
            cancel.set()  # stops the generation at its next token or prompt batch
            raise
        return self._completion(reply, time.perf_counter() - started)

    def _generate(
        self, model: LoadedModel, request: dict[str, Any], cancel: threading.Event
    ) -> _Reply:
        """Run one request on the model's worker thread; blocks."""
        reply = _Reply()

        def on_chunk(chunk: Any) -> bool:
            # xllamacpp swallows exceptions raised here, so none may escape.
            try:
                reply.add(chunk)
            except Exception as exc:
                reply.error = f"unreadable reply chunk ({exc!r})"
            return cancel.is_set() or reply.error is not None

        with model.lock:
            if cancel.is_set():
                return reply
            if model.server is None:
                raise self._error("the model was unloaded")
            try:
                model.server.handle_chat_completions(request, on_chunk)
            except Exception as exc:  # bad requests raise (ValueError) instead of replying
                raise self._error(str(exc)) from exc
        return reply

    def _completion(self, reply: _Reply, latency_s: float) -> Completion:
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
        )

    async def aclose(self) -> None:
        """Nothing to release: the model is shared for the life of the process."""


@dataclass
class _Reply:
    """The pieces of one streamed reply, gathered on the worker thread."""

    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    status: int | None = None

    def add(self, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            raise TypeError(f"expected a dict, got {type(chunk).__name__}")
        error = chunk.get("error")
        if error is not None:
            if isinstance(error, dict):
                self.error = str(error.get("message") or error)
                code = error.get("code")
                self.status = code if isinstance(code, int) else None
            else:
                self.error = str(error)
            return
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                self.parts.append(content)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
            self.timings = chunk.get("timings") or {}


# GGUF metadata value types (see ggml's gguf.h); sizes of the fixed-width ones.
_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_INT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_context_length(path: Path) -> int | None:
    """The trained context length (``<arch>.context_length``) from a GGUF file's header.

    Reads only the metadata, stopping as soon as the key is found; None if it is absent
    or the file is not GGUF (version 2 or later).
    """
    try:
        with path.open("rb") as f:
            return _read_context_length(f)
    except (OSError, OverflowError, struct.error, ValueError):  # UnicodeDecodeError too
        return None


def _read_context_length(f: BinaryIO) -> int | None:
    def read(fmt: str) -> int:
        data = f.read(struct.calcsize(fmt))
        return int(struct.unpack(fmt, data)[0])

    def read_str() -> str:
        size = read("<Q")
        if size > 1 << 20:  # a corrupt length must not make us allocate gigabytes
            raise ValueError(f"implausible GGUF string length {size}")
        return f.read(size).decode("utf-8")

    def skip(kind: int) -> None:
        if kind in _GGUF_FIXED:
            f.seek(_GGUF_FIXED[kind], os.SEEK_CUR)
        elif kind == _GGUF_STRING:
            f.seek(read("<Q"), os.SEEK_CUR)
        elif kind == _GGUF_ARRAY:
            item, count = read("<I"), read("<Q")
            if item in _GGUF_FIXED:
                f.seek(_GGUF_FIXED[item] * count, os.SEEK_CUR)
            else:
                for _ in range(count):
                    skip(item)
        else:
            raise ValueError(f"unknown GGUF value type {kind}")

    if f.read(4) != b"GGUF" or read("<I") < 2:
        return None
    read("<Q")  # tensor count
    arch: str | None = None
    for _ in range(read("<Q")):
        key, kind = read_str(), read("<I")
        if key == "general.architecture" and kind == _GGUF_STRING:
            arch = read_str()
        elif arch is not None and key == f"{arch}.context_length" and kind in _GGUF_INT:
            return read(_GGUF_INT[kind])
        else:
            skip(kind)
    return None
