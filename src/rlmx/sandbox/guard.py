"""An audit hook (PEP 578) in the worker: a first, friendlier line in front of the kernel's.

It refuses, with a ``PermissionError`` that names the sandbox, the things model code has no
business doing: ctypes, starting processes, sockets, signalling other processes, building code
objects by hand, new subinterpreters (which would not carry this hook), and the test modules
that poke at memory. An audit hook is not a security boundary (CPython's own documentation
says so): Landlock and seccomp are, and the attack battery passes with this hook turned off.
Standard library only, and it imports nothing that could hand model code a ctypes module.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

BLOCKED_EVENT_PREFIXES = (
    "ctypes.",
    "os.exec",
    "os.fork",
    "os.forkpty",
    "os.posix_spawn",
    "os.spawn",
    "os.system",
    "os.killpg",
    "os.startfile",
    "subprocess.Popen",
    "pty.spawn",
    "socket.",
    "code.__new__",
    "cpython.PyInterpreterState_New",
    "gc.get_objects",
    "gc.get_referrers",
    "gc.get_referents",
)

BLOCKED_MODULES = frozenset(
    {
        "ctypes",
        "_ctypes",
        "_ctypes_test",
        "_xxsubinterpreters",
        "_xxinterpchannels",
        "_testcapi",
        "_testinternalcapi",
        "_testbuffer",
        "_testmultiphase",
        "_testimportmultiple",
        "_testsinglephase",
    }
)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event.startswith(BLOCKED_EVENT_PREFIXES):
        raise PermissionError(f"{event} is blocked by the rlmx sandbox")
    if event == "import":
        name = args[0] if args and isinstance(args[0], str) else ""
        if name.partition(".")[0] in BLOCKED_MODULES:
            raise PermissionError(f"importing {name} is blocked by the rlmx sandbox")
    elif event == "os.kill" and args and args[0] != os.getpid():
        raise PermissionError("signalling another process is blocked by the rlmx sandbox")


def install() -> None:
    """Install the hook for the rest of this interpreter's life (hooks cannot be removed)."""
    sys.addaudithook(_hook)
