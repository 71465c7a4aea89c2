"""Many awaited calls through a few workers.

``asyncio.gather`` over one coroutine per item holds every item's frame at once: a batch of
half a million prompts took the host past a gigabyte before the first call was refused. A
pool of ``width`` workers taking the items in turn holds ``width`` frames, whatever the size
of the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")


async def bounded_map(fn: Callable[[T], Awaitable[R]], items: Sequence[T], width: int) -> list[R]:
    """``[await fn(item) for item in items]``, with at most ``width`` calls in flight, answers
    in order. The first exception cancels the other workers and is raised."""
    results: list[Any] = [None] * len(items)
    queue = iter(enumerate(items))  # shared: each worker takes the next item when it is free

    async def worker() -> None:
        for index, item in queue:
            results[index] = await fn(item)

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(width, len(items)))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return cast(list[R], results)
