"""An endpoint pool: one model served by several OpenAI-compatible servers, as one client.

:class:`PoolClient` is an :class:`~rlmx.providers.base.LLMClient` like any other. Each call
goes to the least-loaded healthy endpoint (fewest calls in flight, ties broken by recent
latency, then by the one picked longest ago) that has room under its own limit of calls in
flight; when every endpoint is full, the call waits for a free slot. An attempt that fails
at the endpoint (connection refused or dropped, 5xx, 408, 429, timeout) takes that endpoint
out for a back-off, and the call moves to another endpoint; each endpoint is tried at most
once per call, and only the attempt that answers counts in usage. An endpoint whose back-off
has ended is probed (``GET {url}/models``) before it gets traffic again. Errors that another
endpoint would repeat (a refused key, a bad request, a reply without text) are raised as is.

The answer's ``model`` is the pool's spec and its ``endpoint`` the server that answered;
:meth:`PoolClient.stats` tallies calls, failures, usage and latency per endpoint.

Pools named by a spec string (:func:`shared_pool`) are shared in the process, the way the
embedded models are: every client resolved from one spec is a lease on one pool, so the
per-endpoint limits and the health of each server hold across runs (the server's concurrent
runs, nested runs), and the connections are closed when the last lease is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from typing import Unpack

import openai

from rlmx.config import Settings
from rlmx.errors import AuthenticationError, ProviderError
from rlmx.providers.base import CallOptions, ModelProfile
from rlmx.providers.openai_compat import OpenAICompatClient
from rlmx.providers.pool_endpoint import EndpointState, EndpointStats
from rlmx.providers.pool_spec import Endpoint, PoolConfig, PoolPolicy, parse_pool, split_urls
from rlmx.providers.presets import PRESETS, Preset
from rlmx.types import Completion, Message

__all__ = ["Endpoint", "EndpointStats", "PoolClient", "PoolLease", "PoolPolicy", "shared_pool"]

logger = logging.getLogger(__name__)


class PoolClient:
    """A model served by several OpenAI-compatible endpoints: least-loaded routing, a limit of
    calls in flight per endpoint, health checks and failover (see the module's docstring).

    ``endpoints`` are base URLs (``http://gpu1:8000/v1``) or :class:`Endpoint` values with
    their own limit and key; ``preset`` names the kind of server (``vllm``, ``llamacpp``,
    ``ollama``, ``openai``...); ``spec`` is what answers and errors name (by default
    ``pool:PRESET:MODEL@URL,...``).
    """

    def __init__(
        self,
        endpoints: Sequence[str | Endpoint],
        *,
        model: str,
        preset: str | Preset = "vllm",
        policy: PoolPolicy | None = None,
        spec: str | None = None,
        profile: ModelProfile | None = None,
    ) -> None:
        chosen = PRESETS[preset] if isinstance(preset, str) else preset
        given = tuple(e if isinstance(e, Endpoint) else Endpoint(e.rstrip("/")) for e in endpoints)
        name = spec or f"pool:{chosen.name}:{model}@{','.join(e.url for e in given)}"
        self._config = PoolConfig(
            spec=name, preset=chosen, model=model, endpoints=given, policy=policy or PoolPolicy()
        )
        self._profile = profile or ModelProfile()
        self._states = [self._state(e) for e in given]
        # Callers waiting for a slot, oldest first, each with the endpoints it may take.
        self._waiters: deque[tuple[asyncio.Future[None], frozenset[str]]] = deque()
        self._picks = 0
        self._probes: set[asyncio.Task[bool]] = set()

    @classmethod
    def from_config(cls, config: PoolConfig, *, profile: ModelProfile | None = None) -> PoolClient:
        return cls(
            config.endpoints,
            model=config.model,
            preset=config.preset,
            policy=config.policy,
            spec=config.spec,
            profile=profile,
        )

    def _state(self, endpoint: Endpoint) -> EndpointState:
        config = self._config
        client = OpenAICompatClient(
            model=config.model,
            api_key=endpoint.api_key,
            base_url=endpoint.url,
            preset=config.preset,
            max_retries=int(config.policy.max_retries),
            timeout_s=config.policy.timeout_s,
            profile=self._profile,
        )
        return EndpointState(endpoint=endpoint, client=client, policy=config.policy)

    @property
    def spec(self) -> str:
        return self._config.spec

    @property
    def profile(self) -> ModelProfile:
        return self._profile

    @property
    def config(self) -> PoolConfig:
        return self._config

    def stats(self) -> tuple[EndpointStats, ...]:
        """Calls, failures, usage, latency and health of each endpoint, in the pool's order."""
        now = time.monotonic()
        return tuple(state.stats(now) for state in self._states)

    async def complete(
        self, messages: Sequence[Message], **options: Unpack[CallOptions]
    ) -> Completion:
        """Answer at the least-loaded healthy endpoint, moving to another when one fails."""
        tried: set[str] = set()
        last: ProviderError | None = None
        while True:
            state = await self._acquire(tried)
            if state is None:
                raise last or self._none_left()
            try:
                completion = await state.client.complete(messages, **options)
            except ProviderError as exc:
                if not is_endpoint_failure(exc):
                    state.failures += 1
                    raise
                last = self._failed(state, exc)
                tried.add(state.url)
                continue
            finally:
                self._release(state)
            state.answered(completion.usage, completion.latency_s)
            return replace(completion, model=self.spec, endpoint=state.url)

    def _failed(self, state: EndpointState, exc: ProviderError) -> ProviderError:
        backoff = state.failed(time.monotonic())
        logger.warning(
            "%s: endpoint %s failed (%s); out for %.0f s", self.spec, state.url, exc, backoff
        )
        self._wake_all()  # callers waiting for this endpoint look elsewhere
        return ProviderError(
            f"{exc} (every endpoint of the pool tried)",
            provider=exc.provider,
            model=exc.model,
            status=exc.status,
        )

    def _none_left(self) -> ProviderError:
        down = ", ".join(s.url for s in self._states if not s.up)
        return ProviderError(
            f"no endpoint of {self.spec} answers (down: {down}); check the servers",
            provider="pool",
            model=self._config.model,
        )

    async def _acquire(self, tried: set[str]) -> EndpointState | None:
        """A slot at the best endpoint this call has not tried, waiting for one when all are
        full or out; None when every endpoint has been tried or failed again while waited for."""
        gave_up: set[str] = set()
        failures = {s.url: s.failures + s.probes for s in self._states}
        while True:
            now = time.monotonic()
            open_ = [s for s in self._states if s.url not in tried and s.url not in gave_up]
            for state in open_:
                if not state.up and state.failures + state.probes > failures[state.url]:
                    gave_up.add(state.url)  # it failed (or failed its probe) while we waited
                elif state.probe_due(now):
                    self._start_probe(state)
            open_ = [s for s in open_ if s.url not in gave_up]
            if not open_:
                return None
            ready = [s for s in open_ if s.up and s.has_room]
            if ready:
                best = min(ready, key=lambda s: s.rank())
                self._picks += 1
                best.last_pick = self._picks
                best.in_flight += 1
                return best
            await self._wait(_next_probe_in(open_, now), frozenset(s.url for s in open_))

    def _start_probe(self, state: EndpointState) -> None:
        task = asyncio.ensure_future(self._probe(state))
        state.probe_task = task
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _probe(self, state: EndpointState) -> bool:
        ok = await state.probe()
        if ok:
            logger.info("%s: endpoint %s is back", self.spec, state.url)
        self._wake_all()
        return ok

    async def _wait(self, timeout: float | None, usable: frozenset[str]) -> None:
        """Until woken (a slot freed at an endpoint in ``usable``, a probe ended, an endpoint
        failed) or ``timeout`` seconds have passed (a back-off ended)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((waiter, usable))
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake_all()  # the slot this caller was woken for goes to the others
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove((waiter, usable))

    def _release(self, state: EndpointState) -> None:
        """One slot freed at ``state``: wake the longest waiting caller that may take it."""
        state.in_flight -= 1
        for entry in self._waiters:
            waiter, usable = entry
            if state.url in usable and _wake(waiter):
                self._waiters.remove(entry)
                return

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, deque()
        for waiter, _ in waiters:
            _wake(waiter)

    async def aclose(self) -> None:
        for task in list(self._probes):
            task.cancel()
        for state in self._states:
            await state.client.aclose()


def _wake(waiter: asyncio.Future[None]) -> bool:
    if waiter.done() or waiter.get_loop().is_closed():
        return False
    waiter.set_result(None)
    return True


def _next_probe_in(states: Sequence[EndpointState], now: float) -> float | None:
    """Seconds until the first back-off among ``states`` ends; None when none is down."""
    ends = [s.down_until for s in states if s.down_until is not None and not s.probing]
    return max(min(ends) - now, 0.0) + 0.001 if ends else None


def is_endpoint_failure(exc: ProviderError) -> bool:
    """Whether another endpoint might answer where this one failed: the server was not
    reached, timed out, was overloaded or broke (5xx), as opposed to refusing the request."""
    if isinstance(exc, AuthenticationError):
        return False
    if exc.status is not None:
        return exc.status >= 500 or exc.status in (408, 429)
    cause = exc.__cause__
    # OpenAICompatClient raises its own timeout from the TimeoutError it caught.
    return isinstance(cause, openai.APIConnectionError) or isinstance(exc.__context__, TimeoutError)


class PoolLease:
    """A client on a shared pool; closing it releases the pool, the last lease closes it."""

    def __init__(self, pool: PoolClient, owner: _Shared) -> None:
        self.pool = pool
        self._owner = owner
        self._closed = False

    @property
    def spec(self) -> str:
        return self.pool.spec

    @property
    def profile(self) -> ModelProfile:
        return self.pool.profile

    def stats(self) -> tuple[EndpointStats, ...]:
        return self.pool.stats()

    async def complete(
        self, messages: Sequence[Message], **options: Unpack[CallOptions]
    ) -> Completion:
        return await self.pool.complete(messages, **options)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._owner.release(self.pool)


class _Shared:
    """The pools of this process, by what they are made of, with their open leases."""

    def __init__(self) -> None:
        self._pools: dict[PoolConfig, PoolClient] = {}
        self._leases: dict[int, int] = {}

    def lease(self, config: PoolConfig) -> PoolLease:
        pool = self._pools.get(config)
        if pool is None:
            pool = self._pools[config] = PoolClient.from_config(config)
        self._leases[id(pool)] = self._leases.get(id(pool), 0) + 1
        return PoolLease(pool, self)

    async def release(self, pool: PoolClient) -> None:
        left = self._leases.get(id(pool), 1) - 1
        self._leases[id(pool)] = left
        if left <= 0:
            await pool.aclose()  # connections only: health and figures stay for the next lease


_SHARED = _Shared()


def shared_pool(spec: str, *, settings: Settings) -> PoolLease:
    """A client on the process's pool for ``spec`` (``pool:...``), built on first use."""
    return _SHARED.lease(parse_pool(spec, settings=settings))


def shared_pool_of(config: PoolConfig) -> PoolLease:
    """A client on the process's pool made of ``config``."""
    return _SHARED.lease(config)


def pool_of_urls(spec: str, preset: Preset, model: str, urls: str, key: str | None) -> PoolLease:
    """The process's pool for ``spec`` (``vllm:MODEL``) over comma-separated base URLs."""
    endpoints = tuple(Endpoint(url, api_key=key) for url in split_urls(urls))
    return _SHARED.lease(PoolConfig(spec=spec, preset=preset, model=model, endpoints=endpoints))
