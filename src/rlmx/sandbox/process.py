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
"""

from __future__ import annotations

import asyncio
import enum
import os
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

from rlmx.context import Context, ContextInput, as_context
from rlmx.errors import SandboxError
from rlmx.sandbox import launch, protocol
from rlmx.sandbox.base import HostFunctions, SandboxFactory
from rlmx.sandbox.calls import (
    MAX_INFLIGHT_CALLS,
    Record,
    ReplayBook,
    call_key,
    digest,
    invoke,
    parse_call,
)
from rlmx.sandbox.capture import truncate
from rlmx.sandbox.launch import Mode
from rlmx.sandbox.spawn import Spawner
from rlmx.sandbox.supervisor import CallPool, WorkerDied, WorkerProcess
from rlmx.sandbox.watch import Watch
from rlmx.types import CellResult


class _Auto(enum.Enum):
    AUTO = "auto"


AUTO = _Auto.AUTO
DEFAULT_CELL_CPU_S = 60.0
DEFAULT_CELL_WALL_S = 300.0
DEFAULT_MEMORY_MB = 2048
ERROR_CHARS = 20_000
VARIABLE_TIMEOUT_S = 30.0

MODE_HELP = (
    "where model-written code runs: 'default' confines a worker process with resource "
    "limits, Landlock and seccomp; 'strict' adds bubblewrap namespaces (needs bwrap); 'none' "
    "runs an unconfined worker with every installed package and no limits, for trusted data "
    "and heavy jobs only"
)


class ProcessSandbox:
    """A REPL session in a worker process; see the module docstring for the modes."""

    def __init__(
        self,
        *,
        mode: Mode = "default",
        cell_cpu_s: float | _Auto | None = AUTO,
        cell_wall_s: float | _Auto | None = AUTO,
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
        if mode not in launch.MODES:
            raise SandboxError(f"unknown sandbox mode {mode!r}: use one of {launch.MODES}")
        none = mode == "none"
        self.mode: Mode = mode
        default_cpu = None if none else DEFAULT_CELL_CPU_S
        default_wall = None if none else DEFAULT_CELL_WALL_S
        self.cell_cpu_s = default_cpu if cell_cpu_s is AUTO else cell_cpu_s
        self.cell_wall_s = default_wall if cell_wall_s is AUTO else cell_wall_s
        self.memory_mb = memory_mb
        self.max_open_files = max_open_files
        self.grace_s = grace_s
        self._watch = Watch(self.cell_cpu_s, self.cell_wall_s, grace_s)
        self.capture_chars = capture_chars
        self.max_message_bytes = max_message_bytes
        self.site_packages = site_packages
        self.read_paths = [os.path.abspath(p) for p in read_paths]
        self.replay = replay
        self.python_guard = python_guard
        self.startup_timeout_s = startup_timeout_s
        self._pretend_missing = pretend_missing  # tests only: act as if the kernel lacked it
        self.info: dict[str, Any] = {}
        self.restarts = 0
        self._started = False
        self._host: HostFunctions | None = None
        self._context: ContextInput = ""
        self._spawner: Spawner | None = None
        self._worker: WorkerProcess | None = None
        self._lock = asyncio.Lock()
        self._pool = CallPool(MAX_INFLIGHT_CALLS)
        self._records: list[Record] = []
        self._recording: list[tuple[str, dict[str, Any]]] | None = None
        self._record_lock = threading.Lock()
        self._replay_book: ReplayBook | None = None
        self._cpu_mark: float | None = None

    # The Sandbox protocol --------------------------------------------------------------------

    async def start(self, context: ContextInput, host: HostFunctions) -> None:
        if self._started or self._spawner is not None:
            raise SandboxError("start() was called twice on one sandbox")
        self._spawner = Spawner(
            mode=self.mode,
            config={
                "memory_mb": self.memory_mb,
                "max_open_files": self.max_open_files,
                "capture_chars": self.capture_chars,
                "cpu_s": self.cell_cpu_s,
                "wall_s": self.cell_wall_s,
                "guard": self.python_guard,
                "pretend_missing": self._pretend_missing,
                "host_pid": os.getpid(),  # the worker checks its parent is still this process
            },
            read_paths=self.read_paths,
            site_packages=self.site_packages,
            seed=random.SystemRandom().randrange(1 << 32),
            startup_timeout_s=self.startup_timeout_s,
            max_message_bytes=self.max_message_bytes,
            on_message=self._on_message,
        )
        opened: Context = as_context(context)
        self._host, self._context = host, opened
        try:
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
            notes = []
            worker = self._worker
            gone = "the REPL worker was gone" if worker is None else worker.dead
            idle = None
            if worker is not None and not gone:
                idle = self._watch.idle_overrun(worker, self._cpu_mark)
                if idle is not None:
                    worker.kill(idle)
            if reason := gone or idle:
                notes.append(f"{reason[0].upper()}{reason[1:]}. {await self._recover(reason)}")
            recording: list[tuple[str, dict[str, Any]]] = []
            self._recording = recording
            try:
                output, error, final, truncated = await self._run_cell(code)
            except WorkerDied as died:
                note = await self._recover(died.reason)
                return CellResult(
                    output="".join(f"[rlmx] {n}\n" for n in notes),
                    error=f"{died.reason}.\n{note}",
                    duration_s=time.perf_counter() - started,
                )
            finally:
                self._recording = None
            if self.replay and error is None and final is None:
                with self._record_lock:
                    self._records.append(Record(code, digest(output), list(recording)))
            if notes:
                output = "".join(f"[rlmx] {n}\n" for n in notes) + output
            return CellResult(
                output=output,
                error=error,
                final=final,
                truncated=truncated,
                duration_s=time.perf_counter() - started,
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
        self._pool.shutdown()
        if self._spawner is not None:
            self._spawner.close()

    async def _spawn(self) -> WorkerProcess:
        assert self._spawner is not None
        if self._worker is not None:
            await Spawner.dispose(self._worker, graceful=False)
        self._worker, self.info = await self._spawner.spawn()
        self._cpu_mark = self._worker.cpu_seconds()
        return self._worker

    # Cells -----------------------------------------------------------------------------------

    async def _run_cell(self, code: str) -> tuple[str, str | None, str | None, bool]:
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
            return self._parse_result(raw)
        except (TypeError, ValueError) as exc:
            reason = f"the REPL worker sent an invalid result ({exc}) and was stopped"
            worker.kill(reason)
            raise WorkerDied(reason) from None

    def _parse_result(self, raw: dict[str, Any]) -> tuple[str, str | None, str | None, bool]:
        output, error, final = raw.get("output"), raw.get("error"), raw.get("final")
        if not isinstance(output, str):
            raise TypeError("output must be a str")
        for value in (error, final):
            if value is not None and not isinstance(value, str):
                raise TypeError("error and final must be str or null")
        output, cut = truncate(output, self.capture_chars)
        if error is not None:
            error = truncate(error, ERROR_CHARS)[0]
        return output, error, final, cut or raw.get("truncated") is True

    # Sub-calls (on the worker's reader thread) -----------------------------------------------

    def _on_message(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        if message["t"] != protocol.CALL:
            raise ValueError(f"unknown message type {message['t'][:40]!r}")
        call_id, fn, args = parse_call(message)
        key = call_key(fn, args)
        book = self._replay_book
        if book is not None:
            worker.send({"t": protocol.REPLY, "id": call_id, **book.answer(key)})
            return
        if worker.inflight >= MAX_INFLIGHT_CALLS:
            error = {"ok": False, "etype": "RuntimeError", "emsg": "too many concurrent sub-calls"}
            worker.send({"t": protocol.REPLY, "id": call_id, **error})
            return
        recording = self._recording
        worker.call_started()

        def job() -> None:
            try:
                reply = invoke(self._host, self._context, fn, args)
            finally:
                worker.call_ended()
            if recording is not None:
                with self._record_lock:
                    recording.append((key, reply))
            worker.send({"t": protocol.REPLY, "id": call_id, **reply})

        self._pool.submit(job)

    # Restart and replay ----------------------------------------------------------------------

    async def _recover(self, reason: str) -> str:
        """A new worker after ``reason``; returns what the model should be told."""
        self.restarts += 1
        await self._spawn()
        records, self._records = self._records, []
        if not records:
            return "The REPL worker was restarted; no earlier cell had state to restore."
        if not self.replay:
            return (
                "The REPL worker was restarted with a fresh state: only `context` and the REPL "
                "functions are defined; recompute any variables you need."
            )
        failed = await self._replay_all(records)
        if failed is None:
            self._records = records
            return (
                f"The REPL worker was restarted and its state restored by replaying the "
                f"{len(records)} earlier successful cell(s), with sub-model answers from the "
                "record."
            )
        index, why = failed
        kept = records[:index]
        await self._spawn()
        if kept and await self._replay_all(kept) is not None:
            kept = []
            await self._spawn()
        self._records = kept
        restored = (
            f"variables from the first {len(kept)} cell(s) were restored, but "
            if kept
            else "nothing was restored: "
        )
        first_line = (
            records[index].code.strip().splitlines()[0] if records[index].code.strip() else ""
        )
        snippet = first_line if len(first_line) <= 60 else first_line[:57] + "..."
        return (
            f"The REPL worker was restarted, but replaying the earlier cell starting "
            f"`{snippet}` was impossible ({why}); {restored}variables set by that cell and later "
            "ones are gone. Recompute what you need."
        )

    async def _replay_all(self, records: Sequence[Record]) -> tuple[int, str] | None:
        for index, record in enumerate(records):
            book = self._replay_book = ReplayBook(record.calls)
            try:
                output, error, final, _ = await self._run_cell(record.code)
            except WorkerDied as died:
                return index, f"it stopped the worker: {died.reason}"
            finally:
                self._replay_book = None
            if book.diverged:
                return index, book.diverged
            if error is not None or final is not None:
                return index, "it raised an error this time"
            if digest(output) != record.digest:
                return index, "it printed something different this time"
        return None


def sandbox_factory(mode: Mode = "default", **options: Any) -> SandboxFactory:
    """A factory for :class:`~rlmx.rlm.RLM`: ``RLM(..., sandbox=sandbox_factory("strict"))``."""
    if mode not in launch.MODES:
        raise SandboxError(f"unknown sandbox mode {mode!r}: use one of {launch.MODES}")

    def make() -> ProcessSandbox:
        return ProcessSandbox(mode=mode, **options)

    return make
