"""One sandbox worker process seen from the host: its pipes, its threads, its clock.

Every byte from the worker is untrusted. A reader thread polls the worker's message pipe, its
stderr and a wake-up pipe, cuts frames with a size cap, and hands each message to the session
(which validates it); a malformed or oversized frame gets the worker killed. A writer thread
sends the host's frames, so a worker that stops reading can never block the event loop.
The pipes themselves are :class:`~rlmx.sandbox.pipes.WorkerPipes`; sub-calls are answered by
:class:`~rlmx.sandbox.calls.SubCalls`, through ``on_message``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import json
import os
import queue
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import rlmx.sandbox.protocol as protocol
from rlmx.sandbox.pipes import WorkerPipes, close_all

STDERR_TAIL_BYTES = 8_192
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class WorkerDied(Exception):
    """The worker is gone; ``reason`` says why, in words for the model and the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WorkerRefused(WorkerDied):
    """The worker would not start, and said why (a ``fatal`` message)."""


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "the REPL worker stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (possibly out of memory)" if name == "SIGKILL" else ""
        return f"the REPL worker was killed by {name}{hint}"
    return f"the REPL worker exited with code {returncode}"


class WorkerProcess:
    """A started worker. ``on_message`` gets every validated-as-JSON message but ``ready``,
    ``fatal``, ``result`` and ``var``, which resolve this object's futures."""

    def __init__(
        self,
        *,
        argv: Callable[[int, int, int | None], list[str]],
        env: dict[str, str],
        pass_fds: Sequence[int],
        max_message_bytes: int,
        on_message: Callable[[WorkerProcess, dict[str, Any]], None],
        bwrap_info: bool,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        self._on_message = on_message
        self._decoder = protocol.FrameDecoder(max_message_bytes)
        self._lock = threading.Lock()
        self._dead: str | None = None
        self._kill_reason: str | None = None
        self._ids = itertools.count(1)
        self.ready: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        self._cell: tuple[int, concurrent.futures.Future[dict[str, Any]]] | None = None
        self._vars: dict[int, concurrent.futures.Future[str | None]] = {}
        self._stderr = bytearray()
        self._inflight = 0
        self._paused_since = 0.0
        self._paused_total = 0.0
        self.cpu_pid: int | None = None
        self._info = bytearray()
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._closed = False
        if on_started is not None:
            # Once: when the worker said ready or fatal, or died first (or never started).
            self.ready.add_done_callback(lambda _: on_started())

        self._pipes = WorkerPipes.open(bwrap_info=bwrap_info)
        self.proc = self._popen(argv, env, pass_fds)
        if not bwrap_info:
            self.cpu_pid = self.proc.pid
        self._reader = threading.Thread(target=self._read_loop, name="rlmx-reader", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="rlmx-writer", daemon=True)
        self._reader.start()
        self._writer.start()

    def _popen(
        self,
        argv: Callable[[int, int, int | None], list[str]],
        env: dict[str, str],
        pass_fds: Sequence[int],
    ) -> subprocess.Popen[bytes]:
        pipes = self._pipes
        try:
            return subprocess.Popen(
                argv(pipes.in_r, pipes.out_w, pipes.info_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=pipes.err_w,
                pass_fds=pipes.child_fds(pass_fds),
                cwd="/",
                env=env,
                start_new_session=True,
            )
        except BaseException:
            self.ready.cancel()
            pipes.close_host_ends()
            raise
        finally:
            pipes.close_child_ends()

    # Sending ---------------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        if self._dead is None:
            self._outbox.put(protocol.encode(message))

    def _write_loop(self) -> None:
        while (frame := self._outbox.get()) is not None:
            try:
                protocol.write_all(self._pipes.in_w, frame)
            except OSError:
                return

    def begin_cell(self, code: str) -> concurrent.futures.Future[dict[str, Any]]:
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        with self._lock:
            if self._dead is not None:
                future.set_exception(WorkerDied(self._dead))
                return future
            cell_id = next(self._ids)
            self._cell = (cell_id, future)
            self._paused_total = 0.0
        self.send({"t": protocol.EXEC, "id": cell_id, "code": code})
        return future

    def request_variable(self, name: str) -> concurrent.futures.Future[str | None]:
        future: concurrent.futures.Future[str | None] = concurrent.futures.Future()
        with self._lock:
            if self._dead is not None:
                future.set_exception(WorkerDied(self._dead))
                return future
            var_id = next(self._ids)
            self._vars[var_id] = future
        self.send({"t": protocol.GETVAR, "id": var_id, "name": name})
        return future

    # Receiving -------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        pipes, poller = self._pipes, select.poll()
        fds = set(pipes.read_ends())
        for fd in fds:
            poller.register(fd, select.POLLIN)
        while pipes.out_r in fds or pipes.err_r in fds:
            for fd, _ in poller.poll():
                if fd == pipes.wake_r:
                    return
                try:
                    data = os.read(fd, 65_536)
                except OSError:
                    data = b""
                if not data:
                    poller.unregister(fd)
                    fds.discard(fd)
                    if fd == pipes.out_r:
                        self._on_eof()
                    elif fd == pipes.info_r:
                        self._parse_info()
                elif fd == pipes.out_r:
                    self._on_data(data)
                elif fd == pipes.err_r:
                    self._stderr += data
                    del self._stderr[:-STDERR_TAIL_BYTES]
                else:
                    self._info += data[:4096]

    def _parse_info(self) -> None:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            pid = json.loads(bytes(self._info)).get("child-pid")
            if isinstance(pid, int) and pid > 0:
                self.cpu_pid = pid

    def _on_data(self, data: bytes) -> None:
        if self._dead is not None:
            return
        try:
            messages = self._decoder.feed(data)
        except protocol.ProtocolError as exc:
            self.kill(f"the REPL worker sent an invalid message ({exc}) and was stopped")
            return
        for message in messages:
            try:
                self._dispatch(message)
            except Exception as exc:  # whatever the worker sent, the reader thread goes on
                detail = f"{type(exc).__name__}: {exc}"[:200]
                self.kill(f"the REPL worker sent an invalid message ({detail}) and was stopped")
                return

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["t"]
        if kind in (protocol.READY, protocol.FATAL):
            if self.ready.done():
                raise ValueError(f"unexpected {kind}")
            if kind == protocol.READY:
                info = message.get("info")
                self.ready.set_result(info if isinstance(info, dict) else {})
            else:
                self.ready.set_exception(WorkerRefused(str(message.get("message", ""))[:2_000]))
            return
        if not self.ready.done():
            raise ValueError(f"{kind} before ready")
        if kind == protocol.RESULT:
            with self._lock:
                cell, expected = self._cell, message.get("id")
                if cell is None or cell[0] != expected:
                    raise ValueError("a result for no running cell")
                self._cell = None
            if not cell[1].done():
                cell[1].set_result(message)
        elif kind == protocol.VAR:
            with self._lock:
                var_id = message.get("id")
                future = self._vars.pop(var_id, None) if isinstance(var_id, int) else None
            if future is None:
                raise ValueError("a variable nobody asked for")
            value = message.get("value")
            if value is not None and not isinstance(value, str):
                raise TypeError("a variable's value must be text")
            future.set_result(value)
        else:
            self._on_message(self, message)

    def _on_eof(self) -> None:
        try:
            returncode: int | None = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._signal_group()
            returncode = None
        self._mark_dead(self._kill_reason or describe_exit(returncode))

    def _mark_dead(self, reason: str) -> None:
        with self._lock:
            if self._dead is not None:
                return
            self._dead = reason
            futures: list[concurrent.futures.Future[Any]] = list(self._vars.values())
            if self._cell is not None:
                futures.append(self._cell[1])
            self._cell, self._vars = None, {}
        futures.append(self.ready)
        for future in futures:
            if not future.done():
                future.set_exception(WorkerDied(reason))
        self._outbox.put(None)

    # State and control -----------------------------------------------------------------------

    @property
    def max_message_bytes(self) -> int:
        return self._decoder.max_bytes

    @max_message_bytes.setter
    def max_message_bytes(self, value: int) -> None:
        self._decoder.max_bytes = value

    @property
    def dead(self) -> str | None:
        return self._dead

    def stderr_tail(self, limit: int = 2_000) -> str:
        return bytes(self._stderr[-limit:]).decode("utf-8", "replace").strip()

    def call_started(self) -> None:
        with self._lock:
            if self._inflight == 0:
                self._paused_since = time.monotonic()
            self._inflight += 1

    def call_ended(self) -> None:
        with self._lock:
            self._inflight -= 1
            if self._inflight == 0:
                self._paused_total += time.monotonic() - self._paused_since

    @property
    def inflight(self) -> int:
        return self._inflight

    def active_seconds(self, since: float) -> float:
        """Wall time since ``since`` (monotonic) less the time spent waiting on sub-calls."""
        with self._lock:
            now = time.monotonic()
            paused = self._paused_total + (now - self._paused_since if self._inflight else 0.0)
        return now - since - paused

    def cpu_seconds(self) -> float | None:
        """User and system CPU time of the worker (all its threads), from /proc."""
        if self.cpu_pid is None or self._dead is not None:
            return None
        try:
            with open(f"/proc/{self.cpu_pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        except (OSError, IndexError, ValueError):
            return None

    def _signal_group(self) -> None:
        if self.proc.returncode is None:  # not reaped, so the group id is still ours
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def kill(self, reason: str) -> None:
        """Kill the worker now; every pending future fails with ``reason``."""
        with self._lock:
            self._kill_reason = self._kill_reason or reason
        self._signal_group()
        self._mark_dead(self._kill_reason or reason)

    def close(self, grace_s: float = 1.0) -> None:
        """Ask the worker to exit, kill it if it does not, reap it and release everything."""
        if self._closed:
            return
        self._closed = True
        if self.proc.returncode is None and self._dead is None:
            self.send({"t": protocol.EXIT})
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace_s)
        self.kill("the REPL session was closed")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        pipes = self._pipes
        os.write(pipes.wake_w, b"x")
        self._outbox.put(None)
        self._reader.join(timeout=5)
        self._writer.join(timeout=5)
        if not self._writer.is_alive():
            os.close(pipes.in_w)
        if not self._reader.is_alive():
            close_all(pipes.read_ends())
        os.close(pipes.wake_w)
