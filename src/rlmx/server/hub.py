"""Live runs: the events of each run going on in this process, for its event streams.

The store is the record; the hub only wakes the streams up and keeps the latest events in
memory so that a live stream need not query the database for each one. A stream that falls
further behind than the buffer reads the gap back from the store.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque

from rlmx.trajectory.store import Appended

BUFFER_EVENTS = 4096
BUFFER_CHARS = 16_000_000  # sub-call prompts can be large: bound the memory too


class LiveRun:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.finished = False
        self.last_idx = -1
        self._buffer: deque[tuple[int, str]] = deque()
        self._chars = 0
        self._wake = asyncio.Event()

    def waiter(self) -> asyncio.Event:
        """The event the next publish sets; take it before reading, then wait on it."""
        return self._wake

    def since(self, after: int) -> list[tuple[int, str]] | None:
        """Events numbered above ``after``; None when some are no longer in memory."""
        if after >= self.last_idx:
            return []
        buffer = self._buffer
        if not buffer or buffer[0][0] > after + 1 or buffer[-1][0] != self.last_idx:
            return None
        start = after + 1 - self._buffer[0][0]
        return list(itertools.islice(self._buffer, max(start, 0), None))

    def publish(self, appended: Appended) -> None:
        if appended.idx != self.last_idx + 1:
            self._buffer.clear()  # not contiguous: readers fall back to the store
            self._chars = 0
        self._buffer.append((appended.idx, appended.line))
        self._chars += len(appended.line)
        while len(self._buffer) > 1 and (
            self._chars > BUFFER_CHARS or len(self._buffer) > BUFFER_EVENTS
        ):
            self._chars -= len(self._buffer.popleft()[1])
        self.last_idx = max(self.last_idx, appended.idx)
        if appended.finished:
            self.finished = True
        self._notify()

    def finish(self) -> None:
        self.finished = True
        self._notify()

    def _notify(self) -> None:
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()


class Hub:
    """Live runs by id. ``listener`` may be called from any thread."""

    def __init__(self) -> None:
        self._runs: dict[str, LiveRun] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def open(self, run_id: str) -> LiveRun:
        live = self._runs[run_id] = LiveRun(run_id)
        return live

    def get(self, run_id: str) -> LiveRun | None:
        return self._runs.get(run_id)

    def close(self, run_id: str) -> None:
        """The run is over; queued behind any events still being handed over."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._close, run_id)
        else:
            self._close(run_id)

    def _close(self, run_id: str) -> None:
        live = self._runs.pop(run_id, None)
        if live is not None:
            live.finish()

    def __len__(self) -> int:
        return len(self._runs)

    def listener(self, appended: Appended) -> None:
        # Always through the loop's queue, so events reach streams in the order they were
        # committed, whichever thread recorded them.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._publish, appended)
        else:
            self._publish(appended)

    def _publish(self, appended: Appended) -> None:
        live = self._runs.get(appended.run_id)
        if live is not None:
            live.publish(appended)
