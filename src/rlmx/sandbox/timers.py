"""Per-cell limits in the sandbox worker, as interval timers that raise in the main thread.

``ITIMER_PROF`` measures CPU time and ``ITIMER_REAL`` wall time, the latter paused while any
sub-call is waiting on the host. Either raises :class:`CellTimeout` inside the cell (again
every half second if the cell swallows it), which keeps the REPL's state. The host does not
rely on this: it kills a worker that overruns (:mod:`rlmx.sandbox.watch`). Standard library
only: the worker imports it under ``python -S``.
"""

from __future__ import annotations

import signal
import threading

REFIRE_S = 0.5


class CellTimeout(BaseException):
    """The cell ran past its CPU or wall-clock limit. A BaseException, so ``except Exception``
    in model code does not swallow it."""


CellTimeout.__module__ = "builtins"


class Timers:
    """Per-cell CPU and wall-clock limits as interval timers that raise in the main thread."""

    def __init__(self, cpu_s: float | None, wall_s: float | None) -> None:
        self.cpu_s = cpu_s
        self.wall_s = wall_s
        self.active = False
        self.shield = 0  # > 0 while the main thread is inside the worker's own machinery
        self.pending: str | None = None
        self._lock = threading.Lock()
        self._waiting = 0
        self._wall_left = 0.0
        signal.signal(signal.SIGPROF, self._fire)
        signal.signal(signal.SIGALRM, self._fire)

    def message(self, kind: str) -> str:
        if kind == "cpu":
            return f"the cell used more than its {self.cpu_s:g} s of CPU time"
        return (
            f"the cell ran longer than its {self.wall_s:g} s wall-clock limit "
            "(time waiting for sub-models not counted)"
        )

    def _fire(self, signum: int, _frame: object) -> None:
        if not self.active:
            return
        kind = "cpu" if signum == signal.SIGPROF else "wall"
        if self.shield:
            self.pending = self.pending or kind
            return
        raise CellTimeout(self.message(kind))

    def arm(self) -> None:
        self.pending = None
        self.shield = 0
        self._waiting = 0
        self.active = True
        if self.cpu_s:
            signal.setitimer(signal.ITIMER_PROF, self.cpu_s, REFIRE_S)
        if self.wall_s:
            signal.setitimer(signal.ITIMER_REAL, self.wall_s, REFIRE_S)

    def disarm(self) -> None:
        self.active = False
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        self.pending = None

    def waiting(self, delta: int) -> None:
        """A sub-call started (+1) or ended (-1): the wall clock stops while any is pending."""
        if not self.wall_s:
            return
        with self._lock:
            self._waiting = max(0, self._waiting + delta)
            if delta > 0 and self._waiting == 1 and self.active:
                self._wall_left = signal.setitimer(signal.ITIMER_REAL, 0)[0]
            elif delta < 0 and self._waiting == 0 and self.active and self._wall_left > 0:
                signal.setitimer(signal.ITIMER_REAL, self._wall_left, REFIRE_S)
