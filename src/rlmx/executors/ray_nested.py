"""``rlm_query`` children as Ray tasks: the remote side, and the driver's end of the line.

A child runs as one task (:func:`nested_task`) that builds its models from their specs, its
sandbox worker and its context on the node it lands on, and runs there with its own nested
runs. It reaches the driver through a :class:`Hub`, one actor per executor: its events as they
happen (in batches, every :data:`FLUSH_S`), and its asks for more of the tree's budget, which the
driver answers. The task also returns every event it sent, so the driver delivers each once
and in order even if the hub lost some.

A worker lost mid-child is retried by Ray (:data:`RETRIES`); each attempt names itself, so the
engine's side on the driver tells a new attempt from the one it was hearing, and records only
the attempt that returns. Imports ``ray``: only :mod:`rlmx.executors.ray` imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import uuid
from collections.abc import Mapping
from typing import Any

import ray

from rlmx.config import Settings
from rlmx.executors.base import NestedJob, NestedRun
from rlmx.providers.base import LLMClient
from rlmx.providers.registry import resolve_model
from rlmx.types import RunResult

log = logging.getLogger(__name__)

# A worker process lost mid-child (a node down, a process killed) is retried this often.
RETRIES = 3
# How often a child sends its events to the driver.
FLUSH_S = 0.05
# How long the driver waits for messages before it looks at the task again.
TAKE_WAIT_S = 1.0
# How long a child waits for the driver to answer an ask for more budget.
ASK_TIMEOUT_S = 60.0


@ray.remote(num_cpus=0, max_restarts=RETRIES)
class Hub:
    """Mailboxes between running children and the driver, one per child (``key``): a child's
    events and asks, taken by the driver; the driver's answers, waited for by the child."""

    def __init__(self) -> None:
        self._items: dict[str, list[tuple[Any, ...]]] = {}
        self._ready: dict[str, asyncio.Event] = {}
        self._answers: dict[int, asyncio.Future[object]] = {}
        self._ids = itertools.count(1)
        self._closed: set[str] = set()

    def _box(self, key: str) -> list[tuple[Any, ...]] | None:
        if key in self._closed:
            return None
        self._ready.setdefault(key, asyncio.Event())
        return self._items.setdefault(key, [])

    async def post(self, key: str, attempt: str, batch: list[tuple[int, object]]) -> None:
        box = self._box(key)
        if box is not None:
            box.extend(("send", attempt, seq, message) for seq, message in batch)
            self._ready[key].set()

    async def ask(self, key: str, attempt: str, message: object) -> object:
        box = self._box(key)
        if box is None:
            return None
        ask_id = next(self._ids)
        answer = self._answers[ask_id] = asyncio.get_running_loop().create_future()
        box.append(("ask", attempt, ask_id, message))
        self._ready[key].set()
        try:
            return await asyncio.wait_for(answer, ASK_TIMEOUT_S)
        except TimeoutError:
            return None
        finally:
            self._answers.pop(ask_id, None)

    async def take(self, key: str, wait_s: float) -> list[tuple[Any, ...]]:
        box = self._box(key)
        if box is None:
            return []
        if not box:
            ready = self._ready[key]
            ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), wait_s)
        taken = list(box)
        box.clear()
        return taken

    async def answer(self, ask_id: int, value: object) -> None:
        waiting = self._answers.get(ask_id)
        if waiting is not None and not waiting.done():
            waiting.set_result(value)

    async def close(self, key: str) -> None:
        self._closed.add(key)
        self._items.pop(key, None)
        self._ready.pop(key, None)


def new_hub() -> Any:
    """A hub on this node (the driver's), if it can go there."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    strategy = NodeAffinitySchedulingStrategy(node_id=here, soft=True)
    return Hub.options(scheduling_strategy=strategy).remote()  # type: ignore[attr-defined]


# In the worker ------------------------------------------------------------------------------

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_clients: dict[tuple[str, str | None], LLMClient] = {}


def _worker_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop for children and their clients, in a thread of its own (a
    client's connections belong to the loop that opened them, and outlive one child)."""
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="rlmx-nested", daemon=True).start()
            _loop = loop
        return _loop


class _Link:
    """One attempt's :class:`~rlmx.executors.base.NestedLink`: events batched to the hub by a
    thread of its own, asks sent at once (after the events before them)."""

    def __init__(self, hub: Any, key: str, specs: Mapping[str, str], base_url: str | None) -> None:
        self.attempt = uuid.uuid4().hex[:12]
        self._hub, self._key, self._specs, self._base_url = hub, key, specs, base_url
        self._lock = threading.Lock()
        self.sent: list[object] = []
        self._pending: list[tuple[int, object]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._flushing, name="rlmx-events", daemon=True)
        self._thread.start()

    def client(self, spec: str) -> LLMClient:
        spec = self._specs.get(spec, spec)
        with _lock:
            client = _clients.get((spec, self._base_url))
            if client is None:
                client = resolve_model(spec, settings=Settings(), base_url=self._base_url)
                _clients[(spec, self._base_url)] = client
            return client

    def send(self, message: object) -> None:
        with self._lock:
            self._pending.append((len(self.sent), message))
            self.sent.append(message)

    def ask(self, message: object) -> object:
        self._flush()
        try:
            return ray.get(self._hub.ask.remote(self._key, self.attempt, message))
        except ray.exceptions.RayError:  # the hub is gone: no answer, as for a refusal
            log.warning("nested run %s: the driver's hub did not answer", self._key)
            return None

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            self._hub.post.remote(self._key, self.attempt, batch)

    def _flushing(self) -> None:
        while not self._stop.wait(FLUSH_S):
            self._flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._flush()


@ray.remote(max_retries=RETRIES)
def nested_task(
    job: NestedJob,
    lease: object,
    key: str,
    hub: Any,
    specs: Mapping[str, str],
    base_url: str | None,
) -> tuple[str, object, list[object]]:
    """One attempt at a child: its name, its outcome, and every event it sent."""
    link = _Link(hub, key, specs, base_url)
    running = asyncio.run_coroutine_threadsafe(job.run(link, lease), _worker_loop())
    try:
        outcome = running.result()
    except BaseException:  # cancelled by the driver (KeyboardInterrupt here): stop the child
        running.cancel()
        raise
    finally:
        link.close()
    return link.attempt, outcome, link.sent


# On the driver ------------------------------------------------------------------------------


async def run(
    hub: Any, nested: NestedRun, job: NestedJob, specs: Mapping[str, str], base_url: str | None
) -> RunResult:
    """Run ``nested`` as a task; its messages are passed on while it runs."""
    try:
        shipped = await asyncio.to_thread(ray.put, job)
    except (TypeError, ValueError) as exc:  # something in it cannot be pickled: run it here
        log.debug("nested run stays in this process: %s", exc)
        return await nested.here()
    key = uuid.uuid4().hex
    ref = nested_task.remote(shipped, nested.lease(), key, hub, dict(specs), base_url)
    lines = _Lines(nested, hub)
    task = asyncio.ensure_future(_value(ref))
    try:
        while not task.done():
            taking = asyncio.ensure_future(_value(hub.take.remote(key, TAKE_WAIT_S)))
            await asyncio.wait({task, taking}, return_when=asyncio.FIRST_COMPLETED)
            if taking.done():
                await lines.deliver(taking)
            else:
                taking.cancel()  # what it takes comes back with the task's result
        attempt, outcome, sent = task.result()
    except asyncio.CancelledError:
        ray.cancel(ref)
        nested.fail("cancelled with the run that asked for it")
        raise
    except ray.exceptions.RayError as exc:
        return nested.fail(f"its worker was lost: {_first_line(exc)}")
    except Exception as exc:  # raised as a nested run in this process would raise it
        nested.fail(_first_line(exc))
        raise
    finally:
        hub.close.remote(key)
    for seq, message in enumerate(sent):
        lines.one(attempt, seq, message)
    return nested.finish(attempt, outcome)


class _Lines:
    """The driver's end: each attempt's events passed on once, in order; asks answered."""

    def __init__(self, nested: NestedRun, hub: Any) -> None:
        self._nested, self._hub = nested, hub
        self._next: dict[str, int] = {}

    async def deliver(self, taking: asyncio.Future[Any]) -> None:
        try:
            items = taking.result()
        except ray.exceptions.RayError:  # the hub restarts; events come with the result
            await asyncio.sleep(TAKE_WAIT_S)
            return
        for kind, attempt, number, message in items:
            if kind == "send":
                self.one(attempt, number, message)
            else:
                answer = self._nested.receive(attempt, message)
                self._hub.answer.remote(number, answer)

    def one(self, attempt: str, seq: int, message: object) -> None:
        expected = self._next.get(attempt, 0)
        if seq == expected:
            self._nested.receive(attempt, message)
            self._next[attempt] = seq + 1


async def _value(ref: Any) -> Any:
    """The value of ``ref``; an exception raised in the task is raised here as it was."""
    try:
        return await ref
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception) and not isinstance(cause, ray.exceptions.RayError):
            raise cause from None
        raise


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
