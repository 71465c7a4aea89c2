"""What the HTTP providers share: an SDK client per event loop, and option checking."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from rlmx.errors import ConfigError
from rlmx.types import Completion


class _Closeable(Protocol):
    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Closeable)


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
