"""``ProcessSandbox``: the REPL in a confined worker process (the host side of the sandbox).

One worker process per REPL session (see :mod:`rlmx.sandbox.worker`). The context is written
once to an unnamed temporary file that the worker maps read-only; the worker's environment is
empty, so it never sees an API key; its sub-calls arrive as messages and are answered here
through :class:`~rlmx.sandbox.base.HostFunctions`. Modes:

``default``
    resource limits, Landlock and seccomp (:mod:`rlmx.sandbox.confine`). Refuses to start,
    saying why, on a kernel without Landlock or seccomp.
``strict``
    ``default`` inside bubblewrap: new user (uid 65534, no capabilities), pid, net, ipc, uts and
    mount namespaces with minimal read-only binds. Needs ``bwrap`` on PATH.
``none``
    an unconfined worker with every installed package and no limits, for trusted data and
    heavy jobs only. Never the default.

A cell that overruns its CPU or wall-clock limit gets a ``CellTimeout`` inside it and the
session keeps its state; the wall clock stops while the cell waits on a sub-model. A worker that
ignores the timer (or crashes, or breaks the protocol) is killed after ``grace_s``, restarted,
and its earlier successful cells are replayed with sub-model answers served from the record;
if a replay does not reproduce a cell, the model is told which variables are gone.

This module is the session's lifecycle; its other jobs have their own modules: the knobs
(:mod:`~rlmx.sandbox.config`), starting workers (:mod:`~rlmx.sandbox.spawn`), the watchdog
(:mod:`~rlmx.sandbox.watch`), sub-calls (:mod:`~rlmx.sandbox.calls`), restart and replay
(:mod:`~rlmx.sandbox.replay`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import time
from collections.abc import Sequence
from typing import Any

from rlmx.context import Context, ContextInput, as_context
from rlmx.errors import SandboxError
from rlmx.sandbox.base import HostFunctions, SandboxFactory
from rlmx.sandbox.calls import SubCalls
from rlmx.sandbox.capture import truncate
from rlmx.sandbox.config import (
    AUTO,
    DEFAULT_CELL_CPU_S,
    DEFAULT_CELL_WALL_S,
    DEFAULT_MEMORY_MB,
    MODE_HELP,
    Auto,
    SandboxConfig,
    check_mode,
    resolve_limit,
)
from rlmx.sandbox.launch import Mode
from rlmx.sandbox.replay import Replayer
from rlmx.sandbox.scan_host import scan_route
from rlmx.sandbox.spawn import Spawner
from rlmx.sandbox.supervisor import WorkerDied, WorkerProcess
from rlmx.sandbox.watch import Watch
from rlmx.types import CellResult

__all__ = ["MODE_HELP", "ProcessSandbox", "sandbox_factory"]

ERROR_CHARS = 20_000
ERROR_TYPE_CHARS = 200
VARIABLE_TIMEOUT_S = 30.0


class ProcessSandbox:
    """A REPL session in a worker process; see the module docstring for the modes.

    The keyword arguments become :attr:`config` (a
    :class:`~rlmx.sandbox.config.SandboxConfig`), each readable as an attribute of its name.
    """

    def __init__(
        self,
        *,
        mode: Mode = "default",
        cell_cpu_s: float | Auto | None = AUTO,
        cell_wall_s: float | Auto | None = AUTO,
        memory_mb: int = DEFAULT_MEMORY_MB,
        max_open_files: int = 64,
        grace_s: float = 2.0,
        capture_chars: int = 200_000,
        max_message_bytes: int | None = None,
        site_packages: bool = False,
        read_paths: Sequence[str] = (),
        replay: bool = True,
        python_guard: bool = True,
        startup_timeout_s: float = 60.0,
        pretend_missing: str | None = None,
    ) -> None:
        check_mode(mode)
        self.config = SandboxConfig(
            mode=mode,
            cell_cpu_s=resolve_limit(cell_cpu_s, mode, DEFAULT_CELL_CPU_S),
            cell_wall_s=resolve_limit(cell_wall_s, mode, DEFAULT_CELL_WALL_S),
            memory_mb=memory_mb,
            max_open_files=max_open_files,
            grace_s=grace_s,
            capture_chars=capture_chars,
            max_message_bytes=max_message_bytes,
            site_packages=site_packages,
            read_paths=tuple(os.path.abspath(p) for p in read_paths),
            replay=replay,
            python_guard=python_guard,
            startup_timeout_s=startup_timeout_s,
            pretend_missing=pretend_missing,
        )
        self._watch = Watch(self.config.cell_cpu_s, self.config.cell_wall_s, grace_s)
        self.info: dict[str, Any] = {}
        self.restarts = 0
        self._started = False
        self._spawner: Spawner | None = None
        self._worker: WorkerProcess | None = None
        self._lock = asyncio.Lock()
        self._cpu_mark: float | None = None
        self._replayer = Replayer(enabled=replay, spawn=self._spawn, run=self._run_cell)
        self._calls = SubCalls(self._replayer)

    # The Sandbox protocol --------------------------------------------------------------------

    async def start(self, context: ContextInput, host: HostFunctions) -> None:
        if self._started or self._spawner is not None:
            raise SandboxError("start() was called twice on one sandbox")
        self._spawner = Spawner(
            config=self.config,
            seed=random.SystemRandom().randrange(1 << 32),
            on_message=self._calls.on_message,
        )
        opened: Context = as_context(context)
        self._calls.bind(host, opened)
        try:
            route = await asyncio.to_thread(scan_route, opened, host)
            self._calls.route_scans(route)
            self._spawner.scans = route is not None
            self._worker, self.info = await self._spawner.first(opened)
        except BaseException:
            await self.close()
            raise
        self._cpu_mark = self._worker.cpu_seconds()
        self._started = True

    async def execute(self, code: str) -> CellResult:
        if not self._started:
            raise SandboxError("the REPL was used before start()")
        async with self._lock:
            started = time.perf_counter()
            notes = await self._check_worker()
            with self._replayer.recording_cell() as recording:
                try:
                    result = await self._run_cell(code)
                except WorkerDied as died:
                    note = await self._recover(died.reason)
                    return CellResult(
                        output="".join(f"[rlmx] {n}\n" for n in notes),
                        error=f"{died.reason}.\n{note}",
                        duration_s=time.perf_counter() - started,
                    )
            self._replayer.keep(code, result, recording)
            output = "".join(f"[rlmx] {n}\n" for n in notes) + result.output
            return dataclasses.replace(
                result, output=output, duration_s=time.perf_counter() - started
            )

    async def get_variable(self, name: str) -> str | None:
        if not self._started or not isinstance(name, str):
            return None
        async with self._lock:
            worker = self._worker
            if worker is None or worker.dead is not None:
                await self._recover(worker.dead or "" if worker else "the REPL worker was gone")
                worker = self._worker
            assert worker is not None
            future = asyncio.wrap_future(worker.request_variable(name))
            what = f"converting the variable {name[:40]!r} to text"
            try:
                value: str | None = await self._watch.wait(worker, future, what, VARIABLE_TIMEOUT_S)
            except WorkerDied:
                return None
            self._cpu_mark = worker.cpu_seconds()
            return value

    async def close(self) -> None:
        self._started = False
        worker, self._worker = self._worker, None
        if worker is not None:
            await Spawner.dispose(worker, graceful=True)
        self._calls.shutdown()
        if self._spawner is not None:
            self._spawner.close()

    # Workers ---------------------------------------------------------------------------------

    async def _check_worker(self) -> list[str]:
        """Before a cell: a worker that died, or whose threads burnt CPU time between cells
        (the watchdog), is replaced; returns what the model should be told."""
        worker = self._worker
        gone = "the REPL worker was gone" if worker is None else worker.dead
        idle = None
        if worker is not None and not gone:
            idle = self._watch.idle_overrun(worker, self._cpu_mark)
            if idle is not None:
                worker.kill(idle)
        if reason := gone or idle:
            return [f"{reason[0].upper()}{reason[1:]}. {await self._recover(reason)}"]
        return []

    async def _recover(self, reason: str) -> str:
        """A new worker after ``reason``; returns what the model should be told."""
        self.restarts += 1
        return await self._replayer.restart()

    async def _spawn(self) -> WorkerProcess:
        assert self._spawner is not None
        if self._worker is not None:
            await Spawner.dispose(self._worker, graceful=False)
        self._worker, self.info = await self._spawner.spawn()
        self._cpu_mark = self._worker.cpu_seconds()
        return self._worker

    async def _run_cell(self, code: str) -> CellResult:
        """Run ``code`` in the worker under the watchdog; its result without a duration."""
        worker = self._worker
        assert worker is not None
        future = asyncio.wrap_future(worker.begin_cell(code))
        try:
            raw = await self._watch.wait(worker, future, "the cell")
        except asyncio.CancelledError:
            future.cancel()
            worker.kill("the run was stopped while a cell was running")
            raise
        self._cpu_mark = worker.cpu_seconds()
        try:
            return read_result(raw, self.config.capture_chars)
        except (TypeError, ValueError) as exc:
            reason = f"the REPL worker sent an invalid result ({exc}) and was stopped"
            worker.kill(reason)
            raise WorkerDied(reason) from None

    # The knobs, as attributes ----------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self.config.mode

    @property
    def cell_cpu_s(self) -> float | None:
        return self.config.cell_cpu_s

    @property
    def cell_wall_s(self) -> float | None:
        return self.config.cell_wall_s

    @property
    def memory_mb(self) -> int:
        return self.config.memory_mb

    @property
    def max_open_files(self) -> int:
        return self.config.max_open_files

    @property
    def grace_s(self) -> float:
        return self.config.grace_s

    @property
    def capture_chars(self) -> int:
        return self.config.capture_chars

    @property
    def max_message_bytes(self) -> int | None:
        return self.config.max_message_bytes

    @property
    def site_packages(self) -> bool:
        return self.config.site_packages

    @property
    def read_paths(self) -> list[str]:
        return list(self.config.read_paths)

    @property
    def replay(self) -> bool:
        return self.config.replay

    @property
    def python_guard(self) -> bool:
        return self.config.python_guard

    @property
    def startup_timeout_s(self) -> float:
        return self.config.startup_timeout_s


def read_result(raw: dict[str, Any], capture_chars: int) -> CellResult:
    """The worker's ``result`` frame, checked (TypeError if malformed) and cut to size."""
    output, error, final = raw.get("output"), raw.get("error"), raw.get("final")
    kind = raw.get("error_type")
    if not isinstance(output, str):
        raise TypeError("output must be a str")
    for value in (error, final, kind):
        if value is not None and not isinstance(value, str):
            raise TypeError("error, error_type and final must be str or null")
    output, cut = truncate(output, capture_chars)
    if error is not None:
        error = truncate(error, ERROR_CHARS)[0]
    return CellResult(
        output=output,
        error=error,
        error_type=None if error is None or kind is None else kind[:ERROR_TYPE_CHARS],
        final=final,
        truncated=cut or raw.get("truncated") is True,
    )


def sandbox_factory(mode: Mode = "default", **options: Any) -> SandboxFactory:
    """A factory for :class:`~rlmx.rlm.RLM`: ``RLM(..., sandbox=sandbox_factory("strict"))``."""
    check_mode(mode)

    def make() -> ProcessSandbox:
        return ProcessSandbox(mode=mode, **options)

    return make
