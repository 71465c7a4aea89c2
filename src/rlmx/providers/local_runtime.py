"""llama.cpp models loaded in this process (through ``xllamacpp``), and who may use them.

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
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlmx.errors import ConfigError, ProviderError
from rlmx.local.models import INSTALL_HINT
from rlmx.types import Message

logger = logging.getLogger(__name__)

# Calls one model runs at once by default; see the module docstring and
# benchmarks/local_batching.py.
DEFAULT_SLOTS = 4
# Prompt tokens evaluated per step; a cancelled request notices it between steps. It
# equals llama.cpp's physical batch (n_ubatch): against the default n_batch of 2048, prompt
# speed differed by less than the noise of a shared 2-core machine.
_BATCH = 512
# Upper bounds of the chat template's tokens, for admission: per message (role markers) and
# per request (a default system prompt, the assistant header).
_TEMPLATE_TOKENS_PER_MESSAGE = 16
_TEMPLATE_TOKENS = 64


class TokenBudget:
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
    budget: TokenBudget


_loaded: dict[Path, LoadedModel] = {}
_loaded_lock = threading.Lock()


def xllamacpp_module() -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise ConfigError(f"local models need the xllamacpp package: {INSTALL_HINT}") from None
    return xllamacpp


def _build_server(path: Path, n_ctx: int, slots: int) -> Any:
    xlc = xllamacpp_module()
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
        budget = TokenBudget(n_ctx if slots > 1 else None)
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


def admission_tokens(messages: Sequence[Message], max_tokens: int) -> int:
    """An upper bound of the KV cells a request can fill: a byte-level BPE token covers at
    least one byte, and the chat template adds a few tokens per message."""
    text = sum(len(m.content.encode("utf-8", "surrogatepass")) for m in messages)
    template = _TEMPLATE_TOKENS + _TEMPLATE_TOKENS_PER_MESSAGE * len(messages)
    return text + template + max_tokens
