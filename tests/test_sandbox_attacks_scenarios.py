"""Attacks that need more than one hostile cell: an older kernel, an ordinary user, a file
swapped while a run goes on.

Where the attack needs what this machine does not offer, it is simulated as an outside review
did: a fresh interpreter confines itself with ``rlmx.sandbox.confine.apply`` after taking an
ordinary user's uid (every capability gone), with the Landlock ABI capped at 5 (the kernels
before 6.12, where signals are not scoped), and then attacks a victim process of that user.
Each counts in the battery's summary (as `default`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlmx.context import as_context

from .sandbox_support import (
    CONFINED_MODES,
    HOSTILE,
    Victim,
    hostile_cell,
    needs_kernel,
    run_confined_child,
    session,
)

USER = 54321  # an ordinary user with no processes on the machine but the test's own

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="simulating a user needs root")

# A child that becomes the ordinary user, confines itself, and attacks. The interpreter's own
# directories get no Landlock rule (a user may not enter /root, where it may live): everything
# the child needs is imported before it changes uid.
_PRELUDE = """
import ctypes, errno, fcntl, json, os, signal, struct, sys, threading
import encodings.ascii, encodings.utf_8, resource  # needed after the uid changes
from rlmx.sandbox import confine, landlock, seccomp

confine.python_read_paths = lambda: []

def become(uid):
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # every uid non-zero: every capability is dropped

def cap_landlock(abi):
    real = landlock.abi_version
    landlock.abi_version = lambda lib: min(real(lib), abi)
"""

_SCHEDULING = (
    _PRELUDE
    + """
victim, uid, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
libc = ctypes.CDLL(None, use_errno=True)
numbers = seccomp.syscall_numbers(seccomp.current_arch())

def syscall(call, *args):
    if libc.syscall(numbers[call], *args) != 0:
        raise OSError(ctypes.get_errno(), call)

def fcntl_signal(command, owner):
    r, w = os.pipe()
    fcntl.fcntl(r, 10, signal.SIGUSR1)  # F_SETSIG
    fcntl.fcntl(r, command, owner)
    fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC)
    os.write(w, b"x")

def sched_idle(pid):  # struct sched_attr, first version: size, policy SCHED_IDLE, the rest 0
    attr = ctypes.create_string_buffer(struct.pack("IIQiIQQQ", 48, 5, 0, 0, 0, 0, 0, 0), 48)
    syscall("sched_setattr", pid, attr, 0)

ATTACKS = {
    "fcntl_setown": lambda: fcntl_signal(8, victim),
    "fcntl_setown_group": lambda: fcntl_signal(8, -victim),
    "fcntl_setown_ex": lambda: fcntl_signal(15, struct.pack("ii", 1, victim)),
    "setpriority_process": lambda: os.setpriority(os.PRIO_PROCESS, victim, 19),
    "setpriority_group": lambda: os.setpriority(os.PRIO_PGRP, victim, 19),
    "setpriority_user": lambda: os.setpriority(os.PRIO_USER, uid, 19),
    "sched_setaffinity": lambda: os.sched_setaffinity(victim, {0}),
    "sched_setscheduler": lambda: os.sched_setscheduler(victim, os.SCHED_IDLE, os.sched_param(0)),
    "sched_setattr": lambda: sched_idle(victim),
    "ioprio_set": lambda: syscall("ioprio_set", 1, victim, 3 << 13),
}
cap_landlock(5)
become(uid)
info = confine.apply(memory_mb=256, max_open_files=64, read_paths=[])
try:
    ATTACKS[name]()
    outcome = "done"
except OSError as exc:
    outcome = errno.errorcode.get(exc.errno, str(exc.errno))
print(json.dumps({"outcome": outcome, "abi": info["landlock_abi"]}))
"""
)

SCHEDULING_ATTACKS = [
    "fcntl_setown",
    "fcntl_setown_group",
    "fcntl_setown_ex",
    "setpriority_process",
    "setpriority_group",
    "setpriority_user",
    "sched_setaffinity",
    "sched_setscheduler",
    "sched_setattr",
    "ioprio_set",
]


@needs_kernel
@pytest.mark.parametrize("name", SCHEDULING_ATTACKS)
def test_an_ordinary_users_worker_leaves_that_users_processes_alone(name: str) -> None:
    """Issue 12, findings 1 and 2: on a kernel without Landlock's signal scope, fcntl's owner
    signals reached any process of the user (SIGKILL included), and the scheduling calls
    reniced, pinned and descheduled them for good."""
    victim = Victim(user=USER)
    try:
        HOSTILE.record("default")
        result = run_confined_child(_SCHEDULING, str(victim.pid), str(USER), name)
        assert result["abi"] <= 5
        assert result["outcome"] == "EPERM", result
        assert victim.harm() == []
    finally:
        victim.close()


_THREADS = (
    _PRELUDE
    + """
uid, how = int(sys.argv[1]), sys.argv[2]
stop = threading.Event()
if how == "per-user":  # a process with a second thread cannot enter a new user namespace
    threading.Thread(target=stop.wait, daemon=True).start()
become(uid)
if how == "strict":  # as bubblewrap does: a user namespace of its own
    assert ctypes.CDLL(None).unshare(confine.CLONE_NEWUSER) == 0
info = confine.apply(
    memory_mb=512, max_open_files=64, read_paths=[], max_tasks=40,
    own_user_namespace=how == "strict",
)
threading.stack_size(32768)
try:
    while threading.active_count() < 1000:
        threading.Thread(target=stop.wait, daemon=True).start()
except RuntimeError:  # "can't start new thread": the bound
    pass
peak = threading.active_count()
stop.set()
print(json.dumps({"bounds": info["task_bounds"], "peak": peak}))
"""
)


@needs_kernel
@pytest.mark.parametrize(
    ("how", "bound"),
    [("default", "rlimit"), ("strict", "rlimit"), ("per-user", "rlimit (per user)")],
)
def test_an_ordinary_users_worker_cannot_make_a_thread_bomb(how: str, bound: str) -> None:
    """Issue 12, finding 5, without a pids cgroup: RLIMIT_NPROC, counted in the worker's own
    user namespace (or above the user's tasks where there is none)."""
    HOSTILE.record("strict" if how == "strict" else "default")
    result = run_confined_child(_THREADS, str(USER), how)
    assert result["bounds"] == [bound]
    assert result["peak"] <= 40


@pytest.mark.parametrize("mode", CONFINED_MODES)
async def test_a_context_file_swapped_for_a_symlink_stays_out_of_reach(
    mode: str, tmp_path: Path
) -> None:
    """Issue 12, finding 3: Landlock's rules were rebuilt from the paths, following symlinks,
    whenever a worker started: a context file replaced by a symlink to a secret (here a hidden
    file of the same directory, which strict binds too), then a restart, and the secret was
    readable. A nested run's worker over the same context rebuilt them the same way."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "notes.txt").write_text("ordinary notes\n")
    secret = root / ".env"
    secret.write_text("TOPSECRET=1\n")
    notes = os.path.realpath(root / "notes.txt")
    context = as_context(root)
    read = f"print(open({notes!r}).read())"
    async with session(mode, context=context) as sb:
        assert "ordinary notes" in (await sb.execute(read)).output
        os.unlink(notes)
        os.symlink(secret, notes)
        await sb.execute("import os\nos._exit(3)")  # the worker dies and is started again
        result = await hostile_cell(sb, read, mode)
        assert "TOPSECRET" not in result.output
        assert result.error is not None
    async with session(mode, context=context) as nested:  # as rlm_query(context=context)
        result = await hostile_cell(nested, read, mode)
        assert "TOPSECRET" not in result.output
        assert result.error is not None
