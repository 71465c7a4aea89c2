"""What the HTTP providers share: an SDK client per event loop, a total timeout per request,
and option checking."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from rlmx.errors import ConfigError
from rlmx.types import Completion


class _Closeable(Protocol):
    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Closeable)
T = TypeVar("T")

# The most one request may take, retries included. The SDKs' own timeouts bound each phase
# (connect, each read), so a server sending a byte every few seconds never trips them.
REQUEST_TIMEOUT_S = 600.0


class PerLoopClient(Generic[ClientT]):
    """One SDK client for the running event loop.

    An SDK client's connection pool belongs to the loop that opened it, so a call from a new
    loop (a second ``RLM.run``) builds a fresh client instead of reusing dead sockets.
    """

    def __init__(self, factory: Callable[[], ClientT]) -> None:
        self._factory = factory
        self._client: ClientT | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> ClientT:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = self._factory()
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.close()


async def within(total_s: float, request: Awaitable[T], timed_out: Callable[[], Exception]) -> T:
    """``await request``, or ``timed_out()`` raised once ``total_s`` seconds have passed."""
    try:
        async with asyncio.timeout(total_s):
            return await request
    except TimeoutError:
        raise timed_out() from None


def timeout_message(base_url: str, total_s: float) -> str:
    return (
        f"{base_url} timed out: no complete reply within {total_s:g} s (the total timeout of "
        "a request); the server is stalled or too slow for it"
    )


def refuse_unknown_options(spec: str, options: Mapping[str, Any], supported: Iterable[str]) -> None:
    known = set(supported)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"{spec}: unsupported option(s) {', '.join(unknown)}; "
            f"supported: {', '.join(sorted(known))}"
        )


def log_completion(log: logging.Logger, spec: str, messages: int, completion: Completion) -> None:
    """The one debug line per model call."""
    usage = completion.usage
    log.debug(
        "%s: %d messages -> %d+%d tokens (%d cached, %d cache-written) in %.2fs, finish=%s",
        spec,
        messages,
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_tokens,
        usage.cache_write_tokens,
        completion.latency_s,
        completion.finish_reason,
    )
