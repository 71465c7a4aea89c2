"""Shared pieces of the sandbox tests: a fake host, mode parameters, skips, the hostile-cell
helper that the attack battery's summary counts, and a victim process for attacks to aim at.

A test that runs a hostile cell calls :func:`hostile_cell` (or, for an attack run in a confined
child process rather than a session, ``HOSTILE.record(config)``); the cell counts as blocked
when the test passes, since the test's assertions are what "blocked" means. ``tests/conftest.py``
prints the counts per configuration at the end of the run.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from rlmx.context import Context, ContextInput, ContextValue
from rlmx.sandbox.confine import probe
from rlmx.sandbox.process import ProcessSandbox
from rlmx.types import CellResult

PROBE = probe() if sys.platform.startswith("linux") else {"problem": "not Linux"}
HAS_KERNEL = "problem" not in PROBE
HAS_BWRAP = HAS_KERNEL and shutil.which("bwrap") is not None

needs_kernel = pytest.mark.skipif(
    not HAS_KERNEL, reason=f"no Landlock/seccomp here: {PROBE.get('problem')}"
)
needs_bwrap = pytest.mark.skipif(
    not HAS_BWRAP, reason="bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
)

CONFINED_MODES = [
    pytest.param("default", marks=needs_kernel),
    pytest.param("strict", marks=needs_bwrap),
]
ALL_MODES = [*CONFINED_MODES, "none"]


class FakeHost:
    """HostFunctions answering at once (or after ``latency_s``), recording every call."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.calls: list[tuple[str, Any]] = []
        self.max_active = 0
        self._active = 0
        self._lock = threading.Lock()

    def _enter(self, kind: str, payload: Any) -> None:
        with self._lock:
            self.calls.append((kind, payload))
            self._active += 1
            self.max_active = max(self.max_active, self._active)
        if self.latency_s:
            time.sleep(self.latency_s)
        with self._lock:
            self._active -= 1

    def llm_query(self, prompt: str, model: str | None = None) -> str:
        self._enter("llm", (prompt, model))
        if prompt.startswith("FAIL"):
            raise KeyError(f"unknown model {model!r} for llm_query")
        return f"answer to {prompt}"

    def llm_query_batched(self, prompts: Sequence[str], model: str | None = None) -> list[str]:
        self._enter("batch", list(prompts))
        return [f"answer to {p}" for p in prompts]

    def llm_map(
        self,
        instruction: str,
        items: Sequence[str],
        labels: Sequence[str] | None = None,
        model: str | None = None,
        examples: Sequence[tuple[str, str]] | None = None,
    ) -> list[str | None]:
        self._enter("map", (instruction, list(items)))
        return [f"{instruction} of {item}" for item in items]

    def rlm_query(self, prompt: str, context: ContextInput | None = None) -> str:
        self._enter("rlm", (prompt, context))
        size = len(context) if isinstance(context, str | list) else None
        return f"rlm {prompt} over {size}"


class HostileLedger:
    """Hostile cells run and blocked, per configuration (`default`, `strict`, `kernel-only`)."""

    def __init__(self) -> None:
        self.ran: Counter[str] = Counter()
        self.blocked: Counter[str] = Counter()
        self._pending: list[str] = []

    def record(self, config: str) -> None:
        """One hostile cell (or confined child) run under ``config`` by the current test."""
        self.ran[config] += 1
        self._pending.append(config)

    def settle(self, outcome: str) -> None:
        """The current test ended: its cells were blocked if it passed, and do not count if it
        was skipped after running some."""
        if outcome == "passed":
            self.blocked.update(self._pending)
        elif outcome == "skipped":
            self.ran.subtract(self._pending)
        self._pending = []

    def summary(self) -> list[str]:
        return [
            f"{config}: {self.ran[config]} hostile cells run, {self.blocked[config]} blocked"
            for config in sorted(self.ran)
            if self.ran[config]
        ]


HOSTILE = HostileLedger()


def config_name(mode: str, options: dict[str, Any] | None = None) -> str:
    """The battery's name for a configuration: the mode, or `kernel-only` without the hook."""
    return "kernel-only" if (options or {}).get("python_guard") is False else mode


async def hostile_cell(sb: ProcessSandbox, code: str, config: str) -> CellResult:
    """Run one hostile cell, counted for the battery's summary under ``config``."""
    HOSTILE.record(config)
    return await sb.execute(code)


class Victim:
    """A process for attacks to aim at (``sleep``, as the test's user or as ``user``). It starts
    with SIGUSR1 blocked, so a signal sent to it stays pending where the test can see it; it is
    in a session of its own, so aiming at its process group reaches nobody else.

    Started by root, it holds no capabilities, as a confined worker does not: the kernel lets a
    process without capabilities renice, pin or deschedule another only if that one holds none
    beyond its own (``cap_safe_nice``), so a victim holding root's capabilities would be out of
    reach whatever the sandbox did, and an attack on it could not fail."""

    def __init__(self, user: int | None = None) -> None:
        command = ["sleep", "300"]
        if user is None and os.geteuid() == 0:
            command = [sys.executable, "-S", "-c", _WITHOUT_CAPABILITIES, *command]
        # The mask of the thread that forks is inherited through exec.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        try:
            self.proc = subprocess.Popen(command, user=user, group=user, start_new_session=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        self.pid = self.proc.pid
        if command[0] == sys.executable:
            self._wait_for_exec()
        self.affinity = os.sched_getaffinity(self.pid)
        self.ioprio = self._ioprio()

    def _wait_for_exec(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the victim failed to start ({self.proc.returncode})")
            with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            if fields["Name"].strip() == "sleep":
                assert int(fields["CapPrm"], 16) == 0, fields["CapPrm"]
                return
            time.sleep(0.01)
        raise RuntimeError("the victim did not start")

    def _ioprio(self) -> int:
        number = {"aarch64": 31}.get(os.uname().machine, 252)  # ioprio_get
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.syscall(number, 1, self.pid))  # IOPRIO_WHO_PROCESS

    def pending_signals(self) -> int:
        """The signals waiting for the victim (to the process or to its thread), as a mask."""
        mask = 0
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(("ShdPnd:", "SigPnd:")):
                    mask |= int(line.split()[1], 16)
        return mask

    def harm(self) -> list[str]:
        """What an attack did to the victim, if anything."""
        if self.proc.poll() is not None:
            return [f"victim died ({self.proc.returncode})"]
        found = []
        if self.pending_signals() & (1 << (signal.SIGUSR1 - 1)):
            found.append("victim was sent SIGUSR1")
        if os.getpriority(os.PRIO_PROCESS, self.pid) != 0:
            found.append("victim was reniced")
        if os.sched_getaffinity(self.pid) != self.affinity:
            found.append("victim was pinned to other CPUs")
        if os.sched_getscheduler(self.pid) != os.SCHED_OTHER:
            found.append("victim's scheduling policy changed")
        if self._ioprio() != self.ioprio:
            found.append("victim's I/O priority changed")
        return found

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


# Drops every capability from the bounding set, then runs the command: root's exec then grants
# none (the inheritable and ambient sets of a root shell are empty).
_WITHOUT_CAPABILITIES = (
    "import ctypes, os, sys\n"
    "prctl = ctypes.CDLL(None, use_errno=True).prctl\n"
    "cap = 0\n"
    "while prctl(24, cap, 0, 0, 0) == 0:\n"  # PR_CAPBSET_DROP, up to the kernel's last one
    "    cap += 1\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)


def run_confined_child(script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter and return the JSON object it prints last. The
    script confines itself (``rlmx.sandbox.confine.apply``) and then attacks; its output must be
    a pipe, since a confined process may not write to a file (``RLIMIT_FSIZE`` 0)."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-2000:])
    assert lines, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@asynccontextmanager
async def session(
    mode: str,
    context: ContextValue | Context = "the context\n",
    host: FakeHost | None = None,
    **options: Any,
) -> AsyncIterator[ProcessSandbox]:
    sandbox = ProcessSandbox(mode=mode, **options)  # type: ignore[arg-type]
    await sandbox.start(context, host or FakeHost())
    try:
        yield sandbox
    finally:
        await sandbox.close()
