"""The attack battery: hostile cells, each blocked in `default` and `strict`, the session alive.

Each attack prints ``PWNED`` only if the hostile action succeeded, and some leave evidence the
test checks from outside (a listener that must see no connection, a file that must not exist,
a mode that must not change, a victim process without capabilities that must not be
signalled, reniced, pinned, descheduled or given another I/O priority). Every attack runs in a
fresh session holding a canary variable;
afterwards the session must still answer and still hold the canary (restored by replay when the
attack got the worker killed).

The battery runs in four configurations: `default`, `strict`, `default` with the Python audit
hook turned off (so only the kernel, Landlock and seccomp, stands in the way), and `none`,
where the table of what succeeds is asserted too (and documented in docs/sandbox.md). In `none`
the attacks are harmless versions: signal 0, bounded forks that exit at once, a test-owned
file; the few that would really hurt the machine (an 8 GB allocation, endless loops) are
replaced there by a probe that shows no limit would stop them.

Cells run through :func:`tests.sandbox_support.hostile_cell`, so the end of the pytest run
reports how many hostile cells each configuration ran and how many were blocked.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import REPO
from .sandbox_support import HAS_BWRAP, HAS_KERNEL, Victim, config_name, hostile_cell, session


@dataclass(frozen=True)
class Attack:
    name: str
    code: str
    none_succeeds: bool = True  # what `none` mode lets through
    none_code: str | None = None  # a harmless stand-in for `none` mode
    timer: bool = False  # stopped by a per-cell limit, not refused outright
    refused: bool = True  # fails with an error (rather than finding nothing)


_NO_LIMIT_PROBE = (
    "import resource\n"
    "inf = resource.RLIM_INFINITY\n"
    "if resource.getrlimit(resource.RLIMIT_DATA)[0] == inf: print('PWNED')"
)
_NO_TIMEOUT_PROBE = "import time\ntime.sleep(2.5)\nprint('PWNED')"

# F_SETSIG then F_SETOWN arm a pipe so that writing to it signals its owner: any process, past
# kill()'s checks (only Landlock ABI 6+ scopes it). Under strict's pid namespace the victim is
# out of sight, so the cell arms the pipe against itself, which proves the commands got through.
_FCNTL_SIGNAL = (
    "import fcntl, os, signal\n"
    "r, w = os.pipe()\n"
    "fcntl.fcntl(r, 10, signal.SIGUSR1)\n"
    "try:\n"
    "    fcntl.fcntl(r, 8, {victim_pid})\n"
    "except ProcessLookupError:\n"
    "    fcntl.fcntl(r, 8, os.getpid())\n"
    "else:\n"
    "    fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC)\n"
    "    os.write(w, b'x')\n"
    "print('PWNED')"
)
# 1,000 threads of the smallest stack: RLIMIT_DATA alone would let some 16,000 through.
_THREAD_BOMB = (
    "import threading\n"
    "threading.stack_size(32768)\n"
    "stop = threading.Event()\n"
    "made = 0\n"
    "try:\n"
    "    while made < 1000:\n"
    "        threading.Thread(target=stop.wait, daemon=True).start()\n"
    "        made += 1\n"
    "finally:\n"
    "    stop.set()\n"
    "print('PWNED')"
)
# PRIO_USER reaches every process of a user; a uid with no processes keeps this harmless even
# where it gets through: the kernel then answers ESRCH, having looked for that user's processes.
_RENICE_USER = (
    "import os\n"
    "try:\n"
    "    os.setpriority(os.PRIO_USER, 54321, 19)\n"
    "except ProcessLookupError:\n"
    "    print('PWNED')"
)

ATTACKS = [
    Attack("tcp_socket", "import socket\ns = socket.socket()\nprint('PWNED')"),
    Attack(
        "tcp_connect_loopback",
        "import socket\ns = socket.create_connection(('127.0.0.1', {tcp_port}), timeout=2)\n"
        "print('PWNED')",
    ),
    Attack(
        "tcp_listen",
        "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\nprint('PWNED')",
    ),
    Attack(
        "udp_send",
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.sendto(b'x', ('127.0.0.1', {udp_port}))\nprint('PWNED')",
    ),
    Attack(
        "unix_socket_connect",
        "import socket\ns = socket.socket(socket.AF_UNIX)\n"
        "s.connect({unix_path!r})\nprint('PWNED')",
    ),
    Attack("socketpair", "import socket\na, b = socket.socketpair()\nprint('PWNED')"),
    Attack(
        "raw_packet_socket",
        "import socket\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\nprint('PWNED')",
    ),
    Attack("write_file", "open({tmp_dir!r} + '/pwned.txt', 'w').write('x')\nprint('PWNED')"),
    Attack("chmod_file", "import os\nos.chmod({chmod_file!r}, 0o777)\nprint('PWNED')"),
    Attack("read_etc_shadow", "if open('/etc/shadow').read(): print('PWNED')"),
    Attack(
        "read_host_secret_file",
        "if 'TOPSECRET' in open({secret_file!r}).read(): print('PWNED')",
    ),
    Attack(
        "read_project_file",
        "if 'rlmx' in open({project_file!r}).read(): print('PWNED')",
    ),
    Attack(
        "read_parent_environ_via_proc",
        "import os\nif open(f'/proc/{host_pid}/environ', 'rb').read(): print('PWNED')",
    ),
    Attack(
        "read_api_key_from_environment",
        "import os\nif any('sk-rlmx-test' in v for v in os.environ.values()): print('PWNED')",
        none_succeeds=False,
        refused=False,
    ),
    Attack("open_parent_memory", "open(f'/proc/{host_pid}/mem', 'rb')\nprint('PWNED')"),
    Attack("subprocess", "import subprocess\nsubprocess.run(['/bin/true'])\nprint('PWNED')"),
    Attack("os_system", "import os\nif os.system('true') == 0: print('PWNED')"),
    Attack("os_exec", "import os\nos.execv('/bin/true', ['true'])"),
    Attack(
        "fork_bomb",
        "import os\nfor _ in range(16):\n    pid = os.fork()\n    if pid == 0:\n"
        "        os._exit(0)\n    os.waitpid(pid, 0)\nprint('PWNED')",
    ),
    Attack(
        "ctypes_socket_syscall",
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.syscall(41, 2, 1, 0) >= 0: print('PWNED')",
    ),
    Attack(
        "ctypes_kill_parent",
        "import ctypes\nlibc = ctypes.CDLL(None)\nif libc.kill({host_pid}, 0) == 0: print('PWNED')",
    ),
    Attack(
        "ctypes_unshare_namespace",
        "import ctypes\nlibc = ctypes.CDLL(None)\nif libc.unshare(0x04000000) == 0: print('PWNED')",
    ),
    Attack("signal_parent", "import os\nos.kill({host_pid}, 0)\nprint('PWNED')"),
    Attack("signal_via_fcntl_owner", _FCNTL_SIGNAL),
    Attack(
        "renice_another_process",
        "import os\nos.setpriority(os.PRIO_PROCESS, {victim_pid}, 19)\nprint('PWNED')",
    ),
    Attack(
        "renice_a_process_group",
        "import os\nos.setpriority(os.PRIO_PGRP, 0, 1)\nprint('PWNED')",
    ),
    Attack("renice_every_process_of_a_user", _RENICE_USER),
    Attack(
        "pin_another_process_to_a_cpu",
        "import os\nos.sched_setaffinity({victim_pid}, {{0}})\nprint('PWNED')",
    ),
    Attack(
        "deschedule_another_process",
        "import os\nos.sched_setscheduler({victim_pid}, os.SCHED_IDLE, os.sched_param(0))\n"
        "print('PWNED')",
    ),
    Attack(
        "ctypes_ioprio_of_another_process",
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.syscall({nr_ioprio_set}, 1, {victim_pid}, 3 << 13) == 0: print('PWNED')",
    ),
    Attack("thread_bomb", _THREAD_BOMB),
    Attack("signal_every_process", "import os\nos.kill(-1, 0)\nprint('PWNED')"),
    Attack(
        "allocate_8_gb",
        "x = bytearray(8 << 30)\nprint('PWNED')",
        none_code=_NO_LIMIT_PROBE,
    ),
    Attack(
        "shared_memory_8_gb",
        "import mmap\nm = mmap.mmap(-1, 8 << 30)\nm[-1] = 1\nprint('PWNED')",
        none_code="import mmap\nm = mmap.mmap(-1, 8 << 30)\nprint('PWNED')",
    ),
    Attack("memfd_create", "import os\nos.memfd_create('x')\nprint('PWNED')"),
    Attack(
        "raise_rlimits",
        "import resource\ninf = resource.RLIM_INFINITY\n"
        "resource.setrlimit(resource.RLIMIT_DATA, (inf, inf))\nprint('PWNED')",
    ),
    Attack(
        "import_from_writable_path",
        "import sys\nsys.path.insert(0, {evil_dir!r})\nimport rlmx_evil_module",
    ),
    Attack("infinite_loop", "while True:\n    pass", none_code=_NO_TIMEOUT_PROBE, timer=True),
    Attack(
        "catastrophic_regex",
        "import re\nre.match(r'(a+)+$', 'a' * 64 + 'b')\nprint('PWNED')",
        none_code=_NO_TIMEOUT_PROBE,
        timer=True,
    ),
    Attack(
        "loop_ignoring_the_timer",
        "import signal\nsignal.signal(signal.SIGPROF, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass",
        none_code=_NO_TIMEOUT_PROBE,
        timer=True,
    ),
]

CONFIGS = [
    pytest.param(
        "default",
        {},
        id="default",
        marks=pytest.mark.skipif(not HAS_KERNEL, reason="no Landlock/seccomp"),
    ),
    pytest.param(
        "strict",
        {},
        id="strict",
        marks=pytest.mark.skipif(not HAS_BWRAP, reason="bwrap not installed"),
    ),
    pytest.param(
        "default",
        {"python_guard": False},
        id="kernel-only",
        marks=pytest.mark.skipif(not HAS_KERNEL, reason="no Landlock/seccomp"),
    ),
]


@dataclass
class Targets:
    """What the attacks aim at, set up by the test, and the evidence it checks afterwards."""

    tcp: socket.socket
    udp: socket.socket
    unix: socket.socket
    tmp_dir: Path
    chmod_file: Path
    victim: Victim
    values: dict[str, object]

    def untouched(self) -> list[str]:
        """The evidence of a successful attack, if any."""
        found = []
        for name, listener in (("tcp", self.tcp), ("unix", self.unix)):
            try:
                conn, _ = listener.accept()
                conn.close()
                found.append(f"{name} listener got a connection")
            except BlockingIOError:
                pass
        try:
            self.udp.recv(16)
            found.append("udp listener got a datagram")
        except BlockingIOError:
            pass
        if (self.tmp_dir / "pwned.txt").exists():
            found.append("file written")
        if stat.S_IMODE(self.chmod_file.stat().st_mode) != 0o600:
            found.append("mode changed")
        return found + self.victim.harm()


@pytest.fixture
def targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Targets]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-rlmx-test-do-not-leak")
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    unix_path = str(tmp_path / "host.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    unix.listen()
    for sock in (tcp, udp, unix):
        sock.setblocking(False)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET host data\n")
    chmod_file = tmp_path / "mode.txt"
    chmod_file.write_text("x")
    chmod_file.chmod(0o600)
    evil = tmp_path / "writable"
    evil.mkdir()
    (evil / "rlmx_evil_module.py").write_text("print('PWNED')\n")
    victim = Victim()
    values = {
        "tcp_port": tcp.getsockname()[1],
        "udp_port": udp.getsockname()[1],
        "unix_path": unix_path,
        "tmp_dir": str(tmp_path),
        "chmod_file": str(chmod_file),
        "secret_file": str(secret),
        "project_file": str(REPO / "pyproject.toml"),
        "host_pid": os.getpid(),
        "evil_dir": str(evil),
        "victim_pid": victim.pid,
        "nr_ioprio_set": {"aarch64": 30}.get(os.uname().machine, 251),
    }
    yield Targets(tcp, udp, unix, tmp_path, chmod_file, victim, values)
    victim.close()
    for sock in (tcp, udp, unix):
        sock.close()


def test_the_battery_is_big_enough() -> None:
    assert len(ATTACKS) >= 20
    assert len({a.name for a in ATTACKS}) == len(ATTACKS)


@pytest.mark.parametrize(("mode", "options"), CONFIGS)
@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
async def test_attack_is_blocked(
    mode: str, options: dict[str, object], attack: Attack, targets: Targets
) -> None:
    limits = {"cell_cpu_s": 1.0, "cell_wall_s": 3.0, "grace_s": 1.0, "memory_mb": 512}
    async with session(mode, **limits, **options) as sb:  # type: ignore[arg-type]
        assert (await sb.execute("canary = 'alive'")).error is None
        code = attack.code.format(**targets.values)
        result = await hostile_cell(sb, code, config_name(mode, options))
        assert "PWNED" not in result.output, result.output
        if attack.refused and options.get("python_guard", True):
            # (with the audit hook off, a libc call through ctypes fails with -1, not raising)
            assert result.error is not None, f"{attack.name} was not refused"
        assert targets.untouched() == []
        if attack.timer:
            assert "CellTimeout" in result.error or "killed" in result.error
        after = await sb.execute("print(canary, 6 * 7)")
        assert after.output.endswith("alive 42\n"), (after.output, after.error)


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
async def test_what_none_mode_lets_through(attack: Attack, targets: Targets) -> None:
    async with session("none") as sb:
        assert (await sb.execute("canary = 'alive'")).error is None
        code = attack.none_code or attack.code
        result = await sb.execute(code.format(**targets.values))
        if attack.name == "os_exec":  # the worker became /bin/true: the session restarted
            succeeded = result.error is not None and "REPL worker exited" in result.error
        else:
            succeeded = "PWNED" in result.output
        assert succeeded == attack.none_succeeds, (result.output, result.error)
        after = await sb.execute("print(canary, 6 * 7)")
        assert after.output.endswith("alive 42\n"), (after.output, after.error)
