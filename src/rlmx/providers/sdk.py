"""What the HTTP providers share: an SDK client per event loop, a total timeout per request,
one-line error texts and the debug line per call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from rlmx.types import Completion


class _Closeable(Protocol):
    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Closeable)
T = TypeVar("T")

# The most one request may take, retries included. The SDKs' own timeouts bound each phase
# (connect, each read), so a server sending a byte every few seconds never trips them.
REQUEST_TIMEOUT_S = 600.0
MAX_ERROR_CHARS = 300


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


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Collapse a server's error text to one line of at most ``limit`` characters.

    Error bodies can be whole HTML pages or multi-line JSON; rlmx errors are one line.
    """
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def server_message(body: object, fallback: str) -> str:
    """The short human message inside an error body (``{"message": ...}`` or plain text)."""
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return one_line(value)
            if isinstance(value, dict):
                return server_message(value, fallback)
    if isinstance(body, str) and body.strip():
        return one_line(body)
    return one_line(fallback)


def retries_phrase(count: int) -> str:
    return f"{count} {'retry' if count == 1 else 'retries'}"


def is_retryable(status: int) -> bool:
    """Whether the SDKs retried this status before giving up (their shared policy)."""
    return status in (408, 409, 429) or status >= 500


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
