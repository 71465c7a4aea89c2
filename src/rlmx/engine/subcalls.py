"""Calls from model code back to the host: ``llm_query``, ``llm_query_batched``, ``llm_map``,
``rlm_query``.

Model code runs outside the event loop (a thread, or a worker process whose messages a thread
relays), so each call is a coroutine submitted to the loop and waited for. Batches run
concurrently under the tree's semaphore.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from rlmx.context import Context, ContextInput, as_context
from rlmx.engine.cache import CACHE_HIT, request_key
from rlmx.engine.mapping import extra_calls, run_map
from rlmx.engine.pool import bounded_map
from rlmx.engine.semantic_map import MAX_PRIMED_LABELS, as_items, make_spec
from rlmx.errors import LimitExceeded, RlmxError, SubCallsDisabled
from rlmx.executors.scans import ExecutorScans, scans_for
from rlmx.providers.base import CallOptions, LLMClient
from rlmx.trajectory.events import SubCall
from rlmx.types import Completion, Message, RunResult

if TYPE_CHECKING:
    from rlmx.engine.tree import Tree

log = logging.getLogger(__name__)
T = TypeVar("T")

_call_ids = itertools.count(1)

# Roughly how many characters a token holds, to refuse prompts a sub-model cannot read.
CHARS_PER_TOKEN = 3.5
# The most a nested call at the depth limit puts whole into a sub-model's prompt.
MAX_INLINE_CHARS = 4_000_000

# What a sub-call answered from a cache adds to the budget: one hit, no tokens, no cost.
_HIT = Completion(text="", usage=CACHE_HIT, model="cache", cost_usd=0.0)

NestedRunner = Callable[[str, ContextInput, int, str], Awaitable[RunResult]]


@dataclass(frozen=True, slots=True)
class SubCallScope:
    """Where the calls come from: which run, at which depth."""

    run_id: str
    depth: int


class SubCallBridge:
    """The :class:`~rlmx.sandbox.base.HostFunctions` of one run."""

    def __init__(
        self,
        *,
        tree: Tree,
        scope: SubCallScope,
        loop: asyncio.AbstractEventLoop,
        nested: NestedRunner,
    ) -> None:
        self._tree = tree
        self._scope = scope
        self._loop = loop
        self._nested = nested
        # Calls that model code waits for from its thread; cancelled when the run ends, or a
        # map of thousands of items would go on calling the model after a timeout.
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()

    @property
    def scans(self) -> ExecutorScans | None:
        """The corpus helpers' scans for model code, when the run's executor makes them."""
        return scans_for(self._tree.executor)

    # Called from the cell's thread -----------------------------------------------------------

    def llm_query(self, prompt: str, model: str | None = None) -> str:
        return self._wait(self._llm(prompt, model))

    def llm_query_batched(self, prompts: Sequence[str], model: str | None = None) -> list[str]:
        if isinstance(prompts, str):
            raise TypeError("llm_query_batched takes a list of prompts, not one string")
        return self._wait(self._batched(list(prompts), model))

    def llm_map(
        self,
        instruction: str,
        items: Sequence[str],
        labels: Sequence[str] | None = None,
        model: str | None = None,
        examples: Sequence[tuple[str, str]] | None = None,
    ) -> list[str | None]:
        return self._wait(self._map(instruction, items, labels, model, examples))

    def rlm_query(self, prompt: str, context: ContextInput | None = None) -> str:
        return self._wait(self._rlm(prompt, context))

    # Called on the event loop (the DSL level) ----------------------------------------------

    async def query(self, prompt: str, model: str | None = None) -> str:
        return await self._llm(prompt, model)

    async def query_batched(self, prompts: Sequence[str], model: str | None = None) -> list[str]:
        return await self._batched(list(prompts), model)

    async def query_map(
        self,
        instruction: str,
        items: Sequence[str],
        labels: Sequence[str] | None = None,
        model: str | None = None,
    ) -> list[str | None]:
        return await self._map(instruction, items, labels, model, None)

    def _wait(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            coro.close()
            raise RuntimeError("sub-calls cannot be made from the event loop's own thread")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        with self._lock:
            self._pending.add(future)
        try:
            return future.result()
        finally:
            with self._lock:
                self._pending.discard(future)

    def cancel_pending(self) -> None:
        """Cancel the calls model code is still waiting for: the run has ended."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.cancel()

    # On the event loop -----------------------------------------------------------------------

    async def _llm(self, prompt: str, model: str | None, *, kind: str = "llm") -> str:
        if not isinstance(prompt, str):
            raise TypeError(f"llm_query takes a str prompt, got {type(prompt).__name__}")
        if not self._tree.limits.sub_calls_enabled:
            raise SubCallsDisabled()
        client = self._tree.models.pick(model)
        window = client.profile.context_window
        if window is not None and len(prompt) / CHARS_PER_TOKEN > window * 0.9:
            raise ValueError(
                f"prompt of {len(prompt):,} chars is too long for {client.spec} "
                f"(window {window:,} tokens, about {int(window * CHARS_PER_TOKEN):,} chars): "
                "pass a smaller chunk"
            )
        self._tree.budget.reserve_sub_call()
        return (await self._call(client, prompt, kind=kind)).text

    async def _call(
        self,
        client: LLMClient,
        prompt: str,
        *,
        kind: str,
        messages: Sequence[Message] | None = None,
        options: CallOptions | None = None,
    ) -> Completion:
        """One sub-model call, recorded; ``prompt`` is what the trace shows of ``messages``.
        A greedy request asked before (in this tree, or in the cache) is answered from there."""
        call_id = f"{self._scope.run_id}.{next(_call_ids)}"
        started = time.perf_counter()
        sent = list(messages or [Message("user", prompt)])
        options = options or {}
        key = request_key(client.spec, sent, options)
        if key is not None:
            remembered = await self._remembered(client.spec, key)
            if remembered is not None:
                self._tree.budget.record(_HIT, depth=self._scope.depth + 1, is_root=False)
                shown = remembered.text
                self._emit(call_id, client.spec, prompt, shown, kind, started, cached=True)
                return remembered
        try:
            async with self._tree.semaphore:
                completion = await self._tree.executor.complete(client, sent, options)
        except RlmxError as exc:
            self._emit(call_id, client.spec, prompt, "", kind, started, error=str(exc))
            raise
        self._tree.budget.record(completion, depth=self._scope.depth + 1, is_root=False)
        log.debug("sub-call %s %s: %d tokens", call_id, client.spec, completion.usage.total_tokens)
        self._tree.recorder.on_event(
            SubCall(
                run_id=self._scope.run_id,
                depth=self._scope.depth + 1,
                call_id=call_id,
                kind=kind,
                model=client.spec,
                prompt=prompt,
                response=completion.text,
                usage=completion.usage.to_dict(),
                latency_s=round(completion.latency_s or time.perf_counter() - started, 4),
                cost_usd=completion.cost_usd,
                endpoint=completion.endpoint,
            )
        )
        if key is not None:
            await self._remember(client.spec, key, completion)
        return completion

    async def _remembered(self, model: str, key: str) -> Completion | None:
        """The tree's own answer to the request, else the cache's (read off the event loop)."""
        found = self._tree.memo.get(model, key)
        cache = self._tree.cache
        if found is None and cache is not None:
            found = await asyncio.to_thread(cache.get, model, key)
            if found is not None:
                self._tree.memo.put(model, key, found)
        return found

    async def _remember(self, model: str, key: str, completion: Completion) -> None:
        self._tree.memo.put(model, key, completion)
        if self._tree.cache is not None:
            await asyncio.to_thread(self._tree.cache.put, model, key, completion)

    def _emit(
        self,
        call_id: str,
        model: str,
        prompt: str,
        response: str,
        kind: str,
        started: float,
        *,
        error: str | None = None,
        child_run_id: str | None = None,
        cached: bool = False,
    ) -> None:
        self._tree.recorder.on_event(
            SubCall(
                run_id=self._scope.run_id,
                depth=self._scope.depth + 1,
                call_id=call_id,
                kind=kind,
                model=model,
                prompt=prompt,
                response=response,
                usage=_HIT.usage.to_dict() if cached else {},
                latency_s=round(time.perf_counter() - started, 4),
                cost_usd=0.0 if cached else None,
                error=error,
                child_run_id=child_run_id,
                cached=cached,
            )
        )

    async def _batched(self, prompts: list[str], model: str | None) -> list[str]:
        if not self._tree.limits.sub_calls_enabled:
            raise SubCallsDisabled()
        self._refuse_over_budget(len(prompts), f"llm_query_batched of {len(prompts):,} prompts")

        async def one(prompt: str) -> str:
            try:
                return await self._llm(prompt, model)
            except (RlmxError, TypeError, ValueError, KeyError) as exc:
                return f"ERROR: {exc}"

        return await bounded_map(one, prompts, self._tree.limits.concurrency)

    def _refuse_over_budget(self, needed: int, what: str) -> None:
        """Refuse, before any call is made, a batch larger than the sub-calls the tree has
        left: answering it item by item would first make a coroutine per item, and the model
        would read a partial batch as a whole one."""
        left = self._tree.budget.sub_calls_left()
        if left is not None and needed > left:
            raise LimitExceeded("max_sub_calls", f"{what}, but {left:,} sub-calls left")

    async def _map(
        self,
        instruction: str,
        items: Sequence[str],
        labels: Sequence[str] | None,
        model: str | None,
        examples: Sequence[tuple[str, str]] | None,
    ) -> list[str | None]:
        if not self._tree.limits.sub_calls_enabled:
            raise SubCallsDisabled()
        spec = make_spec(instruction, labels, examples)
        texts = as_items(items)
        client = self._tree.models.pick(model)
        window = client.profile.context_window
        longest = max((len(t) for t in texts), default=0) + len(instruction)
        if window is not None and longest / CHARS_PER_TOKEN > window * 0.9:
            raise ValueError(
                f"an item of {longest:,} chars is too long for {client.spec}: use smaller pieces"
            )
        primed = (
            bool(spec.labels) and not spec.examples and len(spec.labels or ()) <= MAX_PRIMED_LABELS
        )
        needed = len(texts) + extra_calls(spec, primed=primed)
        self._refuse_over_budget(needed, f"llm_map of {len(texts):,} items")
        self._tree.budget.check()

        async def call(shown: str, messages: list[Message], options: CallOptions) -> Completion:
            self._tree.budget.reserve_sub_call()
            return await self._call(client, shown, kind="map", messages=messages, options=options)

        width = self._tree.limits.concurrency
        return await run_map(call, spec, texts, width=width, primed=primed)

    async def _rlm(self, prompt: str, context: ContextInput | None) -> str:
        limits = self._tree.limits
        if not limits.sub_calls_enabled:
            raise SubCallsDisabled()
        if self._scope.depth + 1 > limits.max_depth:
            # At the depth limit a nested run degrades to a plain sub-model call.
            text = prompt if context is None else f"{prompt}\n\n{_as_text(context)}"
            return await self._llm(text, None)
        self._tree.budget.reserve_sub_call()
        started = time.perf_counter()
        call_id = f"{self._scope.run_id}.{next(_call_ids)}"
        query: str = prompt
        sub_context: ContextInput
        if context is None:
            # As in the paper: the nested RLM's context is the prompt itself.
            query, sub_context = "Do what the text in `context` asks, and answer it.", prompt
        else:
            sub_context = context
        # Each nested run holds a sandbox worker: no more than the tree's concurrency at once.
        async with self._tree.nested_slot(self._scope.depth + 1):
            self._tree.budget.check()  # the wait for a slot may have used up the wall clock
            result = await self._nested(
                query, sub_context, self._scope.depth + 1, self._scope.run_id
            )
        answer = result.answer or ""
        self._emit(
            call_id,
            self._tree.models.root.spec,
            prompt,
            answer,
            "rlm",
            started,
            error=None if result.status == "completed" else f"nested run: {result.status}",
            child_run_id=result.run_id,
        )
        if result.status != "completed":
            return f"ERROR: nested run ended with status {result.status}: {result.error or answer}"
        return answer


def _as_text(context: ContextInput) -> str:
    if isinstance(context, Context | os.PathLike):
        context = as_context(context).materialize(MAX_INLINE_CHARS)
    return context if isinstance(context, str) else "\n\n".join(context)
