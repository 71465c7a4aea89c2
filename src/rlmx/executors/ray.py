"""The Ray executor (``rlmx[ray]``): the engine's fan-out on a Ray cluster.

- Sub-model calls run as Ray tasks that build their client from its spec (an API model, an
  endpoint pool, a ``scripted:`` file), or, for the embedded ``local:`` models, on model
  actors that each hold a loaded model (one per node by default). The engine reserves each
  call in the budget before it is sent and records it when its answer comes back, so usage,
  cost and events are those of the local executor, and a call Ray retries counts once.
- ``count``, ``grep`` and ``search_files`` over a directory or a set of files run as tasks
  over shards of the file list, reading the files where the task runs (a path every node can
  read), and merge in order: the results of one process.

A client that cannot be built from its spec (a :class:`~rlmx.providers.function.FunctionModel`,
a ``scripted:`` model made in memory) is called in this process, as the local executor does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rlmx.context.helpers import Hits
from rlmx.errors import ConfigError
from rlmx.executors.base import DocSpec, NestedRun
from rlmx.executors.corpus import merge_hits, shard
from rlmx.providers.base import CallOptions, LLMClient
from rlmx.providers.registry import FACTORIES, split_spec
from rlmx.types import Completion, Message, RunResult

log = logging.getLogger(__name__)

INSTALL_HINT = "the ray executor needs Ray: pip install 'rlmx[ray]'"
# Shards per CPU of the cluster: enough that a slow file or node does not hold the rest.
SHARDS_PER_CPU = 4
# The one thread that starts a local Ray when no main thread can: it never ends.
_STARTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rlmx-ray-start")


def require_ray() -> Any:
    """The ``ray`` module, or a :class:`~rlmx.errors.ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


class RayExecutor:
    """Runs sub-calls and corpus helpers on Ray.

    ``address`` is a cluster to join (``ray://...`` or ``host:port``); without it, ``RAY_ADDRESS``
    names one, else a local Ray is started with ``num_cpus`` CPUs (all by default), no dashboard
    and no worker logs on this process's terminal. A Ray already initialised in this process is
    used as it is. Model specs whose prefix is in ``actor_prefixes`` (``local:`` by default) are
    served by ``actors`` model actors each (one per node by default), each given ``actor_cpus``.
    ``base_url`` is the one given to the models on this side (``RLM(base_url=...)``).
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        actors: int | None = None,
        actor_cpus: float = 1.0,
        actor_prefixes: Sequence[str] = ("local:",),
        base_url: str | None = None,
    ) -> None:
        self._ray = require_ray()
        self._address = address
        self._num_cpus = num_cpus
        self._actors = actors
        self._actor_cpus = actor_cpus
        self._actor_prefixes = tuple(actor_prefixes)
        self._base_url = base_url
        self._started = False
        self._remote: Any = None
        self._pools: dict[str, list[_Slot]] = {}
        self._hub: Any = None  # where remote nested runs send their events (ray_nested)
        # Held by threads only: an executor outlives the event loops of the runs it serves.
        self._lock = threading.Lock()

    # Connection ------------------------------------------------------------------------------

    def connect(self) -> None:
        """Join or start Ray (done by the first call otherwise; it takes a few seconds)."""
        with self._lock:
            self._connect()

    def _connect(self) -> None:
        ray = self._ray
        if not ray.is_initialized():
            joining = self._address is not None or bool(os.environ.get("RAY_ADDRESS"))
            ray.init(
                address=self._address,
                num_cpus=None if joining else self._num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            self._started = not joining
        if self._remote is None:
            from rlmx.executors import ray_remote

            self._remote = ray_remote

    async def _ready(self) -> Any:
        if self._remote is None:
            if threading.current_thread() is threading.main_thread():
                # Ray sets its signal handlers from the main thread only (else it warns); the
                # loop waits for the connection once, as the first remote call would.
                self.connect()
            else:
                # The processes of a Ray started here die with the thread that started them
                # (their parent-death signal is per thread): not a pool thread that ends
                # with its event loop, but one that lives as long as this process.
                await asyncio.wrap_future(_STARTER.submit(self.connect))
        return self._remote

    def cpus(self) -> int:
        """The cluster's CPUs."""
        self.connect()
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    # Sub-calls -------------------------------------------------------------------------------

    async def complete(
        self, client: LLMClient, messages: Sequence[Message], options: CallOptions
    ) -> Completion:
        spec = client.spec
        if not _rebuildable(spec):
            return await client.complete(messages, **options)
        remote = await self._ready()
        args = (list(messages), dict(options))
        if spec.startswith(self._actor_prefixes):
            slot = await self._slot(spec)
            slot.in_flight += 1
            try:
                answer: Completion = await _unwrapped(self._ray, slot.actor.complete.remote(*args))
            finally:
                slot.in_flight -= 1
            return answer
        ref = remote.complete_task.remote(_portable(spec), self._base_url, *args)
        completion: Completion = await _unwrapped(self._ray, ref)
        return completion

    async def _slot(self, spec: str) -> _Slot:
        """The least busy model actor of ``spec``, its actors started on first use."""
        slots = self._pools.get(spec)
        if slots is None:
            slots = await asyncio.to_thread(self._start_actors, spec)
        return min(slots, key=lambda s: s.in_flight)

    def _start_actors(self, spec: str) -> list[_Slot]:
        with self._lock:
            slots = self._pools.get(spec)
            if slots is None:
                slots = self._pools[spec] = self._new_actors(spec)
            return slots

    def _new_actors(self, spec: str) -> list[_Slot]:
        ray = self._ray
        count = self._actors or max(1, sum(1 for n in ray.nodes() if n.get("Alive")))
        actor = self._remote.ModelActor.options(num_cpus=self._actor_cpus)
        return [_Slot(actor.remote(_portable(spec), self._base_url)) for _ in range(count)]

    def actors(self, spec: str) -> list[Any]:
        """The model actors serving ``spec`` (started by its first call)."""
        return [slot.actor for slot in self._pools.get(spec, [])]

    # Nested runs -----------------------------------------------------------------------------

    async def run_nested(self, nested: NestedRun) -> RunResult:
        """A nested run as a Ray task (:mod:`rlmx.executors.ray_nested`), or here when one of
        its models cannot be built from its spec or its context is only in this process."""
        specs = nested.specs
        job = nested.job() if all(_rebuildable(spec) for spec in specs) else None
        if job is None:
            return await nested.here()
        await self._ready()
        from rlmx.executors import ray_nested

        with self._lock:
            if self._hub is None:
                self._hub = ray_nested.new_hub()
        portable = {spec: _portable(spec) for spec in specs}
        return await ray_nested.run(self._hub, nested, job, portable, self._base_url)

    # Corpus helpers --------------------------------------------------------------------------

    async def count(self, docs: Sequence[DocSpec], pattern: str, flags: int = 0) -> int:
        remote = await self._ready()
        refs = [remote.count_task.remote(part, pattern, flags) for _, part in self._shards(docs)]
        counts = await asyncio.gather(*(_unwrapped(self._ray, ref) for ref in refs))
        return sum(counts)

    async def search_files(
        self, docs: Sequence[DocSpec], pattern: str, *, limit: int = 200, flags: int = 0
    ) -> Hits:
        remote = await self._ready()
        parts = self._shards(docs)
        refs = [remote.search_task.remote(part, pattern, limit, flags) for _, part in parts]
        found = await asyncio.gather(*(_unwrapped(self._ray, ref) for ref in refs))
        return merge_hits(
            [
                (start, hits, limited)
                for (start, _), (hits, limited) in zip(parts, found, strict=True)
            ],
            limit,
        )

    async def grep(
        self,
        docs: Sequence[DocSpec],
        pattern: str,
        *,
        around: int = 200,
        limit: int = 100,
        flags: int = 0,
        kind: str = "directory",
    ) -> Hits:
        remote = await self._ready()
        parts = self._shards(docs)
        task = remote.grep_task
        refs = [task.remote(part, pattern, around, limit, flags, kind) for _, part in parts]
        found = await asyncio.gather(*(_unwrapped(self._ray, ref) for ref in refs))
        return merge_hits(
            [
                (start, hits, limited)
                for (start, _), (hits, limited) in zip(parts, found, strict=True)
            ],
            limit,
            kind,
            Hits.separator,
        )

    def _shards(self, docs: Sequence[DocSpec]) -> list[tuple[int, list[DocSpec]]]:
        for doc in docs:
            if not doc.get("path"):
                raise ConfigError(
                    f"{doc.get('name') or 'a document'} has no path every node can read: "
                    "the ray executor shards files only"
                )
        return shard(docs, self.cpus() * SHARDS_PER_CPU)

    async def aclose(self) -> None:
        for slots in self._pools.values():
            for slot in slots:
                self._ray.kill(slot.actor)
        self._pools.clear()
        if self._hub is not None:
            self._ray.kill(self._hub)
            self._hub = None
        if self._started and self._ray.is_initialized():
            await asyncio.to_thread(self._ray.shutdown)
        self._started = False
        self._remote = None


class _Slot:
    """A model actor and the calls it has in hand."""

    __slots__ = ("actor", "in_flight")

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.in_flight = 0


def _rebuildable(spec: str) -> bool:
    """Whether a worker can build the client from its spec alone."""
    try:
        provider, model = split_spec(spec)
    except (ConfigError, ValueError):
        return False
    if provider not in FACTORIES:
        return False
    return provider != "scripted" or Path(model).is_file()


def _portable(spec: str) -> str:
    """``spec`` as a worker with another working directory reads it (a script's absolute path)."""
    provider, _, model = spec.partition(":")
    return f"{provider}:{os.path.abspath(model)}" if provider == "scripted" else spec


async def _unwrapped(ray: Any, ref: Any) -> Any:
    """The value of ``ref``; an exception raised in the task is raised here as it was."""
    try:
        return await ref
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise
