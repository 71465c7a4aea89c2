"""What runs in Ray's worker processes: sub-model calls by tasks or by model actors, and the
corpus helpers (``count``, ``grep``, ``search_files``) over one shard of a file list.

A client never travels: a task or an actor builds it from its spec (``resolve_model``, with the
settings of the node it runs on: its API keys, its ``RLMX_HOME``). A task's clients are kept per
worker process, on one event loop of their own, so a pool's connections and limits, or a
``scripted:`` file, are opened once per process. Imports ``ray``: only
:mod:`rlmx.executors.ray` imports this module, once Ray is known to be installed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import ray

from rlmx.config import Settings
from rlmx.executors.corpus import count_docs, grep_docs, search_docs
from rlmx.providers.base import CallOptions, LLMClient
from rlmx.providers.registry import resolve_model
from rlmx.types import Completion, Message

# A worker process lost mid-call (a node down, a process killed) is retried this often.
RETRIES = 3

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_clients: dict[tuple[str, str | None], LLMClient] = {}


def _worker_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop for its clients, running in a thread of its own."""
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="rlmx-clients", daemon=True).start()
            _loop = loop
        return _loop


def _client(spec: str, base_url: str | None) -> LLMClient:
    with _lock:
        client = _clients.get((spec, base_url))
        if client is None:
            client = resolve_model(spec, settings=Settings(), base_url=base_url)
            _clients[(spec, base_url)] = client
        return client


@ray.remote(max_retries=RETRIES)
def complete_task(
    spec: str, base_url: str | None, messages: Sequence[Message], options: CallOptions
) -> Completion:
    """One sub-model call made by a task."""
    client = _client(spec, base_url)
    future = asyncio.run_coroutine_threadsafe(client.complete(messages, **options), _worker_loop())
    return future.result()


@ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES)
class ModelActor:
    """One loaded model (an embedded ``local:`` model: its weights in this process's memory),
    answering the calls sent to it. Restarted when its process dies; the calls it had in hand
    are sent again to the restarted actor."""

    def __init__(self, spec: str, base_url: str | None) -> None:
        self._client = resolve_model(spec, settings=Settings(), base_url=base_url)

    async def complete(self, messages: Sequence[Message], options: CallOptions) -> Completion:
        return await self._client.complete(messages, **options)

    def pid(self) -> int:
        import os

        return os.getpid()


@ray.remote(max_retries=RETRIES)
def count_task(docs: Sequence[dict[str, Any]], pattern: str, flags: int) -> int:
    """``count`` over one shard."""
    return count_docs(docs, pattern, flags)


@ray.remote(max_retries=RETRIES)
def search_task(
    docs: Sequence[dict[str, Any]], pattern: str, limit: int, flags: int
) -> tuple[list[dict[str, Any]], bool]:
    """``search_files`` over one shard."""
    return search_docs(docs, pattern, limit, flags)


@ray.remote(max_retries=RETRIES)
def grep_task(
    docs: Sequence[dict[str, Any]], pattern: str, around: int, limit: int, flags: int, kind: str
) -> tuple[list[dict[str, Any]], bool]:
    """``grep`` over one shard."""
    return grep_docs(docs, pattern, around, limit, flags, kind)
