"""Hostile cells against the worker's life and its frames, and a host stopped from outside.

- A cell that rebinds builtins (``builtins.len = lambda x: 999``) must not desync the frames
  the worker sends or reads, nor break later cells: the run goes on, in every mode.
- ``FINAL_VAR`` of a value whose ``__str__`` loops or sleeps is stopped by the cell's timers,
  and the worker (with its state) survives.
- ``rlmx run`` killed (SIGKILL) or terminated (SIGTERM, SIGINT) while a cell that ignores its
  timers spins leaves no worker running and no ``rlmx-worker-*`` directory, and its run shows
  as interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rlmx.sandbox import bytecode, worker
from rlmx.sandbox.process import ProcessSandbox
from rlmx.trajectory.jsonl import read_jsonl
from rlmx.types import CellResult

from .conftest import repl
from .sandbox_support import (
    ALL_MODES,
    CONFINED_MODES,
    HOSTILE,
    config_name,
    hostile_cell,
    session,
)

# Cells that rebind a builtin, then leave x = 41 behind.
PATCHES = {
    "len": "builtins.len = lambda x: 999",
    "len_raises": "def broken(*a):\n    raise RuntimeError('no len')\nbuiltins.len = broken",
    "repr": "builtins.repr = lambda x: 'X'",
    "str": "builtins.str = lambda *a: 'x'",
    "isinstance_true": "builtins.isinstance = lambda *a: True",
    "isinstance_false": "builtins.isinstance = lambda *a: False",
    "min_and_next": "builtins.min = builtins.next = None",
    "types": "builtins.dict = builtins.bytes = builtins.memoryview = builtins.type = None",
}
CHECK = "print(x + 1, len('abc'), repr([1]), str(2), isinstance(1, str))\n[x]"


async def attack(sb: ProcessSandbox, mode: str, code: str) -> CellResult:
    """A hostile cell, counted in the battery's summary where a mode confines it."""
    if mode == "none":
        return await sb.execute(code)
    return await hostile_cell(sb, code, config_name(mode))


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("patch", list(PATCHES))
async def test_rebound_builtins_leave_the_frames_and_later_cells_intact(
    mode: str, patch: str
) -> None:
    async with session(mode, cell_wall_s=20.0, grace_s=1.0) as sb:
        code = f"import builtins\n{PATCHES[patch]}\nx = 41"
        patched = await attack(sb, mode, code)
        assert patched.error is None, patched.error
        after = await sb.execute(CHECK)
        assert after.error is None, after.error
        assert after.output == "42 3 [1] 2 False\n[41]\n"
        assert sb.restarts == 0


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_sub_calls_and_final_work_while_builtins_are_rebound(mode: str) -> None:
    async with session(mode, cell_wall_s=20.0, grace_s=1.0) as sb:
        code = (
            "import builtins\nbuiltins.len = lambda x: 999\na = llm_query('q')\nprint(a)\n"
            "builtins.min = None\nbuiltins.str = lambda *x: 5\n"
            "builtins.isinstance = lambda *x: True\nFINAL(llm_query('r'))"
        )
        result = await attack(sb, mode, code)
        assert result.error is None, result.error
        assert result.output == "answer to q\n"
        assert result.final == "answer to r"
        assert sb.restarts == 0


SLOW_STR = {
    "spins": "class Slow:\n    def __str__(self):\n        while True:\n            pass\n",
    "sleeps": "import time\nclass Slow:\n    def __str__(self):\n        time.sleep(3600)\n",
}


@pytest.mark.parametrize("mode", CONFINED_MODES)
@pytest.mark.parametrize("kind", list(SLOW_STR))
async def test_a_hostile_str_is_stopped_by_the_cell_timers(mode: str, kind: str) -> None:
    async with session(mode, cell_cpu_s=1.0, cell_wall_s=2.0, grace_s=1.0) as sb:
        made = await attack(sb, mode, SLOW_STR[kind] + "x = Slow()\nkept = 5")
        assert made.error is None, made.error
        started = time.monotonic()
        assert await sb.get_variable("x") is None  # what a bare FINAL(x) reads
        assert time.monotonic() - started < 25  # the host's own cap was 30 s
        after = await sb.execute("print(kept, type(x).__name__)")
        assert after.output == "5 Slow\n"
        assert sb.restarts == 0  # stopped by the timers, not by killing the worker


def test_the_worker_exits_when_its_host_died_before_it_could_tell() -> None:
    # The race PR_SET_PDEATHSIG leaves open: the host died before the worker set it.
    assert not worker._host_gone({"host_pid": os.getppid(), "mode": "default"})
    assert worker._host_gone({"host_pid": os.getppid() + 1_000_000, "mode": "default"})
    assert not worker._host_gone({"host_pid": 1, "mode": "strict"})  # bwrap: --die-with-parent


# The worker's package directory ---------------------------------------------------------------


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    return folder


def _worker_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(bytecode.PREFIX))


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_no_worker_directory_outlives_the_start_up(mode: str, private_tmp: Path) -> None:
    async with session(mode, cell_cpu_s=1.0, grace_s=0.5) as sb:
        assert _worker_dirs(private_tmp) == []
        stubborn = (
            "import signal\nsignal.signal(signal.SIGPROF, signal.SIG_IGN)\nwhile True:\n    pass"
        )
        await sb.execute("x = 1")
        killed = await attack(sb, mode, stubborn)
        assert killed.error is not None
        assert "killed" in killed.error
        after = await sb.execute("print(x)")  # a restarted worker started from a new copy
        assert after.output == "1\n"
        assert sb.restarts == 1
        assert _worker_dirs(private_tmp) == []


def test_leftovers_of_dead_hosts_are_swept(private_tmp: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = int(done.stdout)
    old = time.time() - 2 * bytecode.STALE_AFTER_S
    names = {
        "dead_old": f"{bytecode.PREFIX}{dead}-abc",
        "dead_new": f"{bytecode.PREFIX}{dead}-def",
        "alive_old": f"{bytecode.PREFIX}{os.getpid()}-ghi",
        "not_ours": "rlmx-other-123-x",
        "older_version": f"{bytecode.PREFIX}{dead}",  # no pid in an older version's names
    }
    for key, name in names.items():
        (private_tmp / name / "sandbox").mkdir(parents=True)
        if key != "dead_new":
            os.utime(private_tmp / name, (old, old))
    removed = bytecode.sweep(str(private_tmp))
    assert removed == [str(private_tmp / names["dead_old"])]
    assert sorted(p.name for p in private_tmp.iterdir()) == sorted(
        names[k] for k in ("dead_new", "alive_old", "not_ours", "older_version")
    )


# A host stopped from outside ------------------------------------------------------------------

SPIN = (
    "import signal\nsignal.signal(signal.SIGPROF, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"
)
# The CLI as `rlmx` runs it, with SIGINT handled even where the test runner ignores it.
CLI = (
    "import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from rlmx.cli.main import entry\nentry()"
)


def _descendants(root: int) -> dict[int, str]:
    """pid -> start time of every process below ``root`` (the worker, bwrap)."""
    parents: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)] = (int(fields[1]), fields[19])
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, start) in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = start
                frontier.append(pid)
    return found


def _alive(pid: int, start: str) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == start and fields[0] != "Z"


@pytest.fixture
def leftovers() -> Iterator[dict[int, str]]:
    """Processes a test saw; whatever still runs at the end is killed (never leave a spinner)."""
    seen: dict[int, str] = {}
    yield seen
    for pid, start in seen.items():
        if _alive(pid, start):
            os.kill(pid, signal.SIGKILL)


def _wait_for(predicate: Callable[[], object], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


STOPS = [
    *(pytest.param(m.values[0], signal.SIGTERM, marks=m.marks) for m in CONFINED_MODES),
    *(pytest.param(m.values[0], signal.SIGKILL, marks=m.marks) for m in CONFINED_MODES),
    pytest.param("none", signal.SIGTERM),
    pytest.param("none", signal.SIGKILL),
    pytest.param(CONFINED_MODES[0].values[0], signal.SIGINT, marks=CONFINED_MODES[0].marks),
]


@pytest.mark.parametrize(("mode", "signum"), STOPS)
def test_a_stopped_run_leaves_no_worker_and_no_directory(
    mode: str, signum: int, tmp_path: Path, leftovers: dict[int, str]
) -> None:
    private = tmp_path / "tmp"
    private.mkdir()
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"responses": [repl(SPIN)] * 3}))
    context, trace, db = tmp_path / "ctx.txt", tmp_path / "trace.jsonl", tmp_path / "runs.db"
    context.write_text("some context\n")
    env = {**os.environ, "TMPDIR": str(private), "RLMX_DB": str(db)}
    env["RLMX_HOME"] = str(tmp_path / "home")
    args = ["run", "q", "-c", str(context), "-m", f"scripted:{script}", "--sandbox", mode]
    args += ["--json", "--trace", str(trace), "-q"]
    if mode != "none":
        HOSTILE.record(config_name(mode))
    host = subprocess.Popen(
        [sys.executable, "-c", CLI, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started = _wait_for(
            lambda: trace.exists() and "cell_started" in trace.read_text(), timeout_s=120
        )
        assert started, "the spinning cell never started"
        assert _wait_for(lambda: _descendants(host.pid), timeout_s=10)
        time.sleep(0.3)  # well inside the cell's endless loop
        leftovers.update(_descendants(host.pid))
        host.send_signal(signum)
        out, err = host.communicate(timeout=120)
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
    gone = _wait_for(lambda: not any(_alive(p, s) for p, s in leftovers.items()), timeout_s=20)
    assert gone, f"still running after the host stopped: {sorted(leftovers)}"
    assert _worker_dirs(private) == []
    runs = _listed_runs(db)
    assert [r["status"] for r in runs] == ["interrupted"]
    if signum == signal.SIGKILL:
        assert host.returncode == -signal.SIGKILL
        return
    assert host.returncode == 128 + signum, err
    printed = json.loads(out)
    assert printed["status"] == "interrupted"
    assert printed["run_id"] == runs[0]["id"]
    assert signal.Signals(signum).name in printed["error"]
    events = read_jsonl(trace)
    assert [e["type"] for e in events[-2:]] == ["run_error", "run_finished"]
    assert events[-2]["status"] == events[-1]["result"]["status"] == "interrupted"


def _listed_runs(db: Path) -> list[dict[str, object]]:
    """The runs as `rlmx runs list --json` shows them."""
    capture = subprocess.run(
        [sys.executable, "-c", CLI, "runs", "list", "--json", "--db", str(db)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in capture.stdout.splitlines()]
