"""Each confinement layer on its own, in a throwaway process: Landlock alone refuses writes,
reads outside its grants, TCP connects and signals; seccomp alone refuses sockets, forks,
writable opens and signals; the data limit alone turns a large allocation into MemoryError.
The full sandbox stacks them, so no single layer has to be perfect."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rlmx.sandbox.launch import PACKAGE_DIR

from .sandbox_support import PROBE, needs_kernel

pytestmark = needs_kernel

PRELUDE = f"""
import os, socket, sys, types
for n, p in (("rlmx", {PACKAGE_DIR!r}), ("rlmx.sandbox", {PACKAGE_DIR!r} + "/sandbox")):
    m = types.ModuleType(n); m.__path__ = [p]; sys.modules[n] = m
from rlmx.sandbox import confine, landlock, seccomp
lib = confine.libc()

def attempt(name, action):
    try:
        action()
        print(name, "allowed")
    except OSError as exc:
        print(name, type(exc).__name__)
"""


def run_layer(code: str, *args: str) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-S", "-c", PRELUDE + code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


def test_landlock_alone(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        code = (
            "paths = confine.python_read_paths() + list(confine.SYSTEM_READ_PATHS)\n"
            "landlock.restrict(lib, paths)\n"
            "attempt('write', lambda: open(sys.argv[1] + '/new.txt', 'w'))\n"
            "attempt('read_outside', lambda: open(sys.argv[1] + '/outside.txt').read())\n"
            "attempt('read_stdlib', lambda: open(os.__file__).read())\n"
            "attempt('mkdir', lambda: os.mkdir(sys.argv[1] + '/d'))\n"
            "address = ('127.0.0.1', int(sys.argv[2]))\n"
            "attempt('tcp_connect', lambda: socket.create_connection(address))\n"
            "attempt('signal_parent', lambda: os.kill(os.getppid(), 0))\n"
        )
        seen = run_layer(code, str(tmp_path), str(port))
    finally:
        listener.close()
    assert seen["write"] == "PermissionError"
    assert seen["read_outside"] == "PermissionError"
    assert seen["read_stdlib"] == "allowed"
    assert seen["mkdir"] == "PermissionError"
    assert not (tmp_path / "new.txt").exists()
    abi = PROBE["landlock_abi"] or 0
    if abi >= 4:
        assert seen["tcp_connect"] == "PermissionError"
    if abi >= 6:
        assert seen["signal_parent"] == "PermissionError"


def test_seccomp_alone(tmp_path: Path) -> None:
    code = (
        "import threading\n"
        "seccomp.install(lib, os.getpid())\n"
        "attempt('socket', lambda: socket.socket())\n"
        "attempt('fork', lambda: os.fork())\n"
        "attempt('open_write', lambda: open(sys.argv[1] + '/new.txt', 'w'))\n"
        "attempt('read', lambda: open(os.__file__).read())\n"
        "attempt('signal_parent', lambda: os.kill(os.getppid(), 0))\n"
        "attempt('signal_self', lambda: os.kill(os.getpid(), 0))\n"
        "attempt('thread', lambda: threading.Thread(target=int).start())\n"
        "attempt('memfd', lambda: os.memfd_create('x'))\n"
    )
    seen = run_layer(code, str(tmp_path))
    assert seen["socket"] == "PermissionError"
    assert seen["fork"] == "PermissionError"
    assert seen["open_write"] == "PermissionError"
    assert seen["read"] == "allowed"
    assert seen["signal_parent"] == "PermissionError"
    assert seen["signal_self"] == "allowed"
    assert seen["thread"] == "allowed"
    assert seen["memfd"] == "PermissionError"
    assert not (tmp_path / "new.txt").exists()


def test_data_limit_alone() -> None:
    code = (
        "confine.set_limits(128, 64)\n"
        "try:\n    x = bytearray(1 << 30)\n    print('alloc allowed')\n"
        "except MemoryError:\n    print('alloc MemoryError')\n"
        "small = bytearray(1 << 20)\nprint('small allowed')\n"
    )
    seen = run_layer(code)
    assert seen == {"alloc": "MemoryError", "small": "allowed"}


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping capabilities needs some to drop")
def test_capabilities_are_dropped_for_good() -> None:
    code = (
        "print('dropped', confine.drop_capabilities(lib))\n"
        "print('effective', confine.effective_capabilities())\n"
        "attempt('setuid', lambda: os.setuid(65534))\n"
    )
    seen = run_layer(code)
    assert seen == {"dropped": "True", "effective": "0", "setuid": "PermissionError"}
