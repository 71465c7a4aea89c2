"""Server-Sent Events of a run: the stored events first, then live ones until the run ends.

Each event goes out as ``id: N`` (its number in the run's tree) and ``data: {json}``; a client
that reconnects with ``Last-Event-ID: N`` (or ``?after=N``) gets only what came later. The
stream closes with ``event: end`` carrying the run's status. Comments (``: ping``) keep idle
connections open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from anyio import to_thread

from rlmx.server.hub import Hub, LiveRun
from rlmx.trajectory.store import RunStore
from rlmx.trajectory.summary import ACTIVE_STATUSES

# How often a stream checks the store for a run recorded by another process (``rlmx run``).
POLL_S = 0.5


def format_event(idx: int, line: str) -> bytes:
    return f"id: {idx}\ndata: {line}\n\n".encode()


def format_end(run_id: str, status: str) -> bytes:
    data = json.dumps({"run_id": run_id, "status": status})
    return f"event: end\ndata: {data}\n\n".encode()


async def _status(store: RunStore, run_id: str) -> str:
    summary = await to_thread.run_sync(store.get_run, run_id)
    return summary.status if summary is not None else "deleted"


async def run_events(
    store: RunStore, hub: Hub, run_id: str, *, after: int = -1, heartbeat_s: float = 15.0
) -> AsyncIterator[bytes]:
    """The byte chunks of one run's event stream."""
    last = after
    live: LiveRun | None = hub.get(run_id)
    beat = time.monotonic()

    async def stored() -> list[tuple[int, str]]:
        return await to_thread.run_sync(lambda: store.events(run_id, after=last))

    while True:
        if live is not None:
            wake = live.waiter()
            finished = live.finished
            batch = None if finished else live.since(last)
            batch = await stored() if batch is None else batch
        else:
            status = await _status(store, run_id)
            batch = await stored()
        if batch:
            yield b"".join(format_event(idx, line) for idx, line in batch)
            last = batch[-1][0]
            beat = time.monotonic()
            continue
        timeout = max(0.0, beat + heartbeat_s - time.monotonic())
        if live is not None:
            if finished:
                live = None  # read what is left from the store, then end
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
        elif status not in ACTIVE_STATUSES:
            yield format_end(run_id, status)
            return
        else:
            # Recorded by another process, or not started yet: look again shortly.
            await asyncio.sleep(min(POLL_S, timeout))
            live = hub.get(run_id)
        if time.monotonic() - beat >= heartbeat_s:
            yield b": ping\n\n"
            beat = time.monotonic()
