"""The host's watch over a worker's CPU and wall clock while it runs model code (host side).

The worker's own timers raise ``CellTimeout`` inside a cell; model code can ignore them
(``signal.signal(SIGPROF, SIG_IGN)``), so the host measures the worker from outside and kills
it ``grace_s`` after a limit. The same watch covers a cell and the conversion of a variable to
text (a model-defined ``__str__`` is model code too).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from rlmx.sandbox.supervisor import WorkerProcess

WATCH_TICK_S = 0.05


@dataclass(frozen=True, slots=True)
class Watch:
    cpu_s: float | None
    wall_s: float | None
    grace_s: float

    async def wait(
        self,
        worker: WorkerProcess,
        future: asyncio.Future[Any],
        what: str,
        cap_s: float | None = None,
    ) -> Any:
        """``future``'s result. The worker is killed if ``what`` overruns a limit, or takes
        more than ``cap_s`` of wall time in all; that fails ``future`` with ``WorkerDied``."""
        since, cpu_before = time.monotonic(), worker.cpu_seconds()
        if self.cpu_s is None and self.wall_s is None and cap_s is None:
            return await future
        while not future.done():
            await asyncio.wait({future}, timeout=WATCH_TICK_S)
            if future.done():
                break
            why = self.overrun(worker, since, cpu_before, what)
            if not why and cap_s is not None and time.monotonic() - since > cap_s:
                why = f"{what} did not end within {cap_s:g} s, so the REPL worker was killed"
            if why:
                worker.kill(why)
        return future.result()

    def overrun(
        self, worker: WorkerProcess, since: float, cpu_before: float | None, what: str
    ) -> str:
        """Why the worker must be killed now, or ``""``."""
        grace = f"did not stop within the {self.grace_s:g} s grace period"
        if self.wall_s is not None and worker.active_seconds(since) > self.wall_s + self.grace_s:
            return (
                f"{what} ran past its {self.wall_s:g} s wall-clock limit and {grace}, "
                "so the REPL worker was killed"
            )
        if self.cpu_s is not None and cpu_before is not None:
            cpu = worker.cpu_seconds()
            if cpu is not None and cpu - cpu_before > self.cpu_s + self.grace_s:
                return (
                    f"{what} used more than its {self.cpu_s:g} s of CPU time and {grace}, "
                    "so the REPL worker was killed"
                )
        return ""

    def idle_overrun(self, worker: WorkerProcess, mark: float | None) -> str | None:
        """Threads left running by an earlier cell may not burn CPU between cells unchecked."""
        if self.cpu_s is None or mark is None:
            return None
        cpu = worker.cpu_seconds()
        if cpu is not None and cpu - mark > self.cpu_s + self.grace_s:
            return (
                f"threads left running by an earlier cell used {cpu - mark:.0f} s of "
                "CPU time between cells, so the REPL worker was killed"
            )
        return None
