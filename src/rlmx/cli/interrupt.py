"""Stopping a command from outside: SIGINT (Ctrl-C) and SIGTERM end a run the same way.

The first signal cancels the running task, so that everything on the way out runs: the
sandbox kills its worker (a cell that ignores its timers included) and the caller records the
run as ``interrupted``. A second signal raises ``KeyboardInterrupt`` at once. A signal the
process ignores (SIGINT in a background job) stays ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from rlmx.trajectory.events import Event, FinalAnswer, RootReply, RunStarted, SubCall
from rlmx.types import Usage, UsageReport

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_USAGE_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "calls",
)


class Interruption:
    """``with Interruption() as stop:`` around ``asyncio.run``; call :meth:`watch` from the task
    to stop. ``signum`` is the first signal received, if any."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._cancel: Callable[[], object] | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> Interruption:
        if threading.current_thread() is threading.main_thread():  # signals go to it alone
            for signum in SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._saved.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._saved.clear()

    def watch(self) -> None:
        """From the running task: the first signal from now on cancels this task."""
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        if task is not None:
            self._cancel = lambda: loop.call_soon_threadsafe(task.cancel)

    @property
    def name(self) -> str:
        return "a signal" if self.signum is None else signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)  # the shell's code for a death by signal

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if not first or self._cancel is None:
            raise KeyboardInterrupt
        with contextlib.suppress(RuntimeError):  # the loop has closed: the run is over anyway
            self._cancel()


class RunTally:
    """A recorder that follows the top-level run, to report it when it is interrupted (the
    engine then returns no result). Counts as the run store does."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.iterations = 0
        self.sub_calls = 0
        self.answer: str | None = None
        self.cost_usd: float | None = 0.0
        self._root = Usage()
        self._sub = Usage()
        self._by_depth: dict[int, Usage] = {}

    def on_event(self, event: Event) -> None:
        if isinstance(event, RunStarted) and event.depth == 0 and self.run_id is None:
            self.run_id = event.run_id
        elif isinstance(event, RootReply):
            if event.depth == 0:
                self.iterations = max(self.iterations, event.iteration)
            self._add(event.usage, event.cost_usd, event.depth, own=event.depth == 0)
        elif isinstance(event, SubCall):
            self.sub_calls += 1
            self._add(event.usage, event.cost_usd, event.depth, own=False)
        elif isinstance(event, FinalAnswer) and event.depth == 0:
            self.answer = event.answer

    def _add(self, raw: Mapping[str, int], cost: float | None, depth: int, *, own: bool) -> None:
        usage = Usage(**{k: int(raw.get(k, 0)) for k in _USAGE_FIELDS})
        if own:
            self._root += usage
        else:
            self._sub += usage
        self._by_depth[depth] = self._by_depth.get(depth, Usage()) + usage
        if raw and cost is None:  # a model call without a known price
            self.cost_usd = None
        elif self.cost_usd is not None and cost is not None:
            self.cost_usd += cost

    def result(self, reason: str, wall_s: float) -> dict[str, object]:
        """What ``RunResult.to_dict()`` would hold, with status ``interrupted``."""
        usage = UsageReport(root=self._root, sub=self._sub, by_depth=dict(self._by_depth))
        return {
            "answer": self.answer,
            "status": "interrupted",
            "iterations": self.iterations,
            "sub_calls": self.sub_calls,
            "usage": usage.to_dict(),
            "cost_usd": self.cost_usd,
            "wall_s": round(wall_s, 3),
            "run_id": self.run_id,
            "error": reason,
        }
