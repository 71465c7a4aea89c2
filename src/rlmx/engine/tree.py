"""What every run of one recursion tree shares: the models, the limits and their budget, the
recorder, the sub-call caches, the executor, and the slots that bound how much of the tree runs
at once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from rlmx.config import Limits
from rlmx.engine.budget import Budget
from rlmx.engine.cache import MemoryCache, SubCallCache
from rlmx.executors.base import Executor
from rlmx.executors.local import LocalExecutor
from rlmx.providers.base import LLMClient
from rlmx.trajectory.base import Recorder


@dataclass(frozen=True, slots=True)
class Models:
    """The root model, the default sub-model, and other sub-models callable by name."""

    root: LLMClient
    sub: LLMClient
    named: Mapping[str, LLMClient] = field(default_factory=dict)

    def pick(self, name: str | None) -> LLMClient:
        if name is None or name in ("sub", self.sub.spec):
            return self.sub
        if name in ("root", self.root.spec):
            return self.root
        if name in self.named:
            return self.named[name]
        known = ", ".join(["sub", "root", *self.named])
        raise KeyError(f"unknown model {name!r} for llm_query; use one of: {known}")


@dataclass(slots=True)
class Tree:
    """What every run of one recursion tree shares.

    ``semaphore`` bounds the sub-model calls in flight. Nested runs are bounded apart, by
    :meth:`nested_slot`: each holds a sandbox worker for its whole life, and it makes sub-calls
    of its own, so sharing the sub-call semaphore would let nested runs starve their own calls.
    """

    models: Models
    limits: Limits
    budget: Budget
    recorder: Recorder
    semaphore: asyncio.Semaphore
    # Greedy sub-call replies by request: a small model re-runs the same map or query, and
    # the same request to the same model decodes to the same reply. ``memo`` lives as long as
    # the tree; ``cache``, when given, outlives it (runs and processes share it).
    memo: MemoryCache = field(default_factory=MemoryCache)
    cache: SubCallCache | None = None
    # Where sub-model calls run: this process, or a cluster (:mod:`rlmx.executors`).
    executor: Executor = field(default_factory=LocalExecutor)
    _nested: dict[int, asyncio.Semaphore] = field(default_factory=dict)

    def nested_slot(self, depth: int) -> asyncio.Semaphore:
        """The slots of nested runs at ``depth``: ``limits.concurrency`` of them.

        One semaphore per depth rather than one for the tree: a run holding a slot waits for
        its own nested runs, so with a single semaphore a full level would deadlock the next.
        At most ``concurrency`` runs per depth go at once (with the default ``max_depth`` of 1,
        exactly ``concurrency`` for the tree).
        """
        slot = self._nested.get(depth)
        if slot is None:
            slot = self._nested[depth] = asyncio.Semaphore(self.limits.concurrency)
        return slot
