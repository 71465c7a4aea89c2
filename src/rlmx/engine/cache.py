"""The sub-call cache the engine consults: answers of greedy sub-model requests by request.

A request is the model's spec, its messages and its options; a greedy one (no temperature, or
temperature 0) decodes to the same reply every time, so its answer can be kept and given
again without calling the model. A sampled request has no key and is never cached.

The engine keeps a :class:`MemoryCache` per recursion tree (a small model re-runs the same
map or query within one run) and, when given one, a persistent :class:`SubCallCache` shared
by runs and processes (``rlmx.trajectory.cache.SqliteCache``, in the run store). A cached
answer is the model's own :class:`~rlmx.types.Completion`: its text, its ``top_logprobs``
(which ``llm_map`` reads) and the usage of the call that produced it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

from rlmx.providers.base import CallOptions, LLMClient
from rlmx.types import Completion, Message, Usage

# Part of every key: a change to what a key covers starts a fresh cache instead of reading
# answers stored under another meaning.
KEY_VERSION = "rlmx-subcall-1"


@runtime_checkable
class SubCallCache(Protocol):
    """Answers by request key. ``model`` is the spec of the client the request was for.

    Implementations must be safe to call from several threads, and must not raise for a
    storage failure: a cache that cannot answer is a miss, one that cannot store forgets.
    """

    def get(self, model: str, key: str) -> Completion | None:
        """The answer stored for ``key``, or None."""
        ...

    def put(self, model: str, key: str, completion: Completion) -> None:
        """Keep ``completion`` as the answer of ``key``."""
        ...


def request_key(model: str, messages: Sequence[Message], options: CallOptions) -> str | None:
    """The key of a greedy request to ``model``; None for a sampled one, whose reply may
    differ from call to call."""
    if options.get("temperature"):
        return None
    blob = json.dumps(
        [KEY_VERSION, model, [m.to_dict() for m in messages], dict(options)],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


class MemoryCache:
    """A :class:`SubCallCache` in a dict: the memo of one recursion tree, or a test double."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], Completion] = {}
        self._lock = threading.Lock()

    def get(self, model: str, key: str) -> Completion | None:
        with self._lock:
            return self._answers.get((model, key))

    def put(self, model: str, key: str, completion: Completion) -> None:
        with self._lock:
            self._answers.setdefault((model, key), completion)

    def __len__(self) -> int:
        with self._lock:
            return len(self._answers)


class OnlyFor:
    """``cache`` for the requests to the models in ``models`` only; others always miss and
    are never stored (the default: the embedded models, whose greedy replies are exact)."""

    def __init__(self, cache: SubCallCache, models: Collection[str]) -> None:
        self.cache = cache
        self.models = frozenset(models)

    def get(self, model: str, key: str) -> Completion | None:
        return self.cache.get(model, key) if model in self.models else None

    def put(self, model: str, key: str, completion: Completion) -> None:
        if model in self.models:
            self.cache.put(model, key, completion)


# What a call answered from the cache costs: one hit, no tokens.
CACHE_HIT = Usage(cache_hits=1)


async def complete_cached(
    client: LLMClient,
    messages: Sequence[Message],
    options: CallOptions,
    cache: SubCallCache | None,
) -> tuple[Completion, bool]:
    """``client``'s answer to a request, from ``cache`` when a greedy request was asked before
    (as a hit: no tokens, no cost), else from the model (and then kept). Returns the answer
    and whether it came from the cache."""
    key = None if cache is None else request_key(client.spec, messages, options)
    if cache is None or key is None:
        return await client.complete(messages, **options), False
    cached = await asyncio.to_thread(cache.get, client.spec, key)
    if cached is not None:
        return replace(cached, usage=CACHE_HIT, latency_s=0.0, cost_usd=0.0), True
    completion = await client.complete(messages, **options)
    await asyncio.to_thread(cache.put, client.spec, key, completion)
    return completion, False
