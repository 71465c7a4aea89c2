"""In-process llama.cpp (through ``xllamacpp``) for ``local:NAME`` and ``local:PATH.gguf``.

One model instance per process per model file, shared by every client that names it: a
model costs hundreds of MB to GBs and seconds to load, and an RLM run asks for the same
model many times (the root model and its sub-calls).

Concurrent calls. ``Server.handle_chat_completions`` releases the GIL while llama.cpp works
(the stream callback takes it back for each chunk), and llama.cpp's server decodes the
requests of all its busy slots together, one batch per step, on a loop thread of its own.
So a model is loaded with ``RLMX_LOCAL_SLOTS`` slots (default :data:`DEFAULT_SLOTS`) and
runs that many calls at once, on a thread pool of the model's own: a queue of waiting calls
must not fill asyncio's default pool, which other code needs. What that buys on a 2-core
CPU was measured (``benchmarks/local_batching.py``, 0.5B model, concurrent against
sequential calls): a generation step for 4 or 8 sequences costs little more than for one
(1.2x the generated tokens per second with 4 slots, 1.8x with 8; 2 slots lose, 0.85x, as
llama.cpp's CPU kernels work on 4 columns at a time), but prompt evaluation is bound by
arithmetic from about 30 tokens a batch on, and gains nothing. Classification calls of ~300
tokens behind a shared, cached prefix (``llm_map``'s shape) gain 1.15x with 4 slots and
1.2x with 8; yet each slot evaluates a shared prefix once on its own (llama.cpp does not
copy it between slots), so a first burst of such calls loses time: 64 of them take 1.3x as
long with 4 slots, 1.8x with 8. Hence 4 slots by default; 8 suit long generations, 1 short
bursts behind a new prefix.

The slots share one KV cache (``kv_unified``) as large as the model's window: every
conversation may still use the whole window, and memory stays that of one slot (a cache of
n_ctx / slots cells per slot would cut conversations short; one of n_ctx per slot would
multiply the memory). But llama.cpp fails every running request when the shared cache
overflows, so a call is admitted only while an upper bound of the tokens it can hold (its
UTF-8 bytes, the chat template's overhead and ``max_tokens``) fits beside those of the calls
already running, first come first served; a call that may need the whole window runs alone.

KV-cache reuse: llama.cpp hands a request to the idle slot whose cache shares the longest
prefix with it, and parks the caches of idle slots in RAM, so a growing conversation still
pays only for its new tokens when other calls ran in between (unless the shared cache is
nearly full: a parked conversation that no longer fits is evaluated again). Batches of
different shapes round differently: a greedy reply computed beside other calls now and then
differs from the one computed alone (0-1 of 64 classifications), and a ``seed`` reproduces a
sampled reply only from the same cache state (a prompt read from the cache differs in the
last bits from one evaluated afresh).

Requests are streamed internally, although callers get one reply: the stream callback is
the only way to stop a generation that nobody waits for any more (a cancelled task, a run
that timed out), so its slot is freed for the next call.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Unpack

from rlmx.config import Settings
from rlmx.errors import ConfigError, ProviderError
from rlmx.local.models import INSTALL_HINT, find_model, resolve_path
from rlmx.providers.base import CallOptions, ModelProfile
from rlmx.providers.grammar import choice_grammar
from rlmx.providers.options import honoured_options
from rlmx.types import Completion, Message, Usage

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 1024
CTX_ENV = "RLMX_LOCAL_CTX"
SLOTS_ENV = "RLMX_LOCAL_SLOTS"
# Calls one model runs at once; see the module docstring and benchmarks/local_batching.py.
DEFAULT_SLOTS = 4
MAX_SLOTS = 64
# Prompt tokens evaluated per step; a cancelled request notices it between steps. It
# equals llama.cpp's physical batch (n_ubatch): against the default n_batch of 2048, prompt
# speed differed by less than the noise of a shared 2-core machine.
_BATCH = 512
# Upper bounds of the chat template's tokens, for admission: per message (role markers) and
# per request (a default system prompt, the assistant header).
_TEMPLATE_TOKENS_PER_MESSAGE = 16
_TEMPLATE_TOKENS = 64
# The largest llama.cpp sampling seed; 0xFFFFFFFF asks it for a random one.
_MAX_SEED = 0xFFFFFFFE
# llama.cpp reports up to this many alternatives per token; more cost time for nothing.
MAX_TOP_LOGPROBS = 20


class _TokenBudget:
    """Admits calls, first come first served, while their tokens fit in the shared KV cache.

    ``capacity`` None admits every call (the window is unknown, and there is one slot).
    """

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self._free = capacity or 0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    def acquire(self, tokens: int, cancel: threading.Event) -> int | None:
        """Wait until ``tokens`` fit (at most the whole cache); the tokens held, or None if
        ``cancel`` was set first."""
        if self.capacity is None:
            return 0
        tokens = max(1, min(tokens, self.capacity))
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            try:
                while self._queue[0] is not ticket or self._free < tokens:
                    if cancel.is_set():
                        return None
                    self._changed.wait(0.1)
                self._free -= tokens
                return tokens
            finally:
                self._queue.remove(ticket)
                self._changed.notify_all()

    def release(self, tokens: int) -> None:
        if self.capacity is None:
            return
        with self._changed:
            self._free += tokens
            self._changed.notify_all()


@dataclass(eq=False)
class LoadedModel:
    """A model file loaded into this process; shared by every client of that file.

    ``n_ctx`` is both the longest conversation and the size of the KV cache the ``slots``
    share (0: the model's own window, unknown here).
    """

    path: Path
    n_ctx: int
    slots: int
    load_s: float
    server: Any
    executor: ThreadPoolExecutor
    budget: _TokenBudget


_loaded: dict[Path, LoadedModel] = {}
_loaded_lock = threading.Lock()


def _xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise ConfigError(f"local models need the xllamacpp package: {INSTALL_HINT}") from None
    return xllamacpp


def _build_server(path: Path, n_ctx: int, slots: int) -> Any:
    xlc = _xllamacpp()
    params = xlc.CommonParams()
    params.model.path = str(path)
    params.n_ctx = n_ctx  # 0 lets llama.cpp use the model's trained context
    params.n_parallel = slots
    # One KV cache of n_ctx cells for all slots, each of which may fill it: without it,
    # llama.cpp gives every slot n_ctx / slots, too small for a long conversation.
    params.kv_unified = True
    params.cont_batching = True
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


def load_model(path: Path, n_ctx: int, slots: int = 1) -> LoadedModel:
    """The process-wide instance of the model at ``path``, loading it on first use.

    ``slots`` calls run at once. With ``n_ctx`` 0 (the window is unknown here) the model
    gets one slot, since calls cannot then be admitted by their size.
    """
    key = path.resolve()
    with _loaded_lock:
        model = _loaded.get(key)
        if model is not None:
            if (n_ctx and model.n_ctx and n_ctx != model.n_ctx) or slots != model.slots:
                logger.warning(
                    "%s is already loaded with a %d-token context and %d slot(s); "
                    "not reloading it for %d and %d",
                    key,
                    model.n_ctx,
                    model.slots,
                    n_ctx,
                    slots,
                )
            return model
        if not n_ctx and slots > 1:
            logger.info("%s: the context window is unknown; loading it with one slot", key.name)
            slots = 1
        started = time.perf_counter()
        server = _build_server(key, n_ctx, slots)
        load_s = time.perf_counter() - started
        logger.info("loaded %s in %.1f s (context %d, %d slot(s))", key.name, load_s, n_ctx, slots)
        worker = ThreadPoolExecutor(max_workers=slots, thread_name_prefix=f"rlmx-local-{key.stem}")
        budget = _TokenBudget(n_ctx if slots > 1 else None)
        model = LoadedModel(key, n_ctx, slots, load_s, server, worker, budget)
        _loaded[key] = model
        return model


def unload_all() -> None:
    """Free every loaded model (for tests and benchmarks); waits for calls in progress."""
    with _loaded_lock:
        models = list(_loaded.values())
        _loaded.clear()
    for model in models:
        model.executor.shutdown(wait=True, cancel_futures=True)
        model.server = None  # the last reference: llama.cpp's server stops and frees


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
    _xllamacpp()
    path = resolve_path(model, settings.home)
    embedded = find_model(model)
    trained = embedded.context_window if embedded else gguf_context_length(path)
    n_ctx = _context_override(settings) or trained
    if trained and n_ctx and n_ctx > trained:
        logger.warning("%s=%d exceeds the model's trained context of %d", CTX_ENV, n_ctx, trained)
    return LocalClient(model, path, n_ctx, slots=_slots_setting(settings))


def _choices_grammar(spec: str, choices: object) -> str:
    if isinstance(choices, str | bytes) or not isinstance(choices, Sequence):
        raise ConfigError(f"{spec}: choices must be a list of strings, not {choices!r}")
    if not all(isinstance(choice, str) for choice in choices):
        raise ConfigError(f"{spec}: every choice must be a string, got {list(choices)!r}")
    try:
        return choice_grammar(choices)
    except ValueError as exc:
        raise ConfigError(f"{spec}: {exc}") from None


def _admission_tokens(messages: Sequence[Message], max_tokens: int) -> int:
    """An upper bound of the KV cells a request can fill: a byte-level BPE token covers at
    least one byte, and the chat template adds a few tokens per message."""
    text = sum(len(m.content.encode("utf-8", "surrogatepass")) for m in messages)
    template = _TEMPLATE_TOKENS + _TEMPLATE_TOKENS_PER_MESSAGE * len(messages)
    return text + template + max_tokens


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

    def _request(self, messages: Sequence[Message], given: Mapping[str, object]) -> dict[str, Any]:
        options = honoured_options(self.spec, given)  # llama.cpp honours every option
        choices = options.get("choices")
        grammar = None if choices is None else _choices_grammar(self.spec, choices)
        max_tokens = options.get("max_tokens")
        if max_tokens is None:
            # A choice's tokens are at most its bytes, plus the end-of-generation token.
            longest = max((len(c.encode()) for c in choices), default=0) if choices else 0
            max_tokens = longest + 1 if grammar else DEFAULT_MAX_TOKENS
        max_tokens = int(max_tokens)
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
        if grammar is not None:
            request["grammar"] = grammar
        schema = options.get("json_schema")
        if schema is not None:
            if grammar is not None:
                raise ConfigError(f"{self.spec}: choices and json_schema exclude each other")
            if not isinstance(schema, Mapping):
                raise ConfigError(f"{self.spec}: json_schema must be a dict (a JSON schema)")
            request["json_schema"] = dict(schema)
        seed = options.get("seed")
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
                raise ConfigError(
                    f"{self.spec}: seed must be an integer from 0 to {_MAX_SEED}, got {seed!r}"
                )
            request["seed"] = seed
        top = options.get("top_logprobs")
        if top:
            if isinstance(top, bool) or not isinstance(top, int) or top < 0:
                raise ConfigError(f"{self.spec}: top_logprobs must be a positive integer")
            # Probabilities from the logits before sampling, so before any grammar: the
            # model's own preference among the allowed answers.
            request["logprobs"] = True
            request["top_logprobs"] = min(top, MAX_TOP_LOGPROBS)
        return request

    async def complete(
        self, messages: Sequence[Message], **options: Unpack[CallOptions]
    ) -> Completion:
        if not messages:
            raise ConfigError(f"{self.spec}: complete() needs at least one message")
        if messages[-1].role == "assistant":
            # Sent as a finished turn (prefill_assistant is off), never continued.
            logger.debug("%s: the conversation ends with an assistant message", self.spec)
        request = self._request(messages, options)
        tokens = _admission_tokens(messages, request["max_tokens"])
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
    ) -> _Reply:
        """Run one request on a thread of the model's pool; blocks."""
        reply = _Reply()

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
            top_logprobs=tuple(reply.top_logprobs),
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
    top_logprobs: list[tuple[str, float]] = field(default_factory=list)

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
            if not self.top_logprobs:
                self.top_logprobs = _first_top_logprobs(choice.get("logprobs"))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
            self.timings = chunk.get("timings") or {}


def _first_top_logprobs(logprobs: Any) -> list[tuple[str, float]]:
    """The alternatives of the first token in a chunk's ``logprobs``, if any."""
    content = (logprobs or {}).get("content") if isinstance(logprobs, dict) else None
    if not content:
        return []
    return [
        (str(entry["token"]), float(entry["logprob"]))
        for entry in content[0].get("top_logprobs") or ()
    ]


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
